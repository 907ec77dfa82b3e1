/**
 * The server API's actions: what each takes (zod schemas, which also make the OpenAPI document)
 * and what it does to the rooms.
 */
import { z } from 'zod';
import { ErrorCode, isCdnUrl, type User } from '@parley/protocol';
import type { RoomService, RoomView } from '../rooms/roomService.js';
import type { RoomMessaging, Sender } from '../rooms/messaging.js';
import type { Outcome } from '../outcome.js';
import { recordFileFields, RecordStatus, type Recordings } from '../egress/recordings.js';
import { RecordQuitReason, type RecordingTask } from '../egress/recordingTask.js';
import type { Mixing } from '../egress/mixing.js';

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
  /** Recording: no `recording` in the server's configuration. */
  RecordingNotConfigured: 300000002,
  RecordTaskNotFound: 300001000,
  RecordTaskStopped: 300001001,
  RecordSystemError: 300010000,
  /** Mixing: it failed (its stream could not be published). */
  MixFailed: 110200001,
  /** Mixing: an input that is not published, or a task that does not exist. */
  MixInputError: 110200002,
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
  StartRecord: z.object({
    RoomId: roomId,
    RecordInputParams: z.object({
      /** 1: each stream to its own files; 2: the room's streams mixed in a grid, to one file. */
      RecordMode: z.union([z.literal(1), z.literal(2)], { error: 'RecordMode must be 1 (single-stream) or 2 (mixed)' }),
      /** Mixed mode's picture. */
      MixConfig: z
        .object({
          MixOutputVideoConfig: z
            .object({
              Width: z.coerce.number().int().min(16).max(1920).multipleOf(2),
              Height: z.coerce.number().int().min(16).max(1080).multipleOf(2),
              Fps: z.coerce.number().int().min(1).max(30).default(15),
              /** Bits per second. */
              Bitrate: z.coerce.number().int().min(50_000).max(10_000_000).default(1_500_000),
            })
            .optional(),
        })
        .optional(),
      /** 1 audio, 2 video, 3 both in one file, 4 both in separate files. */
      StreamType: z.coerce.number().int().min(1).max(4).default(3),
      RecordStreamList: z
        .array(z.object({ StreamId: streamId }))
        .max(100)
        .default([]),
      /** Seconds without a stream to record before the task ends. */
      MaxIdleTime: z.coerce.number().int().min(1).max(86_400).default(30),
      /** Seconds before the task ends whatever happens. */
      MaxRecordTime: z.coerce.number().int().min(1).max(86_400).default(86_400),
    }),
    RecordOutputParams: z
      .object({
        OutputFileFormat: z.enum(['webm', 'mkv', 'ogg'], { error: 'OutputFileFormat must be webm, mkv or ogg' }).optional(),
      })
      .default({}),
  }),
  StopRecord: z.object({ TaskId: z.string().min(1).max(64) }),
  StartMix: z
    .object({
      TaskId: z.string().min(1).max(128),
      MixInput: z
        .array(
          z.object({
            StreamId: streamId,
            /** Where the input goes in the output picture, in pixels. */
            RectInfo: z.object({
              Top: z.coerce.number().int().min(0),
              Left: z.coerce.number().int().min(0),
              Bottom: z.coerce.number().int().min(1),
              Right: z.coerce.number().int().min(1),
            }),
          }),
        )
        .min(1)
        .max(9),
      /** Each a streamID (the mix as a Parley stream; at most one) or an rtmp:// URL; the first's size, rate and bitrate apply. */
      MixOutput: z
        .array(
          z.object({
            StreamId: z.union([streamId.regex(/^[0-9A-Za-z_-]+$/), z.string().refine(isCdnUrl, 'must be an rtmp:// or rtmps:// URL')]),
            Width: z.coerce.number().int().min(16).max(1920).multipleOf(2).default(640),
            Height: z.coerce.number().int().min(16).max(1080).multipleOf(2).default(360),
            Fps: z.coerce.number().int().min(1).max(30).default(15),
            /** Bits per second. */
            VideoBitrate: z.coerce.number().int().min(50_000).max(10_000_000).default(800_000),
            AudioBitrate: z.coerce.number().int().min(16_000).max(256_000).default(64_000),
          }),
        )
        .min(1)
        .max(4),
    })
    .refine((p) => p.MixOutput.filter((o) => !isCdnUrl(o.StreamId)).length <= 1, 'MixOutput: at most one streamID')
    .refine(
      (p) =>
        p.MixInput.every(
          ({ RectInfo: r }) =>
            r.Right > r.Left && r.Bottom > r.Top && r.Right <= p.MixOutput[0]!.Width && r.Bottom <= p.MixOutput[0]!.Height,
        ),
      'MixInput: each RectInfo must lie within the output (Left < Right ≤ Width, Top < Bottom ≤ Height)',
    ),
  StopMix: z.object({ TaskId: z.string().min(1).max(128) }),
  DescribeRecordStatus: z.object({ TaskId: z.string().min(1).max(64) }),
};

export type ActionName = keyof typeof actionSchemas;
type Params<A extends ActionName> = z.infer<(typeof actionSchemas)[A]>;
/** What actions act on: the rooms, and the recordings when the server records. */
export interface ApiServices {
  rooms: RoomService;
  recordings: Recordings | undefined;
  mixing: Mixing | undefined;
}
type Handler<P> = (services: ApiServices, appID: number, params: P) => Promise<ActionResult>;

const roomNotFound = (roomID: string): ActionResult => ({ Code: ApiCode.RoomNotFound, Message: `room ${roomID} does not exist` });

/** A handler that reads one open room (5018 if it is not open). */
const viewing =
  <P extends { RoomId: string }>(handler: (view: RoomView, params: P) => ActionResult): Handler<P> =>
  async ({ rooms }, appID, params) => {
    const view = await rooms.describeRoom(appID, params.RoomId);
    return view ? handler(view, params) : roomNotFound(params.RoomId);
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

type MessageParams = { RoomId: string; FromUserId: string; FromUserName?: string | undefined; MessageContent: string };

/** Sends a room message on behalf of the request's user (5018 if the room is not open). */
const sending =
  <P extends MessageParams, T>(
    send: (messaging: RoomMessaging, room: { appID: number; roomID: string }, from: Sender, params: P) => Promise<Outcome<T>>,
    data?: (sent: T) => unknown,
  ): Handler<P> =>
  async ({ rooms }, appID, params) => {
    const outcome = await rooms.sayAs(appID, params.RoomId, sender(params), (messaging, room, from) => send(messaging, room, from, params));
    if (!outcome) return roomNotFound(params.RoomId);
    return messagingResult(outcome, outcome.code === 0 && data ? data(outcome.data) : undefined);
  };

/** A handler of the recordings (300000002 when the server does not record). */
const recording =
  <P>(handler: (recordings: Recordings, appID: number, params: P) => Promise<ActionResult>): Handler<P> =>
  async ({ recordings }, appID, params) =>
    recordings
      ? handler(recordings, appID, params)
      : { Code: ApiCode.RecordingNotConfigured, Message: 'this server does not record (no recording.dir)' };

/** A handler of mixing (a server without it answers 300000002, as one that does not record). */
const mixer =
  <P>(handler: (mixing: Mixing, appID: number, params: P) => Promise<ActionResult>): Handler<P> =>
  async ({ mixing }, appID, params) =>
    mixing ? handler(mixing, appID, params) : { Code: ApiCode.RecordingNotConfigured, Message: 'this server does not mix' };

/** A handler of one of the app's recording tasks (300001000 when there is none of that ID). */
const recordingTask = <P extends { TaskId: string }>(handler: (task: RecordingTask) => Promise<ActionResult>): Handler<P> =>
  recording(async (recordings, appID, { TaskId }) => {
    const task = recordings.task(appID, TaskId);
    return task ? handler(task) : { Code: ApiCode.RecordTaskNotFound, Message: `no recording task ${TaskId}` };
  });

export const actionHandlers: { [A in ActionName]: Handler<Params<A>> } = {
  KickoutUser: async ({ rooms }, appID, { RoomId, UserId }) => {
    if (!(await rooms.describeRoom(appID, RoomId))) return roomNotFound(RoomId);
    const kicked = [];
    for (const id of UserId) if (await rooms.kickOut(appID, RoomId, id)) kicked.push(id);
    return ok({ KickedUsers: kicked });
  },
  CloseRoom: async ({ rooms }, appID, { RoomId }) => ((await rooms.closeRoom(appID, RoomId)) ? ok() : roomNotFound(RoomId)),
  DescribeUserNum: async ({ rooms }, appID, { RoomId }) =>
    ok({
      UserCountList: await Promise.all(
        RoomId.map(async (id) => ({ RoomId: id, UserCount: (await rooms.describeRoom(appID, id))?.users.length ?? 0 })),
      ),
    }),
  DescribeUsers: viewing(({ users }, { Mode, Limit, Marker }) => {
    if (Mode === 1) users.reverse();
    const start = Number(Marker || 0);
    const page = users.slice(start, start + Limit);
    const next = start + page.length < users.length ? String(start + page.length) : '';
    return ok({ Marker: next, UserList: page.map((u) => ({ UserId: u.userID, UserName: u.userName })) });
  }),
  DescribeSimpleStreamList: viewing(({ streams }) =>
    ok({
      StreamList: streams.map((s) => ({ StreamId: s.streamID, UserId: s.user.userID, UserName: s.user.userName, ExtraInfo: s.extraInfo })),
    }),
  ),
  SendBroadcastMessage: sending(
    (messaging, room, from, params) => messaging.broadcast(room, from, params.MessageContent),
    (sent) => ({ MessageId: sent.messageID }),
  ),
  SendCustomCommand: sending((messaging, room, from, params) =>
    messaging.customCommand(room, from, params.MessageContent, params.ToUserId ?? null),
  ),
  ForbidRTCStream: async ({ rooms }, appID, { StreamId }) => {
    await rooms.forbidStream(appID, StreamId);
    return ok();
  },
  ResumeRTCStream: async ({ rooms }, appID, { StreamId }) => {
    await rooms.resumeStream(appID, StreamId);
    return ok();
  },
  StartRecord: recording(async (recordings, appID, { RoomId, RecordInputParams: input, RecordOutputParams: output }) => {
    try {
      const video = input.MixConfig?.MixOutputVideoConfig;
      const task = await recordings.start(
        {
          appID,
          roomId: RoomId,
          recordMode: input.RecordMode,
          streamType: input.StreamType as 1 | 2 | 3 | 4,
          streamIds: input.RecordStreamList.map((s) => s.StreamId),
          format: output.OutputFileFormat,
          maxIdleMs: input.MaxIdleTime * 1000,
          maxRecordMs: input.MaxRecordTime * 1000,
        },
        video && { width: video.Width, height: video.Height, fps: video.Fps, bitrateBps: video.Bitrate },
      );
      return ok({ TaskId: task.params.taskId });
    } catch (err) {
      return { Code: ApiCode.RecordSystemError, Message: `the recording folder cannot be made: ${(err as Error).message}` };
    }
  }),
  StopRecord: recordingTask(async (task) => {
    if (task.state.kind !== 'recording') return { Code: ApiCode.RecordTaskStopped, Message: 'the task has ended already' };
    // Its files are finished after the answer (DescribeRecordStatus says when: Status 3).
    void task.end(RecordQuitReason.Stopped);
    return ok();
  }),
  StartMix: mixer(async (mixing, appID, { TaskId, MixInput, MixOutput }) => {
    const [first] = MixOutput;
    const streamOutput = MixOutput.find((o) => !isCdnUrl(o.StreamId));
    const started = await mixing.start({
      taskID: TaskId,
      appID,
      inputs: MixInput.map(({ StreamId, RectInfo: r }) => ({
        streamID: StreamId,
        content: 'both' as const,
        rect: { left: r.Left, top: r.Top, width: r.Right - r.Left, height: r.Bottom - r.Top },
      })),
      outputStreamID: streamOutput?.StreamId ?? `mix_${TaskId.replace(/[^0-9A-Za-z_-]/g, '_')}`.slice(0, 256),
      outputUrls: MixOutput.filter((o) => o !== streamOutput).map((o) => o.StreamId),
      video: { width: first!.Width, height: first!.Height, fps: first!.Fps, bitrateBps: first!.VideoBitrate },
      audioBitrateBps: first!.AudioBitrate,
    });
    if ('refused' in started)
      return { Code: started.code === 'input' ? ApiCode.MixInputError : ApiCode.MixFailed, Message: started.refused };
    return ok({ TaskId, StreamId: started.started.taskParams.outputStreamID });
  }),
  StopMix: mixer(async (mixing, appID, { TaskId }) => {
    const task = mixing.task(appID, TaskId);
    if (!task) return { Code: ApiCode.MixInputError, Message: `no mixing task ${TaskId}` };
    await task.end('stopped');
    return ok();
  }),
  DescribeRecordStatus: recordingTask(async (task) => {
    const { state, params } = task;
    const status =
      state.kind !== 'ended'
        ? RecordStatus.Recording
        : state.reason === RecordQuitReason.FileWriteFailed
          ? RecordStatus.EndedAbnormally
          : RecordStatus.Ended;
    return ok({
      RoomId: params.roomId,
      RecordMode: params.recordMode,
      StreamType: params.streamType,
      Status: status,
      RecordBeginTimestamp: task.beganAt,
      ...(state.kind === 'ended' && { RecordEndTimestamp: state.endedAt, QuitReason: state.reason }),
      ...(state.kind === 'ended' && state.failure !== undefined && { Failure: state.failure }),
      RecordFiles: task.files.map(recordFileFields),
    });
  }),
};
