/**
 * What every webhook queue shares: the apps' callbacks, one signed attempt, the counters and the
 * log line of a dropped webhook. A queue (memoryWebhookQueue.ts alone, redisWebhookQueue.ts in a
 * cluster) decides when to attempt and what to retry; the sender only sends.
 *
 * Each attempt is signed afresh (new `timestamp`, `nonce`, `signature`, body signature header);
 * every other field, `event_id` among them, is the same on every attempt and redelivery.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import type { AppRegistry } from '../apps.js';
import { randomHex } from '../random.js';
import type { UnsignedWebhook } from './events.js';
import type { WebhookOptions, WebhookStats } from './options.js';
import { WEBHOOK_BODY_SIGNATURE_HEADER, webhookBodySignature, webhookSignature } from './signature.js';

/** Where an app's webhooks go, and the secret that signs them. */
interface CallbackTarget {
  readonly url: string;
  readonly secret: string;
}

/** Holds the webhooks that happened and hands them to the sender; one per dispatcher. */
export interface WebhookQueue {
  /** Takes a webhook as the room service reports it: synchronous, never throws, no HTTP before it returns. */
  push(webhook: UnsignedWebhook): void;
  /** What it holds now: waiting and in flight. */
  held(): Pick<WebhookStats, 'pending' | 'inFlight'>;
  /** Stops taking and sending, within the options' `closeTimeoutMs` and a little more. */
  close(): Promise<void>;
}

/** Makes the dispatcher's queue once the sender and options are known. */
export type WebhookQueueFactory = (sender: WebhookSender, options: WebhookOptions, log: Logger) => WebhookQueue;

/** The bytes of an answer read (so that the connection can be reused) before it is cut off. */
const MAX_ANSWER_BYTES = 64 * 1024;

function targetFor(app: AppConfig): CallbackTarget | undefined {
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
  return { url: url.href, secret: app.callbackSecret };
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

export class WebhookSender {
  /** The apps that get webhooks now. */
  private readonly current = new Map<number, CallbackTarget>();
  /**
   * Every app's last callback, those of apps since removed too: what a queue still holds for a
   * removed app is delivered where it was going (and an app that comes back gets its new one).
   */
  private readonly known = new Map<number, CallbackTarget>();
  /** One per attempt under way (not one shared signal: `AbortSignal.any` on a long-lived signal leaks in Node). */
  private readonly attemptsUnderWay = new Set<AbortController>();
  readonly counters = { delivered: 0, failedAttempts: 0, dropped: 0 };

  /** Throws if an app's callback configuration is invalid. */
  constructor(
    apps: AppRegistry,
    private readonly options: Pick<WebhookOptions, 'timeoutMs'>,
    private readonly log: Logger,
  ) {
    this.setApps(apps.list());
    // A reloaded configuration applies only if every callback in it is valid.
    apps.addCheck((configs) => configs.forEach(targetFor));
    apps.observer.on('changed', (configs) => this.setApps(configs));
  }

  /** The apps' callbacks, at start and from a reloaded configuration (all checked before any is applied). */
  setApps(apps: AppConfig[]): void {
    const fresh = apps.flatMap((app) => {
      const target = targetFor(app);
      return target ? [[app.appID, target] as const] : [];
    });
    this.current.clear();
    for (const [appID, target] of fresh) {
      this.current.set(appID, target);
      this.known.set(appID, target);
    }
    if (this.current.size > 0) this.log.info({ apps: [...this.current.keys()] }, 'webhooks enabled');
  }

  /** Whether `appID` has a callback URL, i.e. gets webhooks. */
  hasCallback(appID: number): boolean {
    return this.current.has(appID);
  }

  /** One signed attempt. Resolves to undefined on a 2xx answer, else to why it failed; never rejects. */
  async post(webhook: UnsignedWebhook): Promise<string | undefined> {
    const failure = await this.attempt(webhook);
    if (failure === undefined) this.counters.delivered++;
    else this.counters.failedAttempts++;
    return failure;
  }

  private async attempt(webhook: UnsignedWebhook): Promise<string | undefined> {
    const target = this.known.get(webhook.appid);
    // A cluster's other node may hold a webhook of an app this node does not serve.
    if (!target) return 'no callback for this app';
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException('attempt timed out', 'TimeoutError')), this.options.timeoutMs);
    this.attemptsUnderWay.add(controller);
    try {
      const timestamp = Math.floor(Date.now() / 1000);
      const nonce = randomHex(8);
      const signature = webhookSignature(target.secret, timestamp, nonce);
      const body = JSON.stringify({ ...webhook, timestamp, nonce, signature });
      const response = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Parley-Webhooks',
          [WEBHOOK_BODY_SIGNATURE_HEADER]: webhookBodySignature(target.secret, body),
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

  /** Cuts short every attempt under way (each then fails as 'aborted'). */
  abortAll(): void {
    for (const controller of this.attemptsUnderWay) controller.abort();
  }

  /** Counts and logs (at warn, without secrets) a webhook given up on. */
  drop(webhook: UnsignedWebhook, attempts: number, why: string): void {
    this.counters.dropped++;
    const { event, room_id, room_seq, event_id } = webhook;
    this.log.warn({ appID: webhook.appid, event, room_id, room_seq, event_id, attempts, why }, 'webhook dropped');
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
