/**
 * What the webhook tests share: a receiver that records and answers as told, the checks of a
 * genuine webhook, a logger into memory, and a cluster node's webhook side alone (a dispatcher on
 * a Redis queue, fed by a hand-driven observer), in the test's process or in one of its own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { createClient } from 'redis';
import { randomApp, type AppConfig } from '../src/config.js';
import { AppRegistry } from '../src/apps.js';
import type { RoomRef, RoomServiceEvents } from '../src/rooms/observer.js';
import type { RedisClient } from '../src/rooms/store/redisRoomStore.js';
import { WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import type { WebhookOptions } from '../src/webhooks/options.js';
import { RedisWebhookQueue } from '../src/webhooks/redisWebhookQueue.js';
import { verifyWebhook, WEBHOOK_BODY_SIGNATURE_HEADER, type WebhookEvent } from '../src/webhooks/index.js';

export const SECRET = 'webhook-secret-0123456789';

export interface Arrival {
  /** performance.now() when the request arrived. */
  at: number;
  raw: string;
  headers: IncomingHttpHeaders;
  body: WebhookEvent;
  /** What the receiver answered. */
  answer?: Answer;
}

export type Answer = number | 'hang';

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** An HTTP receiver on 127.0.0.1 that records every webhook and answers as `answer` says. */
export async function startReceiver(answer: (arrival: Arrival, sameEventBefore: number) => Answer = () => 200) {
  const arrivals: Arrival[] = [];
  let hanging = 0;
  const server = createServer((req, res) => {
    const at = performance.now();
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const arrival: Arrival = { at, raw, headers: req.headers, body: JSON.parse(raw) as WebhookEvent };
      const before = arrivals.filter(
        (a) => a.body.room_session_id === arrival.body.room_session_id && a.body.room_seq === arrival.body.room_seq,
      );
      arrivals.push(arrival);
      const status = answer(arrival, before.length);
      arrival.answer = status;
      if (status === 'hang') {
        hanging++;
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/parley/webhooks?key=abc`,
    arrivals,
    hanging: () => hanging,
    async waitFor(match: (arrivals: Arrival[]) => boolean, timeoutMs = 10_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!match(arrivals)) {
        if (Date.now() > deadline) throw new Error(`receiver: not there yet; got ${JSON.stringify(arrivals.map((a) => a.body))}`);
        await sleep(10);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function appWithCallback(appID: number, callbackUrl: string): AppConfig {
  return { ...randomApp(appID), callbackUrl, callbackSecret: SECRET };
}

/** The spec's signature, computed here independently of the server's code. */
export function specSignature(secret: string, timestamp: number, nonce: string): string {
  return createHash('sha1')
    .update([secret, String(timestamp), nonce].sort().join(''))
    .digest('hex');
}

/** Every field but the ones each attempt signs afresh. */
export function unsigned(body: WebhookEvent): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...body };
  for (const field of ['timestamp', 'nonce', 'signature']) delete rest[field];
  return rest;
}

export function assertGenuine(arrival: Arrival, appID: number): void {
  const { body } = arrival;
  assert.equal(arrival.headers['content-type'], 'application/json');
  assert.equal(body.appid, appID);
  assert.equal(body.signature, specSignature(SECRET, body.timestamp, body.nonce));
  assert.ok(Math.abs(body.timestamp - Date.now() / 1000) < 30, `timestamp ${body.timestamp}`);
  const verified = verifyWebhook(arrival.raw, SECRET, { bodySignature: arrival.headers[WEBHOOK_BODY_SIGNATURE_HEADER] as string });
  assert.ok(verified.ok, JSON.stringify(verified));
}

/** A pino logger writing JSON lines into an array. */
export function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines, raw };
}

/** Room event `seq` of a room's lifetime, as the room service reports it. */
export const roomEvent = (appID: number, roomID: string, seq: number): RoomRef => ({
  appID,
  roomID,
  lifeID: `life-${roomID}`,
  seq,
  timeMs: Date.now(),
});

export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** A Redis connection as a cluster node makes one: commands fail at once while Redis is out of reach, and it reconnects. */
export async function nodeConnection(url: string): Promise<RedisClient> {
  const client: RedisClient = createClient({
    url,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (retries) => Math.min(retries * 100, 1_000) },
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

export interface WebhookNodeOptions {
  redisUrl: string;
  nodeId: string;
  app: AppConfig;
  leaseMs: number;
  partitions: number;
  webhooks?: Partial<WebhookOptions>;
  log?: Logger;
}

/** A cluster node's webhook side: a dispatcher on a Redis queue, fed by `observer`. */
export async function webhookNode({
  redisUrl,
  nodeId,
  app,
  leaseMs,
  partitions,
  webhooks,
  log = pino({ level: 'silent' }),
}: WebhookNodeOptions) {
  const redis = await nodeConnection(redisUrl);
  const observer = new EventEmitter<RoomServiceEvents>();
  const dispatcher = new WebhookDispatcher({
    apps: new AppRegistry([app]),
    observer,
    log,
    options: webhooks,
    queue: RedisWebhookQueue.factory({ redis, nodeId, leaseMs, partitions }),
  });
  return {
    redis,
    observer,
    dispatcher,
    close: async () => {
      await dispatcher.close();
      await redis.close();
    },
  };
}
