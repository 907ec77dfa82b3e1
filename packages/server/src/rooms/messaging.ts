/**
 * Talking inside a room: broadcast messages and custom commands (numbered room events, so a
 * client that reconnects gets what it missed), barrage messages (best effort), room extra info
 * (kept, so late joiners get it) and stream extra info. Users send through their session; the
 * server API sends on behalf of a user without one.
 */
import { randomUUID } from 'node:crypto';
import {
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
import { Session, type Room } from './model.js';
import { fail, type Failure, type FailureCode, type Outcome } from '../outcome.js';

/** Who sends: a user's session (which is not told its own message), or the server API on behalf of a user. */
export type Sender = Session | User;

const sender = (from: Sender): { user: User; session: Session | null } =>
  from instanceof Session ? { user: from.user, session: from } : { user: from, session: null };

export type MessagingLimits = Pick<Limits, 'roomMessagesPerSecond' | 'roomMessageBurst' | 'maxRoomExtraInfoKeys'>;

export class RoomMessaging {
  private readonly buckets = new WeakMap<Room, TokenBucket>();

  constructor(private readonly limits: MessagingLimits) {}

  broadcast(room: Room, from: Sender, message: string): Outcome<ReplyData<'broadcastMessage'>> {
    const refused = this.refused(room, message);
    if (refused) return refused;
    const { user, session } = sender(from);
    const messageID = ++room.messageSeq;
    room.emit({ type: 'broadcastMessage', message: { message, messageID, sendTime: Date.now(), fromUser: user } }, session);
    return { code: 0, data: { messageID } };
  }

  /** Best effort: not kept for reconnecting clients, and skipped for clients that are behind. */
  barrage(room: Room, from: Sender, message: string): Outcome<ReplyData<'barrageMessage'>> {
    const refused = this.refused(room, message);
    if (refused) return refused;
    const { user, session } = sender(from);
    const messageID = randomUUID();
    const push = {
      type: 'barrageMessage' as const,
      roomID: room.id,
      messages: [{ message, messageID, sendTime: Date.now(), fromUser: user }],
    };
    for (const other of room.sessions.values()) if (other !== session) other.send(push, true);
    return { code: 0, data: { messageID } };
  }

  /** To the listed users of the room (unknown ones are ignored), or to everyone else when `toUserIDs` is null. */
  customCommand(room: Room, from: Sender, command: string, toUserIDs: string[] | null): Outcome<ReplyData<'customCommand'>> {
    const refused = this.refused(room, command);
    if (refused) return refused;
    const { user, session } = sender(from);
    room.emit({ type: 'customCommand', fromUser: user, command }, session, toUserIDs ? new Set(toUserIDs) : undefined);
    return { code: 0, data: {} };
  }

  setRoomExtraInfo(session: Session, key: string, value: string): Outcome<ReplyData<'setRoomExtraInfo'>> {
    const { room } = session;
    const invalid = validateRoomExtraInfo(key, value);
    if (invalid) return fail(invalid as FailureCode, 'room extra info key or value empty or too long');
    if (!room.extraInfos.has(key) && room.extraInfos.size >= this.limits.maxRoomExtraInfoKeys)
      return fail(ErrorCode.RoomExtraInfoTooManyKeys, `at most ${this.limits.maxRoomExtraInfoKeys} room extra info keys`);
    if (!this.bucket(room).take()) return fail(ErrorCode.RateLimited, 'too many messages in this room; slow down');
    const info = { key, value, updateUser: session.user, updateTime: Date.now() };
    room.extraInfos.set(key, info);
    room.emit({ type: 'roomExtraInfoUpdate', extraInfos: [info] }, session);
    return { code: 0, data: {} };
  }

  /** Changes a stream's extra info; others are told if the stream is live (else they learn it when it is). */
  setStreamExtraInfo(session: Session, streamID: string, extraInfo: string): Outcome<ReplyData<'setStreamExtraInfo'>> {
    if (validateStreamExtraInfo(extraInfo)) return fail(ErrorCode.StreamExtraInfoTooLong, 'stream extra info too long');
    const publication = session.publications.get(streamID);
    if (!publication) return fail(ErrorCode.StreamNotFound, `not publishing ${streamID}`);
    if (publication.extraInfo === extraInfo) return { code: 0, data: {} };
    publication.extraInfo = extraInfo;
    if (publication.live) session.room.emit({ type: 'streamExtraInfoUpdate', streams: [publication.info] }, session);
    return { code: 0, data: {} };
  }

  /** The publisher's camera, microphone and speaker states; others are told if the stream is live (else when it is). */
  setStreamDevices(session: Session, { streamID, camera, microphone, speaker }: StreamDevices): Outcome<ReplyData<'setStreamDevices'>> {
    const publication = session.publications.get(streamID);
    if (!publication) return fail(ErrorCode.StreamNotFound, `not publishing ${streamID}`);
    if (publication.setDevices({ camera, microphone, speaker }) && publication.live) {
      session.room.emit({ type: 'streamDevicesUpdate', streams: [publication.devices] }, session);
    }
    return { code: 0, data: {} };
  }

  private refused(room: Room, text: string): Failure | undefined {
    if (validateMessage(text)) return fail(ErrorCode.MessageTooLong, 'messages are at most 1024 bytes');
    if (!this.bucket(room).take()) return fail(ErrorCode.RateLimited, 'too many messages in this room; slow down');
    return undefined;
  }

  private bucket(room: Room): TokenBucket {
    let bucket = this.buckets.get(room);
    if (!bucket) this.buckets.set(room, (bucket = new TokenBucket(this.limits.roomMessagesPerSecond, this.limits.roomMessageBurst)));
    return bucket;
  }
}
