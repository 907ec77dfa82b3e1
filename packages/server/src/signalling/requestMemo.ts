/**
 * The reliable requests a session has had done (by client sequence): a client re-sends them after
 * a reconnect until answered, and a repeat gets the first outcome instead of being done twice.
 */
import type { RoomServiceObserver } from '../rooms/observer.js';

/** More than a client can have in flight when its connection breaks. */
const RECENT_OUTCOMES = 256;

export class RequestMemo {
  private lastClientSeq = 0;
  private readonly recentOutcomes = new Map<number, Promise<unknown>>();

  /** The outcome of request `clientSeq` if it was done already, else runs `action` and remembers its outcome. */
  once<T>(clientSeq: number, action: () => Promise<T>): Promise<T> {
    if (clientSeq <= this.lastClientSeq)
      return (this.recentOutcomes.get(clientSeq) ?? Promise.resolve({ code: 0, data: {} })) as Promise<T>;
    this.lastClientSeq = clientSeq;
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
