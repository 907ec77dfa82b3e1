/**
 * Talking inside a room: broadcast messages and custom commands (numbered room events, so a
 * client that reconnects gets what it missed), barrage messages (best effort), room extra info
 * (kept, so late joiners get it) and stream extra info and devices. Users send through their
 * session; the server API sends on behalf of a user without one. Called by the room service in
 * its app's queue.
 */
import { randomUUID } from 'node:crypto';
import {
  carriesMedia,
  ErrorCode,
  validateMessage,
  validateRoomExtraInfo,
  validateStreamExtraInfo,
  type ReplyData,
  type StreamDevices,
  type User,
} from '@parley/protocol';
import type { Limits } from '../config.js';
import { TokenBucket } from '../rateLimit.js';
import { fail, ok, type Failure, type FailureCode, type Outcome } from '../outcome.js';
import { emit, type RoomContext } from './roomContext.js';
import type { RoomRecord, SessionRecord } from './store/roomStore.js';
import { streamDevicesOf, streamInfoOf } from './streams.js';

/** Who sends: a user's session (which is not told its own message), or the server API on behalf of a user (no session). */
export interface Sender {
  user: User;
  sessionID: string | null;
}

export type MessagingLimits = Pick<Limits, 'roomMessagesPerSecond' | 'roomMessageBurst' | 'maxRoomExtraInfoKeys'>;

type RoomKey = Pick<RoomRecord, 'appID' | 'roomID'>;
export const senderOf = (session: SessionRecord): Sender => ({ user: session.user, sessionID: session.sessionID });
export const roomOf = (session: SessionRecord): RoomKey => ({ appID: session.appID, roomID: session.roomID });

export class RoomMessaging {
  /** Each open room's rate limit on this server, by `appID/roomID`. */
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly ctx: RoomContext,
    private readonly limits: MessagingLimits,
  ) {}

  async broadcast(room: RoomKey, from: Sender, message: string): Promise<Outcome<ReplyData<'broadcastMessage'>>> {
    const refused = this.refused(room, message);
    if (refused) return refused;
    const messageID = await this.ctx.store.nextMessageID(room.appID, room.roomID);
    if (messageID === undefined) return fail(ErrorCode.NotLoggedIn, `room ${room.roomID} is not open`);
    const sent = { message, messageID, sendTime: this.ctx.clock.now(), fromUser: from.user };
    await emit(this.ctx, room, { event: { type: 'broadcastMessage', message: sent }, from: from.sessionID });
    return ok({ messageID });
  }

  /** Best effort: not kept for reconnecting clients, and skipped for clients that are behind. */
  async barrage(room: RoomKey, from: Sender, message: string): Promise<Outcome<ReplyData<'barrageMessage'>>> {
    const refused = this.refused(room, message);
    if (refused) return refused;
    const messageID = randomUUID();
    const push = {
      type: 'barrageMessage' as const,
      roomID: room.roomID,
      messages: [{ message, messageID, sendTime: this.ctx.clock.now(), fromUser: from.user }],
    };
    for (const other of this.ctx.live.inRoom(room.appID, room.roomID)) if (other.sessionID !== from.sessionID) other.link?.send(push, true);
    return ok({ messageID });
  }

  /** To the listed users of the room (unknown ones are ignored), or to everyone else when `toUserIDs` is null. */
  async customCommand(
    room: RoomKey,
    from: Sender,
    command: string,
    toUserIDs: string[] | null,
  ): Promise<Outcome<ReplyData<'customCommand'>>> {
    const refused = this.refused(room, command);
    if (refused) return refused;
    await emit(this.ctx, room, { event: { type: 'customCommand', fromUser: from.user, command }, from: from.sessionID, to: toUserIDs });
    return ok({});
  }

  async setRoomExtraInfo(session: SessionRecord, key: string, value: string): Promise<Outcome<ReplyData<'setRoomExtraInfo'>>> {
    const invalid = validateRoomExtraInfo(key, value);
    if (invalid) return fail(invalid as FailureCode, 'room extra info key or value empty or too long');
    const { store, clock } = this.ctx;
    const room = roomOf(session);
    if (!this.bucket(room).take()) return fail(ErrorCode.RateLimited, 'too many messages in this room; slow down');
    const info = { key, value, updateUser: session.user, updateTime: clock.now() };
    const set = await store.setRoomExtraInfo(room.appID, room.roomID, info, this.limits.maxRoomExtraInfoKeys);
    if (set.code !== 0) return set;
    await emit(this.ctx, room, { event: { type: 'roomExtraInfoUpdate', extraInfos: [info] }, from: session.sessionID });
    return ok({});
  }

  /** Changes a stream's extra info; others are told if the stream is live (else they learn it when it is). */
  async setStreamExtraInfo(session: SessionRecord, streamID: string, extraInfo: string): Promise<Outcome<ReplyData<'setStreamExtraInfo'>>> {
    if (validateStreamExtraInfo(extraInfo)) return fail(ErrorCode.StreamExtraInfoTooLong, 'stream extra info too long');
    const { store } = this.ctx;
    const publication = await store.publication(session.appID, streamID);
    if (publication?.sessionID !== session.sessionID) return fail(ErrorCode.StreamNotFound, `not publishing ${streamID}`);
    if (publication.extraInfo === extraInfo) return ok({});
    const changed = await store.updatePublication(session.appID, publication, { extraInfo });
    if (changed?.live) {
      await emit(this.ctx, roomOf(session), {
        event: { type: 'streamExtraInfoUpdate', streams: [streamInfoOf(changed)] },
        from: session.sessionID,
      });
    }
    return ok({});
  }

  /** The publisher's camera, microphone and speaker states; others are told if the stream is live (else when it is). */
  async setStreamDevices(session: SessionRecord, { streamID, ...devices }: StreamDevices): Promise<Outcome<ReplyData<'setStreamDevices'>>> {
    const { store, live } = this.ctx;
    const publication = await store.publication(session.appID, streamID);
    if (publication?.sessionID !== session.sessionID) return fail(ErrorCode.StreamNotFound, `not publishing ${streamID}`);
    const now = publication.devices;
    if (devices.camera === now.camera && devices.microphone === now.microphone && devices.speaker === now.speaker) return ok({});
    const changed = await store.updatePublication(session.appID, publication, { devices });
    if (!changed) return ok({});
    live.publisherMedia(changed.publicationID)?.setMediaDue(carriesMedia(devices));
    if (changed.live) {
      await emit(this.ctx, roomOf(session), {
        event: { type: 'streamDevicesUpdate', streams: [streamDevicesOf(changed)] },
        from: session.sessionID,
      });
    }
    return ok({});
  }

  /** Forgets a closed room's rate limit. */
  forget(room: RoomKey): void {
    this.buckets.delete(`${room.appID}/${room.roomID}`);
  }

  private refused(room: RoomKey, text: string): Failure | undefined {
    if (validateMessage(text)) return fail(ErrorCode.MessageTooLong, 'messages are at most 1024 bytes');
    if (!this.bucket(room).take()) return fail(ErrorCode.RateLimited, 'too many messages in this room; slow down');
    return undefined;
  }

  private bucket(room: RoomKey): TokenBucket {
    const key = `${room.appID}/${room.roomID}`;
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = new TokenBucket(this.limits.roomMessagesPerSecond, this.limits.roomMessageBurst)));
    return bucket;
  }
}
