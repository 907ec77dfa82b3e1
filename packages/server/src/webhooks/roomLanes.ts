/**
 * How a cluster node delivers the webhooks it holds (read from the partitions it owns, see
 * redisWebhookQueue.ts): one lane per room, whose webhooks go one at a time in `room_seq` order,
 * each only after the one before it was delivered or given up; rooms are independent, so a room
 * waiting on a retry holds up only itself. Per app, as in memory, at most `maxConcurrency`
 * requests are in flight and at most `maxBacklog` webhooks are held (beyond it the oldest one not
 * in flight is dropped).
 *
 * Two nodes may log events of one room a moment apart and append them to the stream in the other
 * order. A lane therefore waits `reorderMs` after reading a webhook before sending it, and puts a
 * webhook that comes late before the later numbers of its room lifetime that have not been
 * attempted yet. One later than that (a node paused between its event and the append) is still
 * delivered, and logged.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { UnsignedWebhook } from './events.js';
import type { WebhookOptions, WebhookStats } from './options.js';
import type { WebhookSender } from './sender.js';

/** A webhook a node holds: the stream entry it came from and how far its delivery got. */
export interface HeldWebhook {
  readonly id: string;
  readonly partition: number;
  readonly webhook: UnsignedWebhook;
  /** Attempts made so far, by any node. */
  attempts: number;
  /** Not attempted before this (performance.now() ms). */
  readyAt: number;
}

export interface LaneHooks {
  /** Whether this node may attempt webhooks of `partition` now (it holds the partition's lease). */
  mayDeliver(partition: number): boolean;
  /** Delivered, or given up and logged: it is to be acknowledged. */
  settled(held: HeldWebhook): void;
  /** An attempt failed and another will follow: its count is to be recorded for whichever node makes it. */
  failed(held: HeldWebhook): void;
}

/** A held webhook's name: stream entry IDs are unique only within their partition's stream. */
const entryOf = (held: HeldWebhook): string => `${held.partition}/${held.id}`;

/** Rooms whose last settled webhook is remembered, to tell one that comes after its room's later numbers. */
const REMEMBERED_ROOMS = 10_000;

class Lane {
  readonly items: HeldWebhook[] = [];
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly key: string,
    readonly app: AppLanes,
  ) {}
}

class AppLanes {
  inFlight = 0;
  /** What the app's lanes hold, oldest first. */
  readonly held = new Set<HeldWebhook>();
  /** Lanes whose next webhook is ready but waits for one of the app's requests to end. */
  readonly waiting = new Set<Lane>();
}

export class RoomLanes {
  private readonly lanes = new Map<string, Lane>();
  private readonly apps = new Map<number, AppLanes>();
  /** Where each held webhook waits, by `entryOf`. */
  private readonly laneOf = new Map<string, Lane>();
  /** Each room's last settled webhook, oldest first. */
  private readonly last = new Map<string, { life: string; seq: number }>();
  /** The partition of each webhook with an attempt under way, by `entryOf`, whether still held or forgotten meanwhile. */
  private readonly flying = new Map<string, number>();
  private idleWaiters: Array<() => void> = [];
  private closing = false;

  constructor(
    private readonly sender: WebhookSender,
    private readonly options: WebhookOptions & { reorderMs: number },
    private readonly hooks: LaneHooks,
    private readonly log: Logger,
  ) {}

  held(): Pick<WebhookStats, 'pending' | 'inFlight'> {
    let heldInFlight = 0;
    for (const id of this.flying.keys()) if (this.laneOf.has(id)) heldInFlight++;
    return { pending: this.laneOf.size - heldInFlight, inFlight: this.flying.size };
  }

  /** Takes a webhook read from a partition; one already held or in flight is ignored. */
  add(held: HeldWebhook): void {
    if (this.closing || this.laneOf.has(entryOf(held)) || this.flying.has(entryOf(held))) return;
    const { appid, room_id, room_session_id: life, room_seq: seq } = held.webhook;
    const key = `${appid}/${room_id}`;
    let app = this.apps.get(appid);
    if (!app) this.apps.set(appid, (app = new AppLanes()));
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = new Lane(key, app)));
    // Before the later numbers of its lifetime that no attempt has started on.
    let at = lane.items.length;
    for (; at > 0; at--) {
      const before = lane.items[at - 1]!;
      if (
        before.attempts > 0 ||
        this.flying.has(entryOf(before)) ||
        before.webhook.room_session_id !== life ||
        before.webhook.room_seq <= seq
      )
        break;
    }
    const last = this.last.get(key);
    const late =
      (last?.life === life && last.seq > seq) ||
      lane.items.slice(0, at).some((x) => x.webhook.room_session_id === life && x.webhook.room_seq > seq);
    if (late) {
      this.log.warn(
        { appID: appid, room_id, room_seq: seq, event_id: held.webhook.event_id },
        'webhook delivered after later ones of its room',
      );
    }
    lane.items.splice(at, 0, held);
    if (at === 0) this.rest(lane);
    app.held.add(held);
    this.laneOf.set(entryOf(held), lane);
    if (app.held.size > this.options.maxBacklog) this.dropOldest(app);
    this.pump(lane);
  }

  /**
   * Lets go of a partition's webhooks (its lease is gone or handed over): they stay unacknowledged
   * for its next owner. Resolves once none of its attempts is under way.
   */
  async forget(partition: number): Promise<void> {
    // A room's webhooks are all of one partition.
    for (const lane of [...this.lanes.values()]) {
      if (lane.items[0]?.partition === partition) for (const held of [...lane.items]) this.remove(lane, held);
    }
    await this.until(() => ![...this.flying.values()].includes(partition));
  }

  /** Tries every lane again (after a lease renewal: deliveries may resume). */
  pumpAll(): void {
    for (const lane of this.lanes.values()) this.pump(lane);
  }

  /**
   * Sends nothing more; attempts under way get `timeoutMs`, then are aborted. What is held stays
   * unacknowledged, for the cluster's other nodes.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    for (const lane of this.lanes.values()) this.rest(lane);
    if (await this.until(() => this.flying.size === 0, timeoutMs)) return;
    this.sender.abortAll();
    await this.until(() => this.flying.size === 0, 1_000);
  }

  private rest(lane: Lane): void {
    clearTimeout(lane.timer);
    lane.timer = undefined;
  }

  private pump(lane: Lane): void {
    if (lane.timer || this.closing) return;
    const head = lane.items[0];
    if (!head) {
      // A lane let go of while its attempt was under way may have a successor by now.
      if (this.lanes.get(lane.key) === lane) this.lanes.delete(lane.key);
      return;
    }
    if (this.flying.has(entryOf(head)) || !this.hooks.mayDeliver(head.partition)) return;
    const wait = head.readyAt - performance.now();
    if (wait > 0) {
      lane.timer = setTimeout(() => {
        lane.timer = undefined;
        this.pump(lane);
      }, wait);
      return;
    }
    if (lane.app.inFlight >= this.options.maxConcurrency) return void lane.app.waiting.add(lane);
    lane.app.waiting.delete(lane);
    void this.attempt(lane, head);
  }

  private async attempt(lane: Lane, held: HeldWebhook): Promise<void> {
    const { app } = lane;
    this.flying.set(entryOf(held), held.partition);
    app.inFlight++;
    held.attempts++;
    const failure = await this.sender.post(held.webhook);
    this.flying.delete(entryOf(held));
    app.inFlight--;
    const stillHeld = this.laneOf.get(entryOf(held)) === lane;
    if (failure === undefined) {
      // Delivered, even if let go of meanwhile: acknowledged, so that no other node sends it again.
      if (stillHeld) this.remove(lane, held);
      this.settle(lane, held);
    } else if (stillHeld && !this.closing) {
      const delay = this.options.retryDelaysMs[held.attempts - 1];
      if (delay === undefined) {
        this.remove(lane, held);
        this.sender.drop(held.webhook, held.attempts, failure);
        this.settle(lane, held);
      } else {
        held.readyAt = performance.now() + delay;
        this.hooks.failed(held);
      }
    }
    this.pump(lane);
    for (const waiting of app.waiting) {
      if (app.inFlight >= this.options.maxConcurrency) break;
      app.waiting.delete(waiting);
      this.pump(waiting);
    }
    for (const check of this.idleWaiters.splice(0)) check();
  }

  private settle(lane: Lane, held: HeldWebhook): void {
    this.last.delete(lane.key);
    this.last.set(lane.key, { life: held.webhook.room_session_id, seq: held.webhook.room_seq });
    if (this.last.size > REMEMBERED_ROOMS) this.last.delete(this.last.keys().next().value!);
    this.hooks.settled(held);
  }

  private remove(lane: Lane, held: HeldWebhook): void {
    const at = lane.items.indexOf(held);
    if (at < 0) return;
    lane.items.splice(at, 1);
    if (at === 0) this.rest(lane);
    lane.app.held.delete(held);
    this.laneOf.delete(entryOf(held));
    if (lane.items.length === 0) lane.app.waiting.delete(lane);
  }

  private dropOldest(app: AppLanes): void {
    for (const held of app.held) {
      if (this.flying.has(entryOf(held))) continue;
      const lane = this.laneOf.get(entryOf(held))!;
      this.remove(lane, held);
      this.sender.drop(held.webhook, held.attempts, 'backlog full');
      this.hooks.settled(held);
      this.pump(lane);
      return;
    }
  }

  /** Resolves true once `done()` holds (checked after each attempt ends), or false after `timeoutMs`. */
  private until(done: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let waiting = true;
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            waiting = false;
            resolve(false);
          }, timeoutMs)
        : undefined;
      const check = (): void => {
        if (!waiting) return;
        if (!done()) return void this.idleWaiters.push(check);
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(check);
    });
  }
}
