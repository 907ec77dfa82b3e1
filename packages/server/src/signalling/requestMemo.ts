/**
 * The reliable requests of this server's sessions under way or just done, by client sequence: a
 * repeat that comes while the first is still being done waits for its outcome. Whether one was
 * done before, on any server, the room service remembers (RoomService.once).
 */
import type { RoomServiceObserver } from '../rooms/observer.js';

/** More than a client can have in flight when its connection breaks. */
const RECENT_OUTCOMES = 256;

export class RequestMemo {
  private readonly recentOutcomes = new Map<number, Promise<unknown>>();

  /** The outcome of request `clientSeq` if it is under way or done here, else that of `action`. */
  once<T>(clientSeq: number, action: () => Promise<T>): Promise<T> {
    const known = this.recentOutcomes.get(clientSeq);
    if (known) return known as Promise<T>;
    const outcome = action();
    this.recentOutcomes.set(clientSeq, outcome);
    if (this.recentOutcomes.size > RECENT_OUTCOMES) this.recentOutcomes.delete(this.recentOutcomes.keys().next().value!);
    return outcome;
  }
}

/** Each session's memo, kept while the session lasts. */
export class RequestMemos {
  private readonly memos = new Map<string, RequestMemo>();

  constructor(observer: RoomServiceObserver) {
    observer.on('userLeft', ({ sessionID }) => this.memos.delete(sessionID));
  }

  of(sessionID: string): RequestMemo {
    let memo = this.memos.get(sessionID);
    if (!memo) this.memos.set(sessionID, (memo = new RequestMemo()));
    return memo;
  }
}
