/**
 * The server API's actions: what each takes (zod schemas, which also make the OpenAPI document)
 * and what it does to the rooms.
 */
import { z } from 'zod';
import { ErrorCode, type User } from '@parley/protocol';
import type { RoomService } from '../rooms/roomService.js';
import type { Outcome } from '../outcome.js';
import type { Room } from '../rooms/model.js';

/** Codes of the server API (not those of the SDK). */
export const ApiCode = {
  Success: 0,
  InvalidParameter: 2,
  RateLimited: 7,
  AppIdInvalid: 100000001,
  TimestampMissing: 100000002,
  TimestampInvalid: 100000003,
  SignatureExpired: 100000004,
  SignatureWrong: 100000005,
  ActionMissing: 100000006,
  ActionUnsupported: 100000007,
  NonceMissing: 100000008,
  SignatureMissing: 100000009,
  AppUnknown: 100000011,
  SignatureVersionMissing: 100000013,
  SignatureVersionUnsupported: 100000014,
  RoomNotFound: 5018,
} as const;

export type ActionResult = { Code: number; Message: string; Data?: unknown };

const ok = (Data: unknown = {}): ActionResult => ({ Code: ApiCode.Success, Message: 'success', Data });

// A list may come as `Key[]=a&Key[]=b`, `Key=a&Key=b`, a single `Key=a`, or a JSON array.
const list = <T extends z.ZodType>(item: T, max: number) =>
  z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(item).min(1).max(max));
const roomId = z.string().min(1).max(128).describe('roomID');
const userId = z.string().min(1).max(64).describe('userID');
const streamId = z.string().min(1).max(256).describe('streamID');
const content = z.string().max(4096).describe('at most 1024 bytes of UTF-8');

export const actionSchemas = {
  KickoutUser: z.object({ RoomId: roomId, UserId: list(userId, 5), CustomReason: z.string().max(256).optional() }),
  CloseRoom: z.object({ RoomId: roomId, CustomReason: z.string().max(256).optional() }),
  DescribeUserNum: z.object({ RoomId: list(roomId, 10) }),
  DescribeUsers: z.object({
    RoomId: roomId,
    /** 0: in login order, 1: newest first. */
    Mode: z.coerce.number().int().min(0).max(1).default(0),
    Limit: z.coerce.number().int().min(1).max(200).default(200),
    /** From the previous page's reply; empty for the first page. */
    Marker: z.string().regex(/^\d*$/).max(12).default(''),
  }),
  DescribeSimpleStreamList: z.object({ RoomId: roomId }),
  SendBroadcastMessage: z.object({
    RoomId: roomId,
    FromUserId: userId,
    FromUserName: z.string().max(255).optional(),
    MessageContent: content,
  }),
  SendCustomCommand: z.object({
    RoomId: roomId,
    FromUserId: userId,
    FromUserName: z.string().max(255).optional(),
    MessageContent: content,
    /** Everyone in the room when absent. */
    ToUserId: list(userId, 1000).optional(),
  }),
  ForbidRTCStream: z.object({ StreamId: streamId }),
  ResumeRTCStream: z.object({ StreamId: streamId }),
};

export type ActionName = keyof typeof actionSchemas;
type Params<A extends ActionName> = z.infer<(typeof actionSchemas)[A]>;
type Handler<P> = (rooms: RoomService, appID: number, params: P) => ActionResult;

/** A handler for actions on one existing room (5018 if it does not exist). */
const inRoom =
  <P extends { RoomId: string }>(handler: (rooms: RoomService, room: Room, params: P) => ActionResult): Handler<P> =>
  (rooms, appID, params) => {
    const room = rooms.room(appID, params.RoomId);
    return room ? handler(rooms, room, params) : { Code: ApiCode.RoomNotFound, Message: `room ${params.RoomId} does not exist` };
  };

/** Maps a room-messaging outcome to the API's codes. */
function messagingResult(outcome: Outcome<unknown>, data?: unknown): ActionResult {
  if (outcome.code === 0) return ok(data);
  return { Code: outcome.code === ErrorCode.RateLimited ? ApiCode.RateLimited : ApiCode.InvalidParameter, Message: outcome.message };
}

const sender = (params: { FromUserId: string; FromUserName?: string | undefined }): User => ({
  userID: params.FromUserId,
  userName: params.FromUserName ?? params.FromUserId,
});

export const actionHandlers: { [A in ActionName]: Handler<Params<A>> } = {
  KickoutUser: inRoom((rooms, room, { UserId }) => ok({ KickedUsers: UserId.filter((id) => rooms.kickOut(room, id)) })),
  CloseRoom: inRoom((rooms, room) => {
    rooms.closeRoom(room);
    return ok();
  }),
  DescribeUserNum: (rooms, appID, { RoomId }) =>
    ok({ UserCountList: RoomId.map((id) => ({ RoomId: id, UserCount: rooms.room(appID, id)?.sessions.size ?? 0 })) }),
  DescribeUsers: inRoom((_rooms, room, { Mode, Limit, Marker }) => {
    const users = room.users();
    if (Mode === 1) users.reverse();
    const start = Number(Marker || 0);
    const page = users.slice(start, start + Limit);
    const next = start + page.length < users.length ? String(start + page.length) : '';
    return ok({ Marker: next, UserList: page.map((u) => ({ UserId: u.userID, UserName: u.userName })) });
  }),
  DescribeSimpleStreamList: inRoom((_rooms, room) =>
    ok({
      StreamList: room
        .streams()
        .map((s) => ({ StreamId: s.streamID, UserId: s.user.userID, UserName: s.user.userName, ExtraInfo: s.extraInfo })),
    }),
  ),
  SendBroadcastMessage: inRoom((rooms, room, params) => {
    const outcome = rooms.messaging.broadcast(room, sender(params), params.MessageContent);
    return messagingResult(outcome, outcome.code === 0 ? { MessageId: outcome.data.messageID } : undefined);
  }),
  SendCustomCommand: inRoom((rooms, room, params) =>
    messagingResult(rooms.messaging.customCommand(room, sender(params), params.MessageContent, params.ToUserId ?? null)),
  ),
  ForbidRTCStream: (rooms, appID, { StreamId }) => {
    rooms.forbidStream(appID, StreamId);
    return ok();
  },
  ResumeRTCStream: (rooms, appID, { StreamId }) => {
    rooms.resumeStream(appID, StreamId);
    return ok();
  },
};
