/** Webhook delivery options (the configuration's `webhooks`), their defaults and their checks. */

export interface WebhookOptions {
  /** The wait before each retry; as many retries as delays. Default 2, 4, 8, 16, 32 s. */
  retryDelaysMs: number[];
  /** Time limit of one attempt (connecting, sending, and the answer's status). Default 5 s. */
  timeoutMs: number;
  /**
   * Webhooks of one app waiting to be sent or retried. Beyond this the oldest waiting one is
   * dropped (a first attempt before a retry). Default 10,000. In a cluster it also bounds each
   * partition's stream in Redis (MAXLEN ~).
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

export interface WebhookStats {
  /** Waiting to be sent or retried (in a cluster: held by this node). */
  pending: number;
  inFlight: number;
  delivered: number;
  /** Attempts that failed (each retry counts). */
  failedAttempts: number;
  dropped: number;
}

/** The options with their defaults; throws on an invalid one. */
export function resolveWebhookOptions(given: Partial<WebhookOptions> = {}): WebhookOptions {
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
