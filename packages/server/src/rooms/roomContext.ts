/**
 * What the parts of the room service share, passed down to each: the store they write through,
 * this server's live handles, time, the observer they report to, and the queue that runs one
 * operation of an app at a time.
 */
import type { Logger } from 'pino';
import type { RelayAddress } from '../media/index.js';
import type { RoomClock } from './clock.js';
import type { LiveHandles } from './liveHandles.js';
import type { RoomFeeds } from './roomFeeds.js';
import type { RoomRef, RoomServiceObserver } from './observer.js';
import type { EventToLog, LoggedEvent, RoomRecord, RoomStore } from './store/roomStore.js';

export interface RoomContext {
  readonly store: RoomStore;
  readonly live: LiveHandles;
  readonly clock: RoomClock;
  readonly log: Logger;
  readonly observer: RoomServiceObserver;
  readonly queues: AppQueues;
  readonly feeds: RoomFeeds;
  readonly nodes: NodeDirectory;
}

/** The servers sharing the room state as the rooms see them: this one's name, and where another takes relays of its streams. */
export interface NodeDirectory {
  readonly nodeId: string;
  relayAddressOf(nodeId: string): Promise<RelayAddress | undefined>;
}

/** A server alone: every stream's media is here. */
export const LONE_NODE: NodeDirectory = { nodeId: 'local', relayAddressOf: () => Promise.resolve(undefined) };

/**
 * Runs the operations of each app one after another, so that an operation's reads and writes of
 * the store see no other operation of this server in between (the store's own operations stay
 * atomic across servers). Apps never wait for each other.
 */
export class AppQueues {
  private readonly tails = new Map<number, Promise<unknown>>();

  run<T>(appID: number, operation: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(appID) ?? Promise.resolve()).then(operation);
    const tail = result.catch(() => undefined);
    this.tails.set(appID, tail);
    void tail.then(() => {
      if (this.tails.get(appID) === tail) this.tails.delete(appID);
    });
    return result;
  }

  /** Resolves once every operation queued so far (and those they queued) has finished. */
  async settled(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}

/** Numbers and logs an event of an open room, then tells it to those it concerns. */
export async function emit(
  { store, feeds }: RoomContext,
  room: Pick<RoomRecord, 'appID' | 'roomID'>,
  entry: EventToLog,
): Promise<LoggedEvent | undefined> {
  const logged = await store.appendEvent(room.appID, room.roomID, entry);
  if (logged) await feeds.logged(room, logged);
  return logged;
}

/** The observer's reference to the room event `logged` of `room`. */
export const refOf = (room: Pick<RoomRecord, 'appID' | 'roomID' | 'lifeID'>, logged: LoggedEvent): RoomRef => ({
  appID: room.appID,
  roomID: room.roomID,
  lifeID: room.lifeID,
  seq: logged.seq,
  timeMs: logged.timeMs,
});
