/**
 * The media link's state machine, walked with a scripted transport and server under mocked
 * timers: connecting, flowing, stalls and ICE restart rounds, new transports, retries and giving up.
 * End-to-end recovery over a real cut link is in packages/demo/test/network.test.ts.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, type LivenessSample } from '@parley/protocol';
import { DEFAULT_TIMEOUTS, type EngineContext } from '../src/context.js';
import { MediaLink, type MediaLinkOwner } from '../src/mediaLink.js';
import type { MediaTransport, TransportState } from '../src/platform.js';
import type { MediaSample } from '../src/quality.js';
import type { SignallingClient } from '../src/signalling.js';

class ScriptedTransport implements MediaTransport {
  packets = 0;
  closed = false;
  readonly answers: string[] = [];
  private restarts = 0;
  private readonly listeners: Array<(state: TransportState) => void> = [];

  constructor(readonly id: number) {}
  async createOffer(): Promise<string> {
    return `offer-${this.id}`;
  }
  async applyAnswer(sdp: string): Promise<void> {
    this.answers.push(sdp);
  }
  async restartIce(): Promise<string> {
    return `restart-${this.id}-${++this.restarts}`;
  }
  async mediaProgress(): Promise<LivenessSample> {
    return { media: this.packets, packets: this.packets };
  }
  onStateChange(listener: (state: TransportState) => void): void {
    this.listeners.push(listener);
  }
  fire(state: TransportState): void {
    for (const listener of this.listeners) listener(state);
  }
  async stats(): Promise<MediaSample> {
    throw new Error('not sampled here');
  }
  async soundLevel(): Promise<number> {
    return 0;
  }
  close(): void {
    this.closed = true;
  }
}

type Request = { type: string; body: { sdp?: string; role?: string; streamID?: string } };

/** A link with its owner's reports, its transports and what the "server" was asked; the server answers `reply(request)`. */
function harness(t: TestContext, options: { giveUp?: { afterMs: number; code: number } } = {}) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  const reports: string[] = [];
  let due = true;
  const transports: ScriptedTransport[] = [];
  const requests: Request[] = [];
  let reply = (request: Request): { code: number; message?: string; data?: { sdp: string } } => ({
    code: 0,
    data: { sdp: `answer-to-${request.body.sdp}` },
  });
  const signalling = {
    request: async (type: string, body: Request['body']) => {
      const request = { type, body };
      requests.push(request);
      return reply(request);
    },
  } as unknown as SignallingClient;
  const ctx = {
    timeouts: { ...DEFAULT_TIMEOUTS, mediaConnectTimeoutMs: 10_000, mediaStallMs: 3000, qualityIntervalMs: 3_600_000 },
  } as unknown as EngineContext;
  const owner: MediaLinkOwner = {
    role: 'publish',
    streamID: () => 's1',
    signalling: () => signalling,
    createTransport: () => {
      const transport = new ScriptedTransport(transports.length + 1);
      transports.push(transport);
      return transport;
    },
    exchange: (s, sdp) => s.request('publish', { streamID: 's1', sdp, extraInfo: '' }),
    mediaDue: () => due,
    flowing: () => reports.push('flowing'),
    interrupted: () => reports.push('interrupted'),
    failed: (code) => reports.push(`failed ${code}`),
    quality: () => undefined,
  };
  const link = new MediaLink(ctx, owner, { interruptedCode: ErrorCode.PublishInterrupted, ...options });
  t.after(() => link.stop());
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    link,
    reports,
    transports,
    requests,
    setReply: (r: typeof reply) => (reply = r),
    setDue: (d: boolean) => (due = d),
    /** Lets `ms` pass in steps, letting the link's promises settle at each. */
    async pass(ms: number, step = 50) {
      for (let passed = 0; passed < ms; passed += step) {
        t.mock.timers.tick(step);
        await settle();
      }
      await settle();
    },
    settle,
  };
}

/** Connects the link's first transport and lets media flow. */
async function flowing(h: ReturnType<typeof harness>): Promise<ScriptedTransport> {
  h.link.connect();
  await h.settle();
  const transport = h.transports.at(-1)!;
  transport.fire('connected');
  transport.packets = 10;
  await h.pass(1000);
  assert.deepEqual(h.reports, ['flowing']);
  return transport;
}

test('media link: offer, answer, connected is flowing; packets that keep coming keep it flowing', async (t) => {
  const h = harness(t);
  const transport = await flowing(h);
  assert.deepEqual(h.requests, [{ type: 'publish', body: { streamID: 's1', sdp: 'offer-1', extraInfo: '' } }]);
  assert.deepEqual(transport.answers, ['answer-to-offer-1']);
  for (let i = 0; i < 10; i++) {
    transport.packets += 5;
    await h.pass(1000);
  }
  assert.deepEqual(h.reports, ['flowing']);
});

test('media link: nothing received for the stall time is an ICE restart on the same transport, flowing again once packets come', async (t) => {
  const h = harness(t);
  const transport = await flowing(h);
  await h.pass(2500);
  assert.deepEqual(h.reports, ['flowing'], 'not yet stalled');
  await h.pass(1000);
  assert.deepEqual(h.reports, ['flowing', 'interrupted']);
  assert.deepEqual(h.requests.at(-1), { type: 'restartIce', body: { streamID: 's1', role: 'publish', sdp: 'restart-1-1' } });
  assert.deepEqual(transport.answers.at(-1), 'answer-to-restart-1-1');
  transport.packets += 3;
  await h.pass(1000);
  assert.deepEqual(h.reports, ['flowing', 'interrupted', 'flowing']);
  assert.equal(h.transports.length, 1, 'no new transport');
  assert.equal(transport.closed, false);
});

test('media link: while the stream carries nothing this side takes (muted), no packets is no stall; once due again the stall time counts', async (t) => {
  const h = harness(t);
  await flowing(h);
  h.setDue(false);
  await h.pass(10_000);
  assert.deepEqual(h.reports, ['flowing'], 'a muted stream sends nothing: not a stall');
  h.setDue(true);
  await h.pass(2500);
  assert.deepEqual(h.reports, ['flowing']);
  await h.pass(1000);
  assert.deepEqual(h.reports, ['flowing', 'interrupted'], 'due for the stall time and nothing came');
});

test('media link: signalling lost during an ICE restart: the round waits, and goes on over the resumed session with the same transport and offer', async (t) => {
  const h = harness(t);
  const transport = await flowing(h);
  h.setReply(() => ({ code: ErrorCode.Disconnected, message: 'connection closed' }));
  await h.pass(3500);
  assert.deepEqual(h.reports, ['flowing', 'interrupted']);
  const restarts = () => h.requests.filter((r) => r.type === 'restartIce').length;
  assert.equal(restarts(), 1);
  await h.pass(1000);
  assert.equal(h.transports.length, 1, 'a lost reply is no refusal: no new transport');
  h.setReply((request) => ({ code: 0, data: { sdp: `answer-to-${request.body.sdp}` } }));
  assert.equal(h.link.resume(), true, 'the transport is kept');
  await h.settle();
  assert.equal(restarts(), 2, 'a new round at once, over the resumed session');
  assert.deepEqual(h.requests.at(-1)?.body.sdp, 'restart-1-1', 'the offer the server never answered, again: no restart on top of it');
  assert.deepEqual(transport.answers.at(-1), 'answer-to-restart-1-1');
  transport.packets += 5;
  await h.pass(1000);
  assert.deepEqual(h.reports, ['flowing', 'interrupted', 'flowing']);
  assert.equal(h.transports.length, 1);
  assert.equal(h.link.resume(), true, 'flowing: kept as it is');
  assert.equal(restarts(), 2);
});

test('media link: restart rounds while nothing comes back, then a new transport at the deadline', async (t) => {
  const h = harness(t);
  const first = await flowing(h);
  await h.pass(3500);
  const restarts = () => h.requests.filter((r) => r.type === 'restartIce').map((r) => r.body.sdp);
  assert.deepEqual(restarts(), ['restart-1-1']);
  await h.pass(4100);
  assert.deepEqual(restarts(), ['restart-1-1', 'restart-1-2', 'restart-1-3'], 'a new round every 2 s');
  await h.pass(6000);
  assert.equal(first.closed, true, 'given up at the deadline (10 s)');
  assert.equal(h.transports.length, 2, 'a new transport');
  h.transports[1]!.fire('connected');
  await h.settle();
  assert.deepEqual(h.reports, ['flowing', 'interrupted', 'flowing']);
});

test('media link: a refused restart goes straight to a new transport', async (t) => {
  const h = harness(t);
  const first = await flowing(h);
  h.setReply((r) =>
    r.type === 'restartIce' ? { code: ErrorCode.PublishInterrupted, message: 'no transport' } : { code: 0, data: { sdp: 'a' } },
  );
  await h.pass(3500);
  assert.equal(first.closed, true);
  assert.equal(h.transports.length, 2);
  assert.deepEqual(h.reports, ['flowing', 'interrupted']);
});

test("media link: the server's stall report restarts ICE; another soon after the restart means it did not help: a new transport", async (t) => {
  const h = harness(t);
  const first = await flowing(h);
  first.packets += 1;
  h.link.serverNotice('stalled');
  await h.settle();
  assert.deepEqual(h.requests.at(-1)?.type, 'restartIce');
  first.packets += 5; // the player still receives: the answer applied and packets arriving is recovery here
  await h.pass(1000);
  assert.deepEqual(h.reports, ['flowing', 'interrupted', 'flowing']);
  h.link.serverNotice('stalled');
  await h.pass(100);
  assert.equal(first.closed, true);
  assert.equal(h.transports.length, 2);
  assert.deepEqual(h.reports, ['flowing', 'interrupted', 'flowing', 'interrupted']);
});

test('media link: media the server moved is an ICE restart at once that the owner does not hear of; a move during a restart starts a new round', async (t) => {
  const h = harness(t);
  const transport = await flowing(h);
  h.link.serverNotice('moved');
  await h.settle();
  assert.deepEqual(h.requests.at(-1), { type: 'restartIce', body: { streamID: 's1', role: 'publish', sdp: 'restart-1-1' } });
  assert.deepEqual(transport.answers.at(-1), 'answer-to-restart-1-1');
  h.link.serverNotice('moved');
  await h.settle();
  assert.deepEqual(h.requests.at(-1)?.body.sdp, 'restart-1-2', 'moved again: a new round');
  transport.packets += 5;
  await h.pass(1000);
  assert.deepEqual(h.reports, ['flowing'], 'nothing told: media came back');
  assert.equal(h.transports.length, 1);
  transport.packets += 5;
  await h.pass(2000);
  assert.deepEqual(h.reports, ['flowing'], 'flowing as before: packets keep it so');
  await h.pass(3500);
  assert.deepEqual(h.reports, ['flowing', 'interrupted'], 'a stall after it is told as any other');
});

test('media link: a quiet restart that fails is told then: refused, or nothing back by the deadline, and a new transport', async (t) => {
  const h = harness(t);
  const first = await flowing(h);
  h.setDue(false); // nothing of the link's own stall watch: only the restart's deadline counts
  h.link.serverNotice('moved');
  await h.pass(9000);
  assert.deepEqual(h.reports, ['flowing'], 'rounds go on, untold');
  await h.pass(1100);
  assert.deepEqual(h.reports, ['flowing', 'interrupted'], 'the deadline: told');
  assert.equal(first.closed, true);
  h.transports[1]!.fire('connected');
  await h.settle();
  assert.deepEqual(h.reports, ['flowing', 'interrupted', 'flowing']);

  h.setReply((r) =>
    r.type === 'restartIce' ? { code: ErrorCode.PublishInterrupted, message: 'no transport' } : { code: 0, data: { sdp: 'a' } },
  );
  h.link.serverNotice('moved');
  await h.pass(100);
  assert.deepEqual(h.reports, ['flowing', 'interrupted', 'flowing', 'interrupted'], 'refused: told at once');
  assert.equal(h.transports.length, 3);
});

test('media link: ICE failure while flowing is a restart too', async (t) => {
  const h = harness(t);
  const transport = await flowing(h);
  transport.fire('failed');
  await h.settle();
  assert.deepEqual(h.reports, ['flowing', 'interrupted']);
  assert.equal(h.requests.at(-1)?.type, 'restartIce');
});

test('media link: a failed attempt is retried after the backoff until the retry window ends in its code', async (t) => {
  const h = harness(t, { giveUp: { afterMs: 5000, code: ErrorCode.PublishRetryTimeout } });
  h.setReply(() => ({ code: ErrorCode.PublishInterrupted, message: 'busy' }));
  h.link.connect();
  await h.pass(5000);
  const attempts = h.transports.length;
  assert.ok(attempts >= 4, `retried with backoff: ${attempts} attempts in 5 s`);
  await h.pass(10_000);
  assert.deepEqual(h.reports.slice(-1), [`failed ${ErrorCode.PublishRetryTimeout}`]);
  assert.ok(
    h.reports.slice(0, -1).every((r) => r === 'interrupted'),
    h.reports.join(),
  );
  assert.ok(h.transports.every((tr) => tr.closed));
});

test('media link: a refusal is a failure, not retried', async (t) => {
  const refused = harness(t);
  refused.setReply(() => ({ code: ErrorCode.StreamForbidden, message: 'forbidden' }));
  refused.link.connect();
  await refused.pass(1000);
  assert.deepEqual(refused.reports, [`failed ${ErrorCode.StreamForbidden}`]);
  assert.equal(refused.transports.length, 1);
});

test('media link: stop() closes what there is and nothing runs after it', async (t) => {
  const h = harness(t);
  const transport = await flowing(h);
  h.link.stop();
  assert.equal(transport.closed, true);
  await h.pass(20_000, 500);
  assert.deepEqual(h.reports, ['flowing']);
  assert.equal(h.transports.length, 1);
});
