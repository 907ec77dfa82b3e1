/**
 * A live call under attack (needs root and iptables, as the forged-traffic test does): forged
 * datagrams from the publisher's, the player's and the server's own addresses (every kind the
 * test kit forges), and malformed signalling frames on other connections, both at once. Reports
 * what got through to the player, what the server dropped by which rule, the server's memory
 * before and after, and any state change the publisher or the player saw.
 */
import { DEV_APP } from '@parley/server';
import { serverMetric, trackConnections } from '@parley/testkit';
import { MEDIA_DROP_REASONS } from '@parley/protocol/rtp';
import { TestClient } from '../packages/sdk/test/helpers.js';
import { FuzzClient, fuzzFrame, generator, type FuzzOutcome } from '../packages/sdk/test/fuzzFrames.js';
import { floodFromCallAddresses, numberedCall, type Flood, type NumberedCall } from '../packages/sdk/test/numberedCall.js';
import { quantile, sleep, type Row, type ServerUnderTest } from './lib.js';

const HOST = '127.0.0.1';
/** Forged datagrams a second (the sender may not keep up; the rate reached is reported). */
const FLOOD_RATE = 20_000;
const SIGNALLING_CONNECTIONS = 8;
/** A frame later than this after it was sent is not on time. */
const ON_TIME_MS = 250;

/** Sends `count` fuzzed frames over a few connections, each waiting for its frame's answer (a reply, an error or a close). */
async function fuzzSignalling(url: string, count: number): Promise<Record<FuzzOutcome, number>> {
  const counts: Record<FuzzOutcome, number> = { reply: 0, error: 0, close: 0, silent: 0 };
  const random = generator(4242);
  let left = count;
  const worker = async (): Promise<void> => {
    const fuzz = new FuzzClient(url);
    while (left-- > 0) counts[await fuzz.send(fuzzFrame(random))]++;
    fuzz.close();
  };
  await Promise.all(Array.from({ length: SIGNALLING_CONNECTIONS }, worker));
  return counts;
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

export async function benchSoak(server: ServerUnderTest, { datagrams, frames }: { datagrams: number; frames: number }): Promise<Row[]> {
  const mediaPort = server.udpPort;
  if (mediaPort === undefined) throw new Error('the soak needs the server on one media port');
  const tracking = trackConnections();
  const clients: TestClient[] = [];
  const client = (): TestClient => {
    const c = new TestClient({ appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url });
    clients.push(c);
    return c;
  };
  let call: NumberedCall | undefined;
  let flood: Flood | undefined;
  try {
    call = await numberedCall(client, HOST, mediaPort, 'r-soak');
    flood = await floodFromCallAddresses(call, HOST, mediaPort);
    await sleep(2000);
    const before = await server.stats();
    const changes = call.mark();
    const start = Date.now();
    const timed = async <T>(work: Promise<T>): Promise<{ result: T; seconds: number }> => ({
      result: await work,
      seconds: (Date.now() - start) / 1000,
    });
    const [floodTime, signalling] = await Promise.all([
      timed(flood.send(datagrams, FLOOD_RATE)),
      timed(fuzzSignalling(server.url, frames)),
    ]);
    const end = Date.now();
    flood.close();
    await sleep(2000);
    const after = await server.stats();
    const check = call.check(start, end, ON_TIME_MS);
    const drops = Object.fromEntries(
      await Promise.all(
        MEDIA_DROP_REASONS.map(async (reason) => [
          reason,
          await serverMetric(server.httpUrl, 'parley_media_dropped_packets_total', { reason }),
        ]),
      ),
    ) as Record<string, number>;
    const unroutable = await serverMetric(server.httpUrl, 'parley_media_unroutable_datagrams_total');
    const seen = changes();
    const delivered = check.frames - check.missing.length;
    return [
      {
        measure: 'forged datagrams sent',
        unit: 'per s',
        n: datagrams,
        p50: datagrams / floodTime.seconds,
        note: `${[...flood.sent.keys()].length} kinds, from the publisher's, the player's and the server's addresses, over ${floodTime.seconds.toFixed(0)} s`,
      },
      {
        measure: 'malformed signalling frames sent',
        unit: 'per s',
        n: frames,
        p50: frames / signalling.seconds,
        note: `over ${signalling.seconds.toFixed(0)} s on ${SIGNALLING_CONNECTIONS} connections; answered: ${signalling.result.reply} replies, ${signalling.result.error} errors, ${signalling.result.close} closes; ${signalling.result.silent} unanswered`,
      },
      {
        measure: 'frames that reached the player',
        unit: '%',
        n: check.frames,
        p50: (100 * delivered) / Math.max(1, check.frames),
        note: `missing ${check.missing.length}, altered ${check.altered.length}, ${check.inOrder ? 'in order' : 'OUT OF ORDER'}, later than ${ON_TIME_MS} ms ${check.late}`,
      },
      {
        measure: 'frame delay, send to render',
        unit: 'ms',
        n: delivered,
        p50: quantile(check.delays, 0.5),
        p99: quantile(check.delays, 0.99),
      },
      {
        measure: 'dropped by the server',
        unit: 'datagrams',
        n: 1,
        p50: Object.values(drops).reduce((a, b) => a + b, 0) + unroutable,
        note: `${Object.entries(drops)
          .filter(([, count]) => count > 0)
          .map(([reason, count]) => `${reason} ${count}`)
          .join(', ')}, unroutable ${unroutable}`,
      },
      {
        measure: 'dropped by the publisher and the player',
        unit: 'datagrams',
        n: 2,
        p50: [call.pub, call.player].reduce((sum, c) => sum + Object.values(c.engine.getMediaDrops()).reduce((a, b) => a + b, 0), 0),
        note: `player: ${JSON.stringify(call.player.engine.getMediaDrops())}`,
      },
      {
        measure: 'server memory after a GC',
        unit: 'MB heap',
        n: 2,
        p50: after.heapUsed / 2 ** 20,
        note: `before ${mb(before.heapUsed)} MB heap, ${mb(before.rss)} MB RSS; after ${mb(after.heapUsed)} MB heap, ${mb(after.rss)} MB RSS; sessions ${before.sessions} → ${after.sessions}`,
      },
      {
        measure: 'state changes seen by the publisher and the player',
        unit: 'events',
        n: 2,
        p50: seen.length,
        note: seen.slice(0, 3).join('; '),
      },
    ];
  } finally {
    flood?.close();
    tracking.close();
    call?.stop();
    await Promise.all(clients.map((c) => c.destroy()));
  }
}
