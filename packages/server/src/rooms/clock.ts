/** Wall-clock time and timers for the room rules: Date.now and setTimeout, unless a test brings a simulated clock. */
export interface RoomClock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fire` once after `delayMs`, unless the returned function is called first. */
  after(delayMs: number, fire: () => void): () => void;
  /** Calls `tick` every `intervalMs` until the returned function is called. */
  every(intervalMs: number, tick: () => void): () => void;
}

/** Timers cannot wait longer than ~24.8 days; a longer wait is made of steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const realRoomClock: RoomClock = {
  now: () => Date.now(),
  after(delayMs, fire) {
    let timer: NodeJS.Timeout;
    const due = Date.now() + delayMs;
    const arm = (): void => {
      const wait = due - Date.now();
      timer = wait > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fire, Math.max(0, wait));
    };
    arm();
    return () => clearTimeout(timer);
  },
  every(intervalMs, tick) {
    const timer = setInterval(tick, intervalMs).unref();
    return () => clearInterval(timer);
  },
};
