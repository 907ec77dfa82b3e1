/** Time and timers for the media plane's control loops: performance.now() and setInterval, unless a test brings its own. */
export interface Clock {
  now(): number;
  /** Calls `tick` every `intervalMs` until the returned function is called. */
  every(intervalMs: number, tick: () => void): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  every(intervalMs, tick) {
    const timer = setInterval(tick, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** Milliseconds from the NTP epoch (1900) to the Unix epoch. */
export const NTP_EPOCH_OFFSET_MS = 2_208_988_800_000;

/** Now as a 64-bit NTP timestamp, for RTCP sender reports. */
export function ntpNow(): bigint {
  const ms = performance.timeOrigin + performance.now() + NTP_EPOCH_OFFSET_MS;
  const seconds = Math.floor(ms / 1000);
  return (BigInt(seconds) << 32n) | BigInt(Math.floor(((ms - seconds * 1000) / 1000) * 2 ** 32));
}
