/** The delay-based detector's input: packet groups and the deltas between them (libwebrtc's inter_arrival_delta.cc). */

/** Packets sent within this long of a group's first packet form one group. */
const SEND_GROUP_LENGTH_MS = 5;
/** A packet arriving at most this soon after the previous one, and sooner than it was sent after it, queued behind it. */
const BURST_DELTA_THRESHOLD_MS = 5;
const MAX_BURST_DURATION_MS = 100;
/** After this many groups in a row arriving out of order, assume the receiver's clock jumped and start over. */
const REORDERED_RESET_THRESHOLD = 3;
/** Arrival times advancing this much more than feedback times did mean the receiver's clock jumped. */
const ARRIVAL_TIME_OFFSET_THRESHOLD_MS = 3000;

/** A group of packets sent close together. */
class PacketGroup {
  empty = true;
  firstSendMs = 0;
  lastSendMs = 0;
  firstArrivalMs = 0;
  lastArrivalMs = 0;
  /** When the feedback reporting its last packet reached us: the local clock to check arrival times against. */
  lastFeedbackMs = 0;

  start(sendMs: number, arrivalMs: number): void {
    this.empty = false;
    this.firstSendMs = this.lastSendMs = sendMs;
    this.firstArrivalMs = arrivalMs;
  }
}

/** InterArrivalDelta: send- and arrival-time deltas between consecutive packet groups, fed in arrival order. */
export class InterArrival {
  sendDeltaMs = 0;
  arrivalDeltaMs = 0;
  private current = new PacketGroup();
  private previous = new PacketGroup();
  private consecutiveReordered = 0;

  /** Adds a received packet; true when that completed a group and the deltas hold its difference from the one before. */
  add(sendMs: number, arrivalMs: number, feedbackMs: number): boolean {
    const current = this.current;
    let computed = false;
    if (current.empty) {
      current.start(sendMs, arrivalMs);
    } else if (sendMs < current.firstSendMs) {
      return false; // sent before the current group: reordered, ignored
    } else if (this.startsNewGroup(sendMs, arrivalMs)) {
      const previous = this.previous;
      if (!previous.empty) {
        this.sendDeltaMs = current.lastSendMs - previous.lastSendMs;
        this.arrivalDeltaMs = current.lastArrivalMs - previous.lastArrivalMs;
        if (this.arrivalDeltaMs - (current.lastFeedbackMs - previous.lastFeedbackMs) >= ARRIVAL_TIME_OFFSET_THRESHOLD_MS) {
          this.reset();
          return false;
        }
        if (this.arrivalDeltaMs < 0) {
          if (++this.consecutiveReordered >= REORDERED_RESET_THRESHOLD) this.reset();
          return false;
        }
        this.consecutiveReordered = 0;
        computed = true;
      }
      // The finished group becomes the previous one; the old previous is reused for the new group.
      this.previous = current;
      this.current = previous;
      previous.start(sendMs, arrivalMs);
    } else {
      current.lastSendMs = Math.max(current.lastSendMs, sendMs);
    }
    this.current.lastArrivalMs = arrivalMs;
    this.current.lastFeedbackMs = feedbackMs;
    return computed;
  }

  private startsNewGroup(sendMs: number, arrivalMs: number): boolean {
    return !this.belongsToBurst(sendMs, arrivalMs) && sendMs - this.current.firstSendMs > SEND_GROUP_LENGTH_MS;
  }

  /** Packets that queued behind each other in the network count as one group, however far apart they were sent. */
  private belongsToBurst(sendMs: number, arrivalMs: number): boolean {
    const current = this.current;
    const arrivalDeltaMs = arrivalMs - current.lastArrivalMs;
    const sendDeltaMs = sendMs - current.lastSendMs;
    if (sendDeltaMs === 0) return true;
    return (
      arrivalDeltaMs - sendDeltaMs < 0 &&
      arrivalDeltaMs <= BURST_DELTA_THRESHOLD_MS &&
      arrivalMs - current.firstArrivalMs < MAX_BURST_DURATION_MS
    );
  }

  private reset(): void {
    this.consecutiveReordered = 0;
    this.current.empty = true;
    this.previous.empty = true;
  }
}
