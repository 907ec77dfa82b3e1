/**
 * The room bus of a cluster on Redis pub/sub: one channel, on which each node announces each room
 * event it logs, with the event. Pub/sub may lose a message (a reconnect); the next announcement
 * of the room makes up for it, since a node that sees a gap reads the log from the last event it told.
 */
import type { Logger } from 'pino';
import type { RoomBus } from '../rooms/roomFeeds.js';
import type { LoggedEvent } from '../rooms/store/roomStore.js';
import type { RedisClient } from '../rooms/store/redisRoomStore.js';

interface Announcement {
  node: string;
  appID: number;
  roomID: string;
  logged: LoggedEvent;
}

const isLogged = (value: unknown): value is LoggedEvent => {
  const l = value as Partial<LoggedEvent> | null;
  return (
    Number.isInteger(l?.seq) &&
    typeof l!.event === 'object' &&
    (l!.from === null || typeof l!.from === 'string') &&
    (l!.to === null || Array.isArray(l!.to)) &&
    typeof l!.timeMs === 'number'
  );
};

const isAnnouncement = (value: unknown): value is Announcement => {
  const a = value as Partial<Announcement> | null;
  return typeof a?.node === 'string' && typeof a.appID === 'number' && typeof a.roomID === 'string' && isLogged(a.logged);
};

export class RedisRoomBus implements RoomBus {
  private readonly channel: string;

  /** `publisher` sends; `subscriber` is a connection of its own (a subscribed connection sends nothing else). */
  constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly nodeId: string,
    private readonly log: Logger,
    prefix = 'parley',
  ) {
    this.channel = `${prefix}:room-events`;
  }

  announce({ appID, roomID }: { appID: number; roomID: string }, logged: LoggedEvent): void {
    const message: Announcement = { node: this.nodeId, appID, roomID, logged };
    this.publisher.publish(this.channel, JSON.stringify(message)).catch((err: unknown) => {
      this.log.warn({ err, appID, roomID, seq: logged.seq }, 'room event not announced to the cluster');
    });
  }

  listen(heard: (room: { appID: number; roomID: string }, logged: LoggedEvent) => void): void {
    void this.subscriber.subscribe(this.channel, (text) => {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        message = undefined;
      }
      // Something no node of this version sends: logged and skipped.
      if (!isAnnouncement(message)) return void this.log.warn({ text: text.slice(0, 200) }, 'unreadable room announcement skipped');
      if (message.node !== this.nodeId) heard({ appID: message.appID, roomID: message.roomID }, message.logged);
    });
  }
}
