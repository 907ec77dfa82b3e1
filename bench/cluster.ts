/**
 * A cluster's costs, each beside its one-node counterpart in the same run. Every node is a server
 * process pinned to CPU 0 (as the one-node server is), all on one redis-server of their own:
 * - joins, many at once, on 1 node and on 3: latency, and Redis round trips per join (by every node);
 * - a broadcast (1 publisher → N players) spread over 3 nodes against 1 node: CPU per forwarded packet on each node;
 * - the relay: what a relay to another node costs the publisher's node, against what one more local player costs;
 * - resumption: clients of a node that is killed, resumed on the other nodes (time from the kill).
 */
import { spawn } from 'node:child_process';
import { DEV_APP } from '@parley/server';
import { ParleyEngine, PlayerState, PublisherState, RoomStateChangedReason } from '@parley/sdk';
import { serverMetric, startRedis, type RedisServer } from '@parley/testkit';
import { TestClient } from '../packages/sdk/test/helpers.js';
import { publishLoad } from './forwarding.js';
import { quantile, row, sleep, type Row, ServerUnderTest } from './lib.js';

export interface ClusterSizes {
  concurrent: number;
  players: number;
  seconds: number;
  resumers: number;
  /** Alternating windows of the relay's measure. */
  repeats: number;
}

/** A redis-server and `count` nodes on it; `use` runs with them, then they stop. */
async function withCluster<T>(count: number, use: (nodes: ServerUnderTest[], redis: RedisServer) => Promise<T>): Promise<T> {
  const redis = await startRedis();
  const nodes: ServerUnderTest[] = [];
  try {
    for (let i = 0; i < count; i++) nodes.push(await ServerUnderTest.start({ cluster: { redisUrl: redis.url, nodeId: `node-${i + 1}` } }));
    return await use(nodes, redis);
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  }
}

/**
 * Counts the commands clients send Redis from now until `stop()`: each is a round trip (those a
 * script runs inside Redis, which MONITOR shows as from "lua", are not).
 */
function countRoundTrips(redis: RedisServer): { stop(): Promise<number> } {
  const monitor = spawn('redis-cli', ['-p', new URL(redis.url).port, 'MONITOR']);
  let count = 0;
  let partial = '';
  monitor.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (/^\d+\.\d+ \[\d+ (?!lua\])/.test(line)) count++;
  });
  return {
    stop: async () => {
      await sleep(200);
      monitor.kill();
      return count;
    },
  };
}

const profileOf = (servers: string | string[]): { appID: number; appSign: string; server: string | string[]; timeouts: object } => ({
  appID: DEV_APP.appID,
  appSign: DEV_APP.appSign,
  server: servers,
  // The bots report no quality: sampling werift's statistics takes CPU from the servers beside them.
  timeouts: { qualityIntervalMs: 3_600_000 },
});

const destroy = (engines: ParleyEngine[]): Promise<void[]> =>
  Promise.all(engines.map((engine) => new Promise<void>((resolve) => ParleyEngine.destroyEngine(engine, resolve))));

/** `concurrent` logins at once, ten to a room, spread over the nodes: their times, and Redis commands per join. */
async function joins(count: number, concurrent: number): Promise<{ times: number[]; roundTripsPerJoin: number }> {
  return withCluster(count, async (nodes, redis) => {
    const engines = Array.from({ length: concurrent }, (_, i) => ParleyEngine.createEngine(profileOf(nodes[i % count]!.url)));
    const roundTrips = countRoundTrips(redis);
    await sleep(200);
    const times = await Promise.all(
      engines.map((engine, i) => {
        const start = performance.now();
        return new Promise<number>((resolve, reject) =>
          engine.loginRoom(`join-${Math.floor(i / 10)}`, { userID: `u${i}`, userName: `u${i}` }, { isUserStatusNotify: true }, (code) =>
            code === 0 ? resolve(performance.now() - start) : reject(new Error(`login failed: ${code}`)),
          ),
        );
      }),
    );
    await sleep(500); // the other nodes' reads of what they were told
    const roundTripsPerJoin = (await roundTrips.stop()) / concurrent;
    await destroy(engines);
    return { times, roundTripsPerJoin };
  });
}

/** A publisher on the first node and players on `playersAt`: once every player renders, each node's CPU and packets sent over `seconds`. */
async function broadcast(
  nodes: ServerUnderTest[],
  playersAt: ServerUnderTest[],
  seconds: number,
): Promise<Array<{ cpuMs: number; toPlayers: number; toRelays: number }>> {
  const publisher = new TestClient(profileOf(nodes[0]!.url));
  const players = playersAt.map((node) => new TestClient(profileOf(node.url)));
  try {
    await publisher.login('broadcast', 'publisher');
    publisher.engine.startPublishingStream('broadcast');
    await publisher.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
    const load = publishLoad(publisher.engine);
    for (const [i, player] of players.entries()) {
      await player.login('broadcast', `player${i}`);
      player.engine.startPlayingStream('broadcast');
    }
    await Promise.all(players.map((p) => p.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing, 60_000)));
    await Promise.all(players.map((p) => p.waitFor('playerRecvVideoFirstFrame', () => true, 60_000)));
    await sleep(1_000);
    const read = (): Promise<Array<{ cpuMs: number; toPlayers: number; toRelays: number }>> =>
      Promise.all(
        nodes.map(async (node) => ({
          cpuMs: (await node.stats()).cpuMs,
          toPlayers: await serverMetric(node.httpUrl, 'parley_media_rtp_sent_packets_total'),
          toRelays: await serverMetric(node.httpUrl, 'parley_relay_sent_packets_total'),
        })),
      );
    const before = await read();
    await sleep(seconds * 1000);
    const after = await read();
    load.stop();
    return after.map((a, i) => ({
      cpuMs: a.cpuMs - before[i]!.cpuMs,
      toPlayers: a.toPlayers - before[i]!.toPlayers,
      toRelays: a.toRelays - before[i]!.toRelays,
    }));
  } finally {
    await Promise.all([...players, publisher].map((c) => c.destroy()));
  }
}

/** CPU µs per packet a node sent (to its players and to relays). */
const perPacket = ({ cpuMs, toPlayers, toRelays }: { cpuMs: number; toPlayers: number; toRelays: number }): number =>
  (cpuMs * 1000) / Math.max(1, toPlayers + toRelays);

async function broadcastRows(players: number, seconds: number): Promise<Row[]> {
  const one = await withCluster(1, (nodes) =>
    broadcast(
      nodes,
      Array.from({ length: players }, () => nodes[0]!),
      seconds,
    ),
  );
  const three = await withCluster(3, (nodes) =>
    broadcast(
      nodes,
      Array.from({ length: players }, (_, i) => nodes[i % 3]!),
      seconds,
    ),
  );
  const describe = (m: { cpuMs: number; toPlayers: number; toRelays: number }): string =>
    `${(m.cpuMs / seconds / 10).toFixed(1)} % CPU, ${m.toPlayers} to players + ${m.toRelays} to relays`;
  return [
    { measure: `1 → ${players} on 1 node: CPU per packet sent`, unit: 'µs', n: players, p50: perPacket(one[0]!), note: describe(one[0]!) },
    ...three.map((m, i) => ({
      measure: `1 → ${players} over 3 nodes, node ${i + 1}${i === 0 ? ' (the publisher’s)' : ''}: CPU per packet sent`,
      unit: 'µs',
      n: Math.ceil((players - i) / 3),
      p50: perPacket(m),
      note: describe(m),
    })),
  ];
}

/**
 * What one relay costs the publisher's node, against one more local player: with a publisher and
 * a player on node A, node A's CPU over alternating windows without anything more, with one more
 * player on A, and with instead a player on node B (a relay from A to B). Medians of the repeats.
 */
async function relayRows(seconds: number, repeats: number): Promise<Row[]> {
  return withCluster(2, async (nodes) => {
    const [origin, remote] = nodes as [ServerUnderTest, ServerUnderTest];
    const publisher = new TestClient(profileOf(origin.url));
    const clients = [publisher];
    try {
      await publisher.login('relay', 'publisher');
      publisher.engine.startPublishingStream('relay');
      await publisher.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
      const load = publishLoad(publisher.engine);
      const join = async (node: ServerUnderTest, userID: string): Promise<TestClient> => {
        const player = new TestClient(profileOf(node.url));
        clients.push(player);
        await player.login('relay', userID);
        return player;
      };
      const [base, local, far] = await Promise.all([join(origin, 'base'), join(origin, 'local'), join(remote, 'far')]);
      const playing = async (player: TestClient, on: boolean): Promise<void> => {
        if (!on) return player.engine.stopPlayingStream('relay');
        const frames = player.of('playerRecvVideoFirstFrame').length;
        player.engine.startPlayingStream('relay');
        await player.waitFor('playerRecvVideoFirstFrame', () => player.of('playerRecvVideoFirstFrame').length > frames, 30_000);
      };
      await playing(base, true);
      const window = async (): Promise<{ cpuMs: number; relayed: number; sent: number }> => {
        await sleep(1_000);
        const read = async () => ({
          cpuMs: (await origin.stats()).cpuMs,
          relayed: await serverMetric(origin.httpUrl, 'parley_relay_sent_packets_total'),
          sent: await serverMetric(origin.httpUrl, 'parley_media_rtp_sent_packets_total'),
        });
        const before = await read();
        await sleep(seconds * 1000);
        const after = await read();
        return { cpuMs: after.cpuMs - before.cpuMs, relayed: after.relayed - before.relayed, sent: after.sent - before.sent };
      };
      const playerMs: number[] = [];
      const relayMs: number[] = [];
      const perPacket = { player: [] as number[], relayed: [] as number[] };
      for (let i = 0; i < repeats; i++) {
        const alone = await window();
        await playing(local, true);
        const withPlayer = await window();
        await playing(local, false);
        await playing(far, true);
        const withRelay = await window();
        await playing(far, false);
        await sleep(4_000); // the relay ends a few seconds after its last player
        playerMs.push((withPlayer.cpuMs - alone.cpuMs) / seconds);
        relayMs.push((withRelay.cpuMs - alone.cpuMs) / seconds);
        perPacket.player.push(((withPlayer.cpuMs - alone.cpuMs) * 1000) / Math.max(1, withPlayer.sent - alone.sent));
        perPacket.relayed.push(((withRelay.cpuMs - alone.cpuMs) * 1000) / Math.max(1, withRelay.relayed));
      }
      load.stop();
      const median = (xs: number[]): number => quantile(xs, 0.5);
      return [
        row(
          'one more local player: CPU of the publisher’s node',
          'ms/s',
          playerMs,
          `${median(perPacket.player).toFixed(1)} µs per packet sent to it`,
        ),
        row(
          'a relay to another node instead: CPU of the publisher’s node',
          'ms/s',
          relayMs,
          `${median(perPacket.relayed).toFixed(1)} µs per relayed packet; relay/local player ${(median(relayMs) / median(playerMs)).toFixed(2)}× (medians of ${repeats} alternating windows)`,
        ),
      ];
    } finally {
      await Promise.all(clients.map((c) => c.destroy()));
    }
  });
}

/** `count` clients on the first of 3 nodes, which is killed: the time from the kill until each is Reconnected. */
async function resumeRows(count: number): Promise<Row[]> {
  return withCluster(3, async (nodes) => {
    const clients = Array.from({ length: count }, () => new TestClient(profileOf(nodes.map((node) => node.url))));
    try {
      await Promise.all(clients.map((client, i) => client.login(`resume-${i % 10}`, `c${i}`)));
      await sleep(1_000);
      const killedAt = performance.now();
      const resumedAt = clients.map(
        (client) =>
          new Promise<number>((resolve) =>
            client.engine.on(
              'roomStateChanged',
              (_, reason) => reason === RoomStateChangedReason.Reconnected && resolve(performance.now()),
            ),
          ),
      );
      await nodes[0]!.kill();
      const times = (await Promise.all(resumedAt)).map((at) => at - killedAt);
      const lost = clients.filter((client) =>
        client
          .of('roomStateChanged')
          .some(([, reason]) => reason === RoomStateChangedReason.ReconnectFailed || reason === RoomStateChangedReason.KickOut),
      ).length;
      return [
        row(`${count} clients of a killed node resumed on the other nodes: time from the kill`, 'ms', times, `${lost} did not resume`),
      ];
    } finally {
      await Promise.all(clients.map((c) => c.destroy()));
    }
  });
}

export async function benchCluster({ concurrent, players, seconds, resumers, repeats }: ClusterSizes): Promise<Row[]> {
  const one = await joins(1, concurrent);
  const three = await joins(3, concurrent);
  const p99Ratio = quantile(three.times, 0.99) / quantile(one.times, 0.99);
  return [
    row(
      `join, ${concurrent} users at once on 1 node (10 per room)`,
      'ms',
      one.times,
      `${one.roundTripsPerJoin.toFixed(1)} Redis round trips per join (all nodes)`,
    ),
    row(
      `join, ${concurrent} users at once over 3 nodes`,
      'ms',
      three.times,
      `${three.roundTripsPerJoin.toFixed(1)} Redis round trips per join (all nodes); p99 3 nodes/1 node ${p99Ratio.toFixed(2)}×`,
    ),
    ...(await broadcastRows(players, seconds)),
    ...(await relayRows(seconds, repeats)),
    ...(await resumeRows(resumers)),
  ];
}
