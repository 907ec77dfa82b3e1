/**
 * The webhook queue of a cluster, in Redis: a webhook survives the death of the node that caused
 * it and of the node delivering it, is delivered at least once, and each room's webhooks arrive in
 * `room_seq` order.
 *
 * Partitions. A webhook belongs to one of `partitions` (16) by a hash of its appID/roomID, and the
 * node that caused it appends it at once, before any HTTP, to that partition's stream
 * `parley:{webhooks:<n>}` (XADD, MAXLEN ~ maxBacklog). One node at a time consumes a partition:
 * the holder of its lease `parley:{webhooks:<n>}:owner` (SET NX PX cluster.leaseMs, renewed at a
 * third of it). Nodes share the partitions about evenly: each shows itself in
 * `parley:webhook-nodes` and holds at most ⌈partitions / live nodes⌉, handing the rest over (it
 * stops reading one, lets its attempts end, then deletes the lease).
 *
 * Order. The owner reads its partitions through the consumer group `webhooks` (XREADGROUP) and
 * delivers each room's webhooks one at a time in room_seq order (roomLanes.ts): rooms are separate
 * lanes, so one app's dead receiver holds up only its own rooms, and its backlog is bounded as in
 * memory. A node that takes a partition first claims (XAUTOCLAIM) all that earlier owners left
 * unacknowledged, oldest first, then reads what is new; entries read by a node whose lease went
 * meanwhile (a paused node) are claimed (XCLAIM) once idle for a lease's length.
 *
 * At least once. An entry is acknowledged and deleted (XACK, XDEL) after a 2xx, or once its
 * retries are exhausted (dropped, logged). The attempts made so far are kept beside the stream
 * (`:attempts`), so that the next owner goes on with the retry schedule instead of starting over.
 * A node attempts only while its lease holds by its own clock: one that wakes from a pause sends
 * nothing more until it has renewed it.
 *
 * While Redis is out of reach, the webhooks a node causes wait in its memory (bounded per app by
 * maxBacklog; logged) and are appended in their order once it is back; a node that dies meanwhile
 * loses them. Entries and keys a node cannot read are logged and skipped.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ErrorCode } from '@parley/protocol';
import { fail, ok, type Outcome } from '../outcome.js';
import type { RedisClient } from '../rooms/store/redisRoomStore.js';
import { LuaScript } from '../rooms/store/redisScripts.js';
import { WEBHOOK_EVENTS, type UnsignedWebhook } from './events.js';
import type { WebhookOptions, WebhookStats } from './options.js';
import { RoomLanes, type HeldWebhook } from './roomLanes.js';
import type { WebhookQueue, WebhookQueueFactory, WebhookSender } from './sender.js';

/** The number of partitions; every node of a cluster must use the same. */
export const WEBHOOK_PARTITIONS = 16;
const GROUP = 'webhooks';
/** Entries read or claimed per command. */
const BATCH = 100;
/** A consumer (a node gone, or that restarted under another ID) idle this long with nothing pending is forgotten. */
const FORGET_CONSUMER_MS = 60_000;
/** How long a node holds a webhook it read before sending it, for another node's earlier event of the room to arrive. */
const DEFAULT_REORDER_MS = 100;

export interface RedisWebhookQueueOptions {
  /** The node's command connection; the queue opens one more of its own for blocking reads. */
  redis: RedisClient;
  nodeId: string;
  /** How long a partition's lease lasts unless renewed (the node lease's length). */
  leaseMs: number;
  partitions?: number;
  prefix?: string;
  reorderMs?: number;
}

/** A partition this node holds. */
interface Owned {
  readonly index: number;
  /** Until when (performance.now() ms) the lease surely holds: from when the last renewal was sent. */
  validUntil: number;
  /** Its consumer group exists and what earlier owners left is claimed: it can be read. */
  ready: boolean;
  releasing: boolean;
}

/** KEYS: the leases this node holds. ARGV: node, lease ms. For each, 1 when renewed, 0 when another node (or none) holds it. */
const RENEW_ALL = new LuaScript(
  `
local renewed = {}
for i, lease in ipairs(KEYS) do
  renewed[i] = 0
  if redis.call('GET', lease) == ARGV[1] then
    redis.call('PEXPIRE', lease, ARGV[2])
    renewed[i] = 1
  end
end
return renewed
`,
  false,
);

/** KEYS: lease. ARGV: node. Deletes the lease only if the node still holds it. */
const RELEASE = new LuaScript(
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`,
  false,
);

/**
 * KEYS: stream. ARGV: group, consumer. Deletes the consumer only if nothing is pending for it
 * (checked and done at once: deleting a consumer deletes what is pending for it).
 */
const FORGET_CONSUMER = new LuaScript(
  `
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`,
  false,
);

/** The partition of a room's webhooks: FNV-1a of `appID/roomID`, the same on every node. */
export function webhookPartition(appID: number, roomID: string, partitions = WEBHOOK_PARTITIONS): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(`${appID}/${roomID}`)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash % partitions;
}

/** A stream entry's webhook, if it is one this version can deliver. */
function parseEntry(fields: Record<string, string>): Outcome<UnsignedWebhook> {
  let value: unknown;
  try {
    value = JSON.parse(fields.webhook ?? '');
  } catch {
    return fail(ErrorCode.InvalidParameter, 'not JSON');
  }
  const w = value as Partial<Record<keyof UnsignedWebhook, unknown>> | null;
  const valid =
    typeof w?.appid === 'number' &&
    typeof w.room_id === 'string' &&
    typeof w.room_session_id === 'string' &&
    Number.isInteger(w.room_seq) &&
    typeof w.event_id === 'string' &&
    (WEBHOOK_EVENTS as readonly unknown[]).includes(w.event);
  return valid ? ok(value as UnsignedWebhook) : fail(ErrorCode.InvalidParameter, 'not a webhook');
}

/** An entry's recorded attempts, `<count>:<Unix ms of the last>`. */
function parseAttempts(value: string | null | undefined): Outcome<{ attempts: number; lastMs: number }> {
  if (value === null || value === undefined) return ok({ attempts: 0, lastMs: 0 });
  const match = /^(\d+):(\d+)$/.exec(value);
  return match ? ok({ attempts: Number(match[1]), lastMs: Number(match[2]) }) : fail(ErrorCode.InvalidParameter, 'not <count>:<ms>');
}

export class RedisWebhookQueue implements WebhookQueue {
  private readonly lanes: RoomLanes;
  private readonly reader: RedisClient;
  private readonly redis: RedisClient;
  private readonly nodeId: string;
  private readonly leaseMs: number;
  private readonly partitions: number;
  private readonly prefix: string;
  private readonly reorderMs: number;
  private readonly tickMs: number;
  private readonly owned = new Map<number, Owned>();
  /** Webhooks caused while Redis was out of reach, in order, and how many of each app. */
  private readonly waiting: UnsignedWebhook[] = [];
  private readonly waitingPerApp = new Map<number, number>();
  private readonly appending = new Set<Promise<number>>();
  /** Acknowledgements that failed (Redis out of reach), sent again with the next renewal. */
  private readonly unacked = new Map<string, { partition: number; id: string }>();
  private readonly timer: NodeJS.Timeout;
  private ticking: Promise<void> | undefined;
  /** The reading loop, and its current round (a read and the taking of what it brought). */
  private readonly reading: Promise<void>;
  private round: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private closing: Promise<void> | undefined;

  static factory(options: RedisWebhookQueueOptions): WebhookQueueFactory {
    return (sender, webhookOptions, log) => new RedisWebhookQueue(options, sender, webhookOptions, log);
  }

  constructor(
    {
      redis,
      nodeId,
      leaseMs,
      partitions = WEBHOOK_PARTITIONS,
      prefix = 'parley',
      reorderMs = DEFAULT_REORDER_MS,
    }: RedisWebhookQueueOptions,
    private readonly sender: WebhookSender,
    private readonly options: WebhookOptions,
    private readonly log: Logger,
  ) {
    this.redis = redis;
    this.nodeId = nodeId;
    this.leaseMs = leaseMs;
    this.partitions = partitions;
    this.prefix = prefix;
    this.reorderMs = reorderMs;
    this.tickMs = Math.max(50, Math.floor(leaseMs / 3));
    this.lanes = new RoomLanes(
      sender,
      { ...options, reorderMs },
      {
        mayDeliver: (partition) => this.mayDeliver(partition),
        settled: (held) => this.ack(held.partition, held.id),
        failed: (held) => this.recordAttempts(held),
      },
      log,
    );
    // A blocking read holds its connection: it gets one of its own.
    this.reader = redis.duplicate();
    this.reader.on('error', (err: unknown) => log.debug({ err }, 'webhook reader connection error'));
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    void this.tick();
    this.reading = this.read();
  }

  private keys(partition: number) {
    const base = `${this.prefix}:{webhooks:${partition}}`;
    return { stream: base, owner: `${base}:owner`, attempts: `${base}:attempts` };
  }

  private get presenceKey(): string {
    return `${this.prefix}:webhook-nodes`;
  }

  held(): Pick<WebhookStats, 'pending' | 'inFlight'> {
    const { pending, inFlight } = this.lanes.held();
    return { pending: pending + this.waiting.length, inFlight };
  }

  push(webhook: UnsignedWebhook): void {
    if (this.stopped) return;
    // Behind what already waits for Redis, to keep the order.
    if (this.waiting.length > 0 || !this.redis.isReady) return this.hold(webhook);
    this.append([webhook]);
  }

  /** Appends in order (one connection keeps its commands' order); what fails waits in memory. Resolves to how many were appended. */
  private append(batch: UnsignedWebhook[]): Promise<number> {
    const trim = { strategy: 'MAXLEN', strategyModifier: '~', threshold: this.options.maxBacklog } as const;
    const sent = batch.map((webhook) =>
      this.redis
        .xAdd(
          this.keys(webhookPartition(webhook.appid, webhook.room_id, this.partitions)).stream,
          '*',
          { webhook: JSON.stringify(webhook) },
          { TRIM: trim },
        )
        .then(
          () => 1,
          () => (this.hold(webhook), 0),
        ),
    );
    const all = Promise.all(sent).then((counts) => counts.reduce<number>((a, b) => a + b, 0));
    this.appending.add(all);
    void all.finally(() => this.appending.delete(all));
    return all;
  }

  private hold(webhook: UnsignedWebhook): void {
    if (this.waiting.length === 0) this.log.warn('Redis out of reach: webhooks wait in memory until it is back');
    this.waiting.push(webhook);
    const count = (this.waitingPerApp.get(webhook.appid) ?? 0) + 1;
    this.waitingPerApp.set(webhook.appid, count);
    if (count <= this.options.maxBacklog) return;
    const oldest = this.waiting.findIndex((w) => w.appid === webhook.appid);
    this.sender.drop(this.waiting.splice(oldest, 1)[0]!, 0, 'backlog full');
    this.waitingPerApp.set(webhook.appid, count - 1);
  }

  private async appendWaiting(): Promise<void> {
    if (this.waiting.length === 0 || !this.redis.isReady) return;
    const batch = this.waiting.splice(0);
    this.waitingPerApp.clear();
    const appended = await this.append(batch);
    if (appended > 0) this.log.info({ appended, stillWaiting: this.waiting.length }, 'webhooks that waited for Redis appended');
  }

  private mayDeliver(partition: number): boolean {
    const owned = this.owned.get(partition);
    return !this.stopped && owned !== undefined && performance.now() < owned.validUntil;
  }

  private ack(partition: number, id: string): void {
    const { stream, attempts } = this.keys(partition);
    this.redis
      .multi()
      .xAck(stream, GROUP, id)
      .xDel(stream, id)
      .hDel(attempts, id)
      .exec()
      .catch(() => this.unacked.set(`${partition}/${id}`, { partition, id }));
  }

  private recordAttempts(held: HeldWebhook): void {
    this.redis.hSet(this.keys(held.partition).attempts, held.id, `${held.attempts}:${Date.now()}`).catch((err: unknown) => {
      this.log.debug({ err, id: held.id }, 'webhook attempts not recorded');
    });
  }

  private script(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    const options = { keys, arguments: args };
    return this.redis.evalSha(script.sha1, options).catch(() => this.redis.eval(script.source, options));
  }

  /** Once per tick: renews, balances and claims; one tick at a time. */
  private tick(): Promise<void> {
    return (this.ticking ??= this.renewAndBalance()
      .catch((err: unknown) => this.log.debug({ err }, 'webhook partitions not renewed'))
      .finally(() => (this.ticking = undefined)));
  }

  private async renewAndBalance(): Promise<void> {
    if (this.stopped) return;
    await this.appendWaiting();
    for (const [key, { partition, id }] of this.unacked) {
      this.unacked.delete(key);
      this.ack(partition, id);
    }
    const now = Date.now();
    const [, , live] = await this.redis
      .multi()
      .zAdd(this.presenceKey, { score: now + this.leaseMs, value: this.nodeId })
      .zRemRangeByScore(this.presenceKey, '-inf', now)
      .zCard(this.presenceKey)
      .exec();
    await this.renew();
    const share = Math.ceil(this.partitions / Math.max(1, Number(live)));
    const kept = [...this.owned.values()].filter((owned) => !owned.releasing);
    for (const owned of kept.splice(share)) void this.release(owned);
    // Each node tries the partitions from a place of its own, so that nodes starting together spread.
    const start = webhookPartition(0, this.nodeId, this.partitions);
    for (let i = 0; i < this.partitions && kept.length < share && !this.stopped; i++) {
      const index = (start + i) % this.partitions;
      if (this.owned.has(index)) continue;
      const owned = await this.acquire(index);
      if (owned) kept.push(owned);
    }
    for (const owned of kept) await (owned.ready ? this.claimStale(owned) : this.prepare(owned));
    this.lanes.pumpAll();
  }

  /** Renews every lease held in one call; lets go of the partitions whose lease lapsed. */
  private async renew(): Promise<void> {
    const held = [...this.owned.values()];
    if (held.length === 0) return;
    const sentAt = performance.now();
    const keys = held.map((owned) => this.keys(owned.index).owner);
    const renewed = (await this.script(RENEW_ALL, keys, [this.nodeId, String(this.leaseMs)])) as number[];
    held.forEach((owned, i) => {
      if (renewed[i] === 1) return void (owned.validUntil = sentAt + this.leaseMs);
      this.owned.delete(owned.index);
      this.log.warn({ partition: owned.index }, 'webhook partition lease lapsed: its webhooks are left to its next owner');
      void this.lanes.forget(owned.index);
    });
  }

  private async acquire(index: number): Promise<Owned | undefined> {
    const sentAt = performance.now();
    const options = { condition: 'NX', expiration: { type: 'PX', value: this.leaseMs } } as const;
    if ((await this.redis.set(this.keys(index).owner, this.nodeId, options)) !== 'OK') return undefined;
    const owned: Owned = { index, validUntil: sentAt + this.leaseMs, ready: false, releasing: false };
    this.owned.set(index, owned);
    return owned;
  }

  /** Makes the consumer group if need be (from the stream's start: what was appended before is read too), then claims all left pending. */
  private async prepare(owned: Owned): Promise<void> {
    const { stream, attempts } = this.keys(owned.index);
    await this.redis.xGroupCreate(stream, GROUP, '0', { MKSTREAM: true }).catch((err: unknown) => {
      if (!String(err).includes('BUSYGROUP')) throw err;
    });
    let claimed = 0;
    let cursor = '0-0';
    do {
      const reply = await this.redis.xAutoClaim(stream, GROUP, this.nodeId, 0, cursor, { COUNT: BATCH });
      if (reply.deletedMessages.length > 0) {
        this.log.warn(
          { partition: owned.index, count: reply.deletedMessages.length },
          'webhooks trimmed from their stream before delivery',
        );
        await this.redis.hDel(attempts, reply.deletedMessages);
      }
      claimed += await this.take(owned.index, reply.messages, true);
      cursor = reply.nextId;
    } while (cursor !== '0-0' && !this.stopped && this.owned.get(owned.index) === owned);
    owned.ready = true;
    this.log.info({ partition: owned.index, claimed }, 'webhook partition taken');
  }

  /** Claims what other nodes read of an owned partition and left idle for a lease's length; forgets long-idle consumers with nothing pending. */
  private async claimStale(owned: Owned): Promise<void> {
    const { stream } = this.keys(owned.index);
    for (const consumer of await this.redis.xInfoConsumers(stream, GROUP)) {
      if (consumer.name === this.nodeId) continue;
      if (consumer.pending === 0) {
        if (consumer.idle > FORGET_CONSUMER_MS) await this.script(FORGET_CONSUMER, [stream], [GROUP, consumer.name]);
        continue;
      }
      const idle = await this.redis.xPendingRange(stream, GROUP, '-', '+', BATCH, { IDLE: this.leaseMs, consumer: consumer.name });
      if (idle.length === 0) continue;
      const messages = await this.redis.xClaim(
        stream,
        GROUP,
        this.nodeId,
        this.leaseMs,
        idle.map((entry) => entry.id),
      );
      const claimed = await this.take(owned.index, messages, true);
      if (claimed > 0) this.log.info({ partition: owned.index, claimed, from: consumer.name }, 'webhooks left by another node claimed');
    }
  }

  /** Hands a partition over: stops reading it, lets go of its webhooks once its attempts have ended, deletes the lease. */
  private async release(owned: Owned): Promise<void> {
    owned.releasing = true;
    await this.round;
    await this.lanes.forget(owned.index);
    this.owned.delete(owned.index);
    await this.script(RELEASE, [this.keys(owned.index).owner], [this.nodeId]).catch((err: unknown) => {
      this.log.debug({ err, partition: owned.index }, 'webhook partition lease not deleted: it lapses');
    });
    this.log.info({ partition: owned.index }, 'webhook partition handed over');
  }

  /** Gives read or claimed entries to the lanes. Resolves to how many there were. */
  private async take(
    partition: number,
    messages: Array<{ id: string; message: Record<string, string> } | null>,
    claimed: boolean,
  ): Promise<number> {
    const entries = messages.filter((entry) => entry !== null);
    if (entries.length === 0) return 0;
    const recorded = claimed
      ? await this.redis.hmGet(
          this.keys(partition).attempts,
          entries.map((entry) => entry.id),
        )
      : [];
    // Lost meanwhile: they stay pending for the next owner.
    if (!this.owned.has(partition)) return 0;
    const now = performance.now();
    entries.forEach(({ id, message }, i) => {
      const webhook = parseEntry(message);
      if (webhook.code !== 0) {
        this.log.warn({ partition, id, why: webhook.message }, 'unreadable webhook entry skipped');
        return this.ack(partition, id);
      }
      const progress = parseAttempts(recorded[i]);
      if (progress.code !== 0) this.log.warn({ partition, id, why: progress.message }, 'unreadable webhook attempts count: counted from 0');
      const { attempts, lastMs } = progress.code === 0 ? progress.data : { attempts: 0, lastMs: 0 };
      // A retry keeps its schedule; what was just appended waits for earlier events of its room from other nodes.
      const delay = attempts > 0 ? lastMs + (this.options.retryDelaysMs[attempts - 1] ?? 0) - Date.now() : claimed ? 0 : this.reorderMs;
      this.lanes.add({ id, partition, webhook: webhook.data, attempts, readyAt: now + Math.max(0, delay) });
    });
    return entries.length;
  }

  private partitionOf(streamKey: string): number | undefined {
    const match = /^(.*):\{webhooks:(\d+)\}$/.exec(streamKey);
    if (!match || match[1] !== this.prefix) return undefined;
    const index = Number(match[2]);
    return this.owned.has(index) ? index : undefined;
  }

  private async readerReady(): Promise<boolean> {
    if (!this.reader.isOpen) await this.reader.connect().catch(() => undefined);
    return this.reader.isReady;
  }

  /** Reads the partitions this node owns, a blocking read at a time, until closed. */
  private async read(): Promise<void> {
    while (!this.stopped) {
      if (!(await this.readerReady())) {
        await sleep(this.tickMs);
        continue;
      }
      // Chosen and started with no wait between: a partition marked for release after this is in
      // the round its release waits for, and in no later one.
      const readable = [...this.owned.values()].filter((owned) => owned.ready && !owned.releasing);
      if (readable.length === 0) {
        await sleep(this.tickMs);
        continue;
      }
      const round = (this.round = this.readRound(readable));
      if (!(await round)) await sleep(this.tickMs);
    }
  }

  /** One blocking read and what it brought taken. Resolves false if the read failed. */
  private async readRound(readable: Owned[]): Promise<boolean> {
    let streams;
    try {
      streams = await this.reader.xReadGroup(
        GROUP,
        this.nodeId,
        readable.map((owned) => ({ key: this.keys(owned.index).stream, id: '>' })),
        { COUNT: BATCH, BLOCK: Math.min(1_000, this.tickMs) },
      );
    } catch (err) {
      if (this.stopped) return true;
      // A stream gone (Redis restarted empty): its group is made again at the next tick.
      if (String(err).includes('NOGROUP')) for (const owned of readable) owned.ready = false;
      this.log.debug({ err }, 'webhook partitions not read');
      return false;
    }
    for (const { name, messages } of streams ?? []) {
      const partition = this.partitionOf(String(name));
      // Entries of a partition whose lease went meanwhile stay pending: its owner claims them.
      if (partition === undefined) continue;
      await this.take(partition, messages, false).catch((err: unknown) => this.log.debug({ err, partition }, 'webhooks read not taken'));
    }
    return true;
  }

  /**
   * Stops reading and taking; attempts under way get `closeTimeoutMs`. What is not delivered stays
   * in Redis, and the partitions are handed over at once rather than when their leases lapse.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.reader.destroy();
    await Promise.allSettled([this.reading, this.ticking]);
    await Promise.allSettled(this.appending);
    await this.lanes.close(this.options.closeTimeoutMs);
    // What waits for Redis gets one more try.
    await this.appendWaiting().catch(() => undefined);
    await Promise.allSettled(this.appending);
    for (const webhook of this.waiting.splice(0)) this.sender.drop(webhook, 0, 'shutdown while Redis was out of reach');
    for (const { partition, id } of this.unacked.values()) this.ack(partition, id);
    await Promise.allSettled([
      ...[...this.owned.values()].map((owned) => this.script(RELEASE, [this.keys(owned.index).owner], [this.nodeId])),
      this.redis.zRem(this.presenceKey, this.nodeId),
    ]);
    this.owned.clear();
  }
}
