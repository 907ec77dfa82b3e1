/**
 * Each room's events told to this server's sessions in the room's order. The events this server
 * logs are told as it logs them; those other servers of a cluster log are announced on the room
 * bus, each with its event: the one that follows the last one told here is told at once, and
 * after a gap (a missed announcement) the log is read from the last one told, so that none is
 * skipped or told twice. Runs in the app's queue.
 */
import type { Logger } from 'pino';
import type { LiveHandles, LiveSession } from './liveHandles.js';
import type { LoggedEvent, RoomRecord, RoomStore } from './store/roomStore.js';

type RoomKey = Pick<RoomRecord, 'appID' | 'roomID'>;

/** Whether a logged event is for `session`: not its own, addressed to it, and of a kind it wants. */
export function concerns({ event, from, to }: LoggedEvent, session: LiveSession): boolean {
  if (!event || session.sessionID === from || (to && !to.includes(session.user.userID))) return false;
  return event.type !== 'userUpdate' || session.notifyUserUpdates;
}

/** Tells the sessions of the room on this server an event that concerns them. */
function deliver(live: LiveHandles, room: RoomKey, logged: LoggedEvent): void {
  if (!logged.event) return;
  for (const session of live.inRoom(room.appID, room.roomID)) if (concerns(logged, session)) session.link?.send(logged.event);
}

/** How the servers of a cluster tell each other that a room logged events. */
export interface RoomBus {
  /** This server logged the room's event `logged` (its newest). */
  announce(room: RoomKey, logged: LoggedEvent): void;
  /** Calls `heard` for what other servers announce. */
  listen(heard: (room: RoomKey, logged: LoggedEvent) => void): void;
}

/** One server alone: nobody to tell, nothing to hear. */
export const NO_BUS: RoomBus = { announce: () => {}, listen: () => {} };

export class RoomFeeds {
  constructor(
    private readonly store: RoomStore,
    private readonly live: LiveHandles,
    private readonly bus: RoomBus,
    private readonly log: Logger,
    /** Told of each event logged elsewhere, after it was told to the sessions here. */
    private readonly loggedElsewhere: (room: RoomKey, logged: LoggedEvent) => Promise<void>,
  ) {}

  /** Tells an event this server just logged (after any the room logged elsewhere before it), and announces it. */
  async logged(room: RoomKey, logged: LoggedEvent): Promise<void> {
    const last = this.live.deliveredSeq(room.appID, room.roomID);
    if (last !== undefined && logged.seq > last + 1) await this.catchUp(room, last);
    if ((this.live.deliveredSeq(room.appID, room.roomID) ?? 0) < logged.seq) {
      deliver(this.live, room, logged);
      this.live.setDeliveredSeq(room.appID, room.roomID, logged.seq);
    }
    this.bus.announce(room, logged);
  }

  /** Another server logged the room's event `logged`, and those before it. */
  async heard(room: RoomKey, logged: LoggedEvent): Promise<void> {
    const last = this.live.deliveredSeq(room.appID, room.roomID);
    if (last === undefined || logged.seq <= last) return;
    if (logged.seq > last + 1) return this.catchUp(room, last);
    deliver(this.live, room, logged);
    this.live.setDeliveredSeq(room.appID, room.roomID, logged.seq);
    await this.loggedElsewhere(room, logged);
  }

  private async catchUp(room: RoomKey, last: number): Promise<void> {
    const events = await this.store.eventsSince(room.appID, room.roomID, last);
    if (!events) {
      // Only if this server fell more than a log's length behind: its sessions miss those events.
      const seq = (await this.store.room(room.appID, room.roomID))?.seq;
      this.log.warn({ ...room, from: last, to: seq }, 'room events no longer kept were not told here');
      if (seq !== undefined) this.live.setDeliveredSeq(room.appID, room.roomID, seq);
      return;
    }
    for (const event of events) {
      deliver(this.live, room, event);
      this.live.setDeliveredSeq(room.appID, room.roomID, event.seq);
      await this.loggedElsewhere(room, event);
    }
  }
}
