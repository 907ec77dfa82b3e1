/**
 * The room bus of a cluster on Redis pub/sub: one channel, on which each node announces the rooms
 * it logged events of and their newest numbers. Pub/sub may lose a message (a reconnect); the next
 * announcement of the room makes up for it, since nodes read the log from the last event they told.
 */
import type { Logger } from 'pino';
import type { RoomBus } from '../rooms/roomFeeds.js';
import type { RedisClient } from '../rooms/store/redisRoomStore.js';

interface Announcement {
  node: string;
  appID: number;
  roomID: string;
  seq: number;
}

const isAnnouncement = (value: unknown): value is Announcement => {
  const a = value as Partial<Announcement> | null;
  return typeof a?.node === 'string' && typeof a.appID === 'number' && typeof a.roomID === 'string' && typeof a.seq === 'number';
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

  announce({ appID, roomID }: { appID: number; roomID: string }, seq: number): void {
    const message: Announcement = { node: this.nodeId, appID, roomID, seq };
    this.publisher.publish(this.channel, JSON.stringify(message)).catch((err: unknown) => {
      this.log.warn({ err, appID, roomID, seq }, 'room event not announced to the cluster');
    });
  }

  listen(heard: (room: { appID: number; roomID: string }, seq: number) => void): void {
    void this.subscriber.subscribe(this.channel, (text) => {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        message = undefined;
      }
      // Something no node of this version sends: logged and skipped.
      if (!isAnnouncement(message)) return void this.log.warn({ text: text.slice(0, 200) }, 'unreadable room announcement skipped');
      if (message.node !== this.nodeId) heard({ appID: message.appID, roomID: message.roomID }, message.seq);
    });
  }
}
