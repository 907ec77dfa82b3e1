/**
 * The webhook queue of a single process: in memory, one queue per app, so one app's failing or
 * slow receiver delays only its own webhooks. The HTTP work happens after the room service's
 * operation, with a bounded number of requests in flight and a bounded backlog (the oldest waiting
 * webhook is dropped beyond it). A failed attempt is retried after each of `retryDelaysMs`, then
 * the webhook is dropped. Deliveries are unordered: receivers order by `room_seq`.
 */
import type { Logger } from 'pino';
import type { UnsignedWebhook } from './events.js';
import type { WebhookOptions, WebhookStats } from './options.js';
import type { WebhookQueue, WebhookSender } from './sender.js';

interface Delivery {
  readonly webhook: UnsignedWebhook;
  attempts: number;
  lastFailure?: string;
  timer?: NodeJS.Timeout;
}

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

/** One app's webhooks. Kept when the app leaves the configuration: what it holds is still delivered. */
class AppChannel {
  readonly pending = new Fifo<Delivery>();
  /** Waiting for their retry timer, in the order they started waiting. */
  readonly retrying = new Set<Delivery>();
  inFlight = 0;
  pumpScheduled = false;

  get idle(): boolean {
    return this.inFlight === 0 && this.pending.size === 0 && this.retrying.size === 0;
  }
}

export class MemoryWebhookQueue implements WebhookQueue {
  private readonly channels = new Map<number, AppChannel>();
  private readonly idleWaiters: Array<() => void> = [];
  private stopping = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly sender: WebhookSender,
    private readonly options: WebhookOptions,
  ) {}

  static factory(this: void, sender: WebhookSender, options: WebhookOptions, _log: Logger): WebhookQueue {
    return new MemoryWebhookQueue(sender, options);
  }

  held(): Pick<WebhookStats, 'pending' | 'inFlight'> {
    let pending = 0;
    let inFlight = 0;
    for (const channel of this.channels.values()) {
      pending += channel.pending.size + channel.retrying.size;
      inFlight += channel.inFlight;
    }
    return { pending, inFlight };
  }

  push(webhook: UnsignedWebhook): void {
    if (this.stopping) return;
    let channel = this.channels.get(webhook.appid);
    if (!channel) this.channels.set(webhook.appid, (channel = new AppChannel()));
    this.enqueue(channel, { webhook, attempts: 0 });
  }

  /**
   * Drops waiting retries; queued and in-flight attempts get `closeTimeoutMs` to finish (failures
   * are no longer retried), then are aborted and dropped.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    for (const channel of this.channels.values()) {
      for (const delivery of channel.retrying) {
        clearTimeout(delivery.timer);
        this.drop(delivery, `shutdown while waiting to retry (last: ${delivery.lastFailure})`);
      }
      channel.retrying.clear();
    }
    if (await this.idle(this.options.closeTimeoutMs)) return;
    this.sender.abortAll();
    for (const channel of this.channels.values()) {
      for (const delivery of channel.pending.drain()) this.drop(delivery, 'shutdown');
    }
    await this.idle(1_000);
  }

  private enqueue(channel: AppChannel, delivery: Delivery): void {
    if (channel.pending.size + channel.retrying.size >= this.options.maxBacklog) {
      const oldest = channel.pending.shift() ?? this.takeOldestRetry(channel);
      if (oldest) this.drop(oldest, 'backlog full');
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
    delivery.attempts++;
    const failure = await this.sender.post(delivery.webhook);
    channel.inFlight--;
    if (failure !== undefined) {
      delivery.lastFailure = failure;
      const delay = this.options.retryDelaysMs[delivery.attempts - 1];
      if (delay === undefined || this.stopping) {
        this.drop(delivery, failure);
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

  private drop(delivery: Delivery, why: string): void {
    this.sender.drop(delivery.webhook, delivery.attempts, why);
  }

  private isIdle(): boolean {
    for (const channel of this.channels.values()) if (!channel.idle) return false;
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
