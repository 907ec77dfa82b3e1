/**
 * When to try again after a broken connection: exponential backoff with jitter, within a window.
 * Jitter spreads the reconnects of many clients after a server restart.
 */
export interface ReconnectPolicyOptions {
  /** Give up once this long has passed since the connection broke. */
  windowMs: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]. */
  jitter?: number;
}

export class ReconnectPolicy {
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly jitter: number;

  constructor(
    private readonly options: ReconnectPolicyOptions,
    private readonly random: () => number = Math.random,
  ) {
    this.initialDelayMs = options.initialDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 5000;
    this.jitter = options.jitter ?? 0.25;
  }

  /** The wait before attempt number `attempt` (0-based), or null when the window is over. */
  nextDelay(attempt: number, elapsedMs: number): number | null {
    const remaining = this.options.windowMs - elapsedMs;
    if (remaining <= 0) return null;
    // The first retry is immediate: most breaks are one dead socket, not a dead network.
    const base = attempt === 0 ? 0 : Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** (attempt - 1));
    const delay = base * (1 + this.jitter * (2 * this.random() - 1));
    return Math.min(delay, remaining);
  }
}
