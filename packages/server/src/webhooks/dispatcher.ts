/**
 * Delivers webhooks: watches the room service and POSTs one signed JSON object per event to the
 * app's callback URL. Each app has its own queue, so one app's failing or slow receiver delays
 * only its own webhooks. Watching costs the room service an enqueue; the HTTP work happens later,
 * with a bounded number of requests in flight and a bounded backlog (the oldest waiting webhook is
 * dropped beyond it). A non-2xx answer, a refused connection or a timeout is retried after each
 * of `retryDelaysMs`, then the webhook is dropped. Drops are logged at warn, without secrets.
 *
 * Each attempt is signed afresh (new `timestamp`, `nonce`, `signature`, body signature header);
 * every other field is the same on every attempt, so receivers deduplicate by
 * (`room_session_id`, `room_seq`).
 */
import { randomHex } from '../random.js';
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import type { AppRegistry } from '../apps.js';
import type { RoomRef, RoomServiceEvents, RoomServiceObserver } from '../rooms/observer.js';
import { ROOM_CLOSE_REASONS, ROOM_LOGOUT_REASONS, STREAM_CLOSE_TYPES, type UnsignedWebhook, type WebhookCommon } from './events.js';
import { WEBHOOK_BODY_SIGNATURE_HEADER, webhookBodySignature, webhookSignature } from './signature.js';

export interface WebhookOptions {
  /** The wait before each retry; as many retries as delays. Default 2, 4, 8, 16, 32 s. */
  retryDelaysMs: number[];
  /** Time limit of one attempt (connecting, sending, and the answer's status). Default 5 s. */
  timeoutMs: number;
  /**
   * Webhooks of one app waiting to be sent or retried. Beyond this the oldest waiting one is
   * dropped (a first attempt before a retry). Default 10,000.
   */
  maxBacklog: number;
  /** Requests of one app in flight at once. Default 8. */
  maxConcurrency: number;
  /** How long `close()` lets queued and in-flight first attempts finish. Default 2 s. */
  closeTimeoutMs: number;
}

export const DEFAULT_WEBHOOK_OPTIONS: Readonly<WebhookOptions> = Object.freeze({
  retryDelaysMs: [2_000, 4_000, 8_000, 16_000, 32_000],
  timeoutMs: 5_000,
  maxBacklog: 10_000,
  maxConcurrency: 8,
  closeTimeoutMs: 2_000,
});

export interface WebhookDispatcherOptions {
  apps: AppRegistry;
  observer: RoomServiceObserver;
  log: Logger;
  options?: Partial<WebhookOptions>;
}

export interface WebhookStats {
  /** Waiting to be sent or retried. */
  pending: number;
  inFlight: number;
  delivered: number;
  /** Attempts that failed (each retry counts). */
  failedAttempts: number;
  dropped: number;
}

/** Room fields of a webhook, fixed when the event happens. */
type EventFields = Pick<WebhookCommon, 'appid' | 'room_id' | 'room_session_id' | 'room_seq' | 'event_time'>;

interface Delivery {
  readonly webhook: UnsignedWebhook;
  attempts: number;
  lastFailure?: string;
  timer?: NodeJS.Timeout;
}

/** The bytes of an answer read (so that the connection can be reused) before it is cut off. */
const MAX_ANSWER_BYTES = 64 * 1024;

class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  drain(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}

class AppChannel {
  readonly pending = new Fifo<Delivery>();
  /** Waiting for their retry timer, in the order they started waiting. */
  readonly retrying = new Set<Delivery>();
  inFlight = 0;
  pumpScheduled = false;

  constructor(
    readonly appID: number,
    private target: { url: string; secret: string },
  ) {}

  get url(): string {
    return this.target.url;
  }

  get secret(): string {
    return this.target.secret;
  }

  /** A reloaded configuration's callback: deliveries from now on go there, signed with its secret. */
  retarget(to: AppChannel): this {
    this.target = to.target;
    return this;
  }

  get idle(): boolean {
    return this.inFlight === 0 && this.pending.size === 0 && this.retrying.size === 0;
  }
}

function resolveOptions(given: Partial<WebhookOptions> = {}): WebhookOptions {
  const options = {
    ...DEFAULT_WEBHOOK_OPTIONS,
    ...given,
    retryDelaysMs: [...(given.retryDelaysMs ?? DEFAULT_WEBHOOK_OPTIONS.retryDelaysMs)],
  };
  const positive = (n: number): boolean => Number.isFinite(n) && n > 0;
  if (!options.retryDelaysMs.every((d) => Number.isFinite(d) && d >= 0))
    throw new Error('webhooks.retryDelaysMs must be non-negative numbers');
  if (!positive(options.timeoutMs)) throw new Error('webhooks.timeoutMs must be positive');
  if (!Number.isInteger(options.maxBacklog) || options.maxBacklog < 1) throw new Error('webhooks.maxBacklog must be a positive integer');
  if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1)
    throw new Error('webhooks.maxConcurrency must be a positive integer');
  if (!(options.closeTimeoutMs >= 0)) throw new Error('webhooks.closeTimeoutMs must be non-negative');
  return options;
}

function channelFor(app: AppConfig): AppChannel | undefined {
  if (app.callbackUrl === undefined || app.callbackUrl === '') return undefined;
  let url: URL;
  try {
    url = new URL(app.callbackUrl);
  } catch {
    throw new Error(`app ${app.appID}: callbackUrl is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`app ${app.appID}: callbackUrl must be http or https`);
  if (url.username || url.password) throw new Error(`app ${app.appID}: callbackUrl must not contain credentials`);
  if (!app.callbackSecret) throw new Error(`app ${app.appID}: callbackUrl needs a callbackSecret to sign webhooks`);
  return new AppChannel(app.appID, { url: url.href, secret: app.callbackSecret });
}

/** Why an attempt failed, in words fit for logs (never the URL, which may hold a token). */
function describeFailure(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timeout';
    if (err.name === 'AbortError') return 'aborted';
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (typeof cause?.code === 'string') return cause.code;
    return err.name;
  }
  return 'unknown error';
}

export class WebhookDispatcher {
  private readonly channels = new Map<number, AppChannel>();
  private readonly retired = new Set<AppChannel>();
  private readonly options: WebhookOptions;
  private readonly log: Logger;
  /** One per attempt under way (not one shared signal: `AbortSignal.any` on a long-lived signal leaks in Node). */
  private readonly attemptsUnderWay = new Set<AbortController>();
  private readonly unsubscribe: () => void;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly counters = { delivered: 0, failedAttempts: 0, dropped: 0 };
  private stopping = false;
  private closing: Promise<void> | undefined;

  /** Throws if an app's callback configuration or an option is invalid. */
  constructor({ apps, observer, log, options }: WebhookDispatcherOptions) {
    this.options = resolveOptions(options);
    this.log = log;
    this.setApps(apps.list());
    // A reloaded configuration applies only if every callback in it is valid.
    apps.addCheck((configs) => configs.forEach(channelFor));
    apps.observer.on('changed', (configs) => this.setApps(configs));
    // Watched even without callbacks: a reloaded configuration may add some.
    this.unsubscribe = this.watch(observer);
  }

  /**
   * The apps' callbacks, at start and from a reloaded configuration (all checked before any is
   * applied): an app's channel, with its deliveries under way, stays and sends to the new URL; an
   * app without a callback any more gets no new webhooks.
   */
  setApps(apps: AppConfig[]): void {
    const fresh = apps.flatMap((app) => channelFor(app) ?? []);
    const current = new Map(this.channels);
    // An app that comes back gets its old channel again (with the deliveries it holds).
    for (const channel of this.retired) if (!current.has(channel.appID)) current.set(channel.appID, channel);
    this.retired.clear();
    this.channels.clear();
    for (const channel of fresh) this.channels.set(channel.appID, current.get(channel.appID)?.retarget(channel) ?? channel);
    // A channel no app uses any more takes no new events; what it holds is still delivered, counted and shut down.
    for (const [appID, channel] of current) if (!this.channels.has(appID)) this.retired.add(channel);
    if (this.channels.size > 0) this.log.info({ apps: [...this.channels.keys()] }, 'webhooks enabled');
  }

  /** Whether `appID` has a callback URL, i.e. gets webhooks. */
  hasCallback(appID: number): boolean {
    return this.channels.has(appID);
  }

  /** Every channel with deliveries to make: the apps' and the retired ones. */
  private allChannels(): AppChannel[] {
    return [...this.channels.values(), ...this.retired];
  }

  stats(): WebhookStats {
    let pending = 0;
    let inFlight = 0;
    for (const channel of this.allChannels()) {
      pending += channel.pending.size + channel.retrying.size;
      inFlight += channel.inFlight;
    }
    return { pending, inFlight, ...this.counters };
  }

  /**
   * Stops watching and drops waiting retries; queued and in-flight attempts get `closeTimeoutMs`
   * to finish (failures are no longer retried), then are aborted and dropped.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.unsubscribe();
    for (const channel of this.allChannels()) {
      for (const delivery of channel.retrying) {
        clearTimeout(delivery.timer);
        this.drop(channel, delivery, `shutdown while waiting to retry (last: ${delivery.lastFailure})`);
      }
      channel.retrying.clear();
    }
    if (await this.idle(this.options.closeTimeoutMs)) return;
    for (const controller of this.attemptsUnderWay) controller.abort();
    for (const channel of this.allChannels()) {
      for (const delivery of channel.pending.drain()) this.drop(channel, delivery, 'shutdown');
    }
    await this.idle(1_000);
  }

  private watch(observer: RoomServiceObserver): () => void {
    const handlers: { [K in keyof RoomServiceEvents]: (...args: RoomServiceEvents[K]) => void } = {
      roomCreated: (ref) => this.record(ref, (f) => ({ ...f, event: 'room_create' })),
      roomClosed: ({ reason, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'room_close',
          close_reason: ROOM_CLOSE_REASONS[reason],
          reason_detail: reason,
        })),
      userJoined: ({ user, sessionID, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'room_login',
          user_account: user.userID,
          user_nickname: user.userName,
          session_id: sessionID,
        })),
      userLeft: ({ user, sessionID, reason, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'room_logout',
          user_account: user.userID,
          user_nickname: user.userName,
          session_id: sessionID,
          reason: ROOM_LOGOUT_REASONS[reason],
          reason_detail: reason,
        })),
      streamCreated: ({ stream, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'stream_create',
          user_account: stream.user.userID,
          user_nickname: stream.user.userName,
          stream_id: stream.streamID,
          extra_info: stream.extraInfo,
        })),
      streamClosed: ({ stream, reason, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'stream_close',
          user_account: stream.user.userID,
          user_nickname: stream.user.userName,
          stream_id: stream.streamID,
          extra_info: stream.extraInfo,
          type: STREAM_CLOSE_TYPES[reason],
          reason_detail: reason,
        })),
    };
    const names = Object.keys(handlers) as Array<keyof RoomServiceEvents>;
    // The mapped type above makes every event handled; the emitter's per-event typing cannot
    // follow a loop over names, hence the untyped view for attaching them.
    const emitter = observer as unknown as NodeJS.EventEmitter;
    for (const name of names) emitter.on(name, handlers[name] as (...args: unknown[]) => void);
    return () => {
      for (const name of names) emitter.off(name, handlers[name] as (...args: unknown[]) => void);
    };
  }

  /** Called synchronously by the room service: queues the event with its room event's number, nothing more. */
  private record({ appID, roomID, lifeID, seq, timeMs }: RoomRef, build: (f: EventFields) => UnsignedWebhook): void {
    const channel = this.channels.get(appID);
    if (!channel || this.stopping) return;
    try {
      const webhook = build({ appid: appID, room_id: roomID, room_session_id: lifeID, room_seq: seq, event_time: timeMs });
      this.enqueue(channel, { webhook, attempts: 0 });
    } catch (err) {
      this.log.error({ err, appID, roomID }, 'webhook not queued');
    }
  }

  private enqueue(channel: AppChannel, delivery: Delivery): void {
    if (channel.pending.size + channel.retrying.size >= this.options.maxBacklog) {
      const oldest = channel.pending.shift() ?? this.takeOldestRetry(channel);
      if (oldest) this.drop(channel, oldest, 'backlog full');
    }
    channel.pending.push(delivery);
    if (!channel.pumpScheduled) {
      // Sending starts after the room service's current operation, never inside it.
      channel.pumpScheduled = true;
      setImmediate(() => {
        channel.pumpScheduled = false;
        this.pump(channel);
      });
    }
  }

  private takeOldestRetry(channel: AppChannel): Delivery | undefined {
    const oldest = channel.retrying.values().next().value;
    if (!oldest) return undefined;
    clearTimeout(oldest.timer);
    channel.retrying.delete(oldest);
    return oldest;
  }

  private pump(channel: AppChannel): void {
    while (channel.inFlight < this.options.maxConcurrency) {
      const delivery = channel.pending.shift();
      if (!delivery) break;
      channel.inFlight++;
      void this.attempt(channel, delivery);
    }
    if (this.idleWaiters.length > 0 && this.isIdle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async attempt(channel: AppChannel, delivery: Delivery): Promise<void> {
    const failure = await this.post(channel, delivery);
    channel.inFlight--;
    if (failure === undefined) {
      this.counters.delivered++;
    } else {
      this.counters.failedAttempts++;
      delivery.lastFailure = failure;
      const delay = this.options.retryDelaysMs[delivery.attempts - 1];
      if (delay === undefined || this.stopping) {
        this.drop(channel, delivery, failure);
      } else {
        channel.retrying.add(delivery);
        delivery.timer = setTimeout(() => {
          delivery.timer = undefined;
          channel.retrying.delete(delivery);
          channel.pending.push(delivery);
          this.pump(channel);
        }, delay);
        delivery.timer.unref();
      }
    }
    this.pump(channel);
  }

  /** One signed attempt. Resolves to undefined on a 2xx answer, else to why it failed; never rejects. */
  private async post(channel: AppChannel, delivery: Delivery): Promise<string | undefined> {
    delivery.attempts++;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException('attempt timed out', 'TimeoutError')), this.options.timeoutMs);
    this.attemptsUnderWay.add(controller);
    try {
      const timestamp = Math.floor(Date.now() / 1000);
      const nonce = randomHex(8);
      const signature = webhookSignature(channel.secret, timestamp, nonce);
      const body = JSON.stringify({ ...delivery.webhook, timestamp, nonce, signature });
      const response = await fetch(channel.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Parley-Webhooks',
          [WEBHOOK_BODY_SIGNATURE_HEADER]: webhookBodySignature(channel.secret, body),
        },
        body,
        redirect: 'manual',
        signal: controller.signal,
      });
      await discardAnswer(response);
      return response.status >= 200 && response.status < 300 ? undefined : `HTTP ${response.status}`;
    } catch (err) {
      return describeFailure(err);
    } finally {
      clearTimeout(timer);
      this.attemptsUnderWay.delete(controller);
    }
  }

  private drop(channel: AppChannel, delivery: Delivery, why: string): void {
    this.counters.dropped++;
    const { event, room_id, room_seq } = delivery.webhook;
    this.log.warn({ appID: channel.appID, event, room_id, room_seq, attempts: delivery.attempts, why }, 'webhook dropped');
  }

  private isIdle(): boolean {
    for (const channel of this.allChannels()) if (!channel.idle) return false;
    return true;
  }

  /** Resolves true once nothing is queued, waiting or in flight, or false after `timeoutMs`. */
  private idle(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

/** Reads a little of the answer so the connection can be reused; the status alone decides. */
async function discardAnswer(response: Response): Promise<void> {
  const reader = response.body?.getReader();
  if (!reader) return;
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
      if (read > MAX_ANSWER_BYTES) return void (await reader.cancel());
    }
  } catch {
    // An answer cut short does not change its status.
  }
}
