/**
 * Signalling messages exchanged over the WebSocket, as zod schemas: each side validates what it
 * receives at the edge and works with typed values afterwards. Frames are JSON objects with a
 * `type`; requests carry a client-chosen `id` that the server echoes in its `reply`.
 */
import { z } from 'zod';
import { MAX_MESSAGE_BYTES } from './identifiers.js';

export const PROTOCOL_VERSION = 1;
/** The largest signalling frame either side accepts (an SDP offer with many codecs is ~10 KB). */
export const MAX_FRAME_BYTES = 64 * 1024;
export const MAX_SDP_BYTES = 32 * 1024;

const requestId = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
// Identifier strings are capped here only to bound work; their exact rules (and codes) are
// applied by the server's room logic, see identifiers.ts.
const id = z.string().max(512);
const sdp = z.string().min(1).max(MAX_SDP_BYTES);
/** Which of a session's transports for a stream: the one publishing it or the one playing it. */
const mediaRole = z.enum(['publish', 'play']);
/** Where a stream is relayed: an RTMP(S) URL. */
export const isCdnUrl = (target: string): boolean => target.length <= 1024 && /^rtmps?:\/\/\S+$/.test(target);
const cdnUrl = z.string().refine(isCdnUrl, 'must be an rtmp:// or rtmps:// URL');
/** StreamRelayCDNInfo: a relay's URL, StreamRelayCDNState (0 none, 1 requesting, 2 relaying), StreamRelayCDNUpdateReason and when (ms). */
const streamRelayCdnInfoSchema = z.object({
  url: z.string(),
  state: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  updateReason: z.number().int().min(0).max(10),
  stateTime: z.number(),
});
export type StreamRelayCDNInfo = z.infer<typeof streamRelayCdnInfoSchema>;
const pixels = z.number().int().min(0).max(4096);
/** MixerTask: inputs by layout (contentType 0 audio, 1 audio and video, 2 video only), outputs (a streamID or an rtmp:// URL), bitrates in kbit/s. */
const mixerTaskSchema = z.object({
  taskID: z.string().min(1).max(128),
  inputList: z
    .array(
      z.object({
        streamID: id,
        contentType: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
        layout: z.object({ x: pixels, y: pixels, width: pixels, height: pixels }),
      }),
    )
    .max(9),
  outputList: z.array(z.object({ target: z.string().min(1).max(1024) })).max(4),
  videoConfig: z
    .object({ width: pixels, height: pixels, fps: z.number().int().min(1).max(30), bitrate: z.number().int().min(50).max(10_000) })
    .optional(),
  audioConfig: z.object({ bitrate: z.number().int().min(16).max(256) }).optional(),
});
export type MixerTask = z.infer<typeof mixerTaskSchema>;
export type MediaRole = z.infer<typeof mediaRole>;

export const userSchema = z.object({ userID: id, userName: id });
export type User = z.infer<typeof userSchema>;

export const streamInfoSchema = z.object({ user: userSchema, streamID: id, extraInfo: z.string().max(4096) });
export type StreamInfo = z.infer<typeof streamInfoSchema>;

// Frames may carry more so that an overlong message gets its own code (1009002) rather than 1000090.
const messageText = z.string().max(MAX_MESSAGE_BYTES * 4);

export const messageInfoSchema = z.object({
  message: z.string(),
  /** Numbered per room, increasing. */
  messageID: z.number().int(),
  /** Server time in ms. */
  sendTime: z.number(),
  fromUser: userSchema,
});
export type BroadcastMessageInfo = z.infer<typeof messageInfoSchema>;

export const barrageMessageInfoSchema = messageInfoSchema.extend({ messageID: z.string() });
export type BarrageMessageInfo = z.infer<typeof barrageMessageInfoSchema>;

/** A published stream's devices as its players are told (RemoteDeviceState values). */
const deviceState = z.number().int().min(0).max(15);
export const streamDevicesSchema = z.object({ streamID: id, camera: deviceState, microphone: deviceState, speaker: deviceState });
export type StreamDevices = z.infer<typeof streamDevicesSchema>;

/**
 * Whether a stream sends media with these device states: its camera or microphone is on and not
 * muted (RemoteDeviceState.Open is 0). A player that muted video or audio leaves that out: the
 * server does not forward it. Media liveness is judged only while this holds.
 */
export function carriesMedia(
  { camera, microphone }: Pick<StreamDevices, 'camera' | 'microphone'>,
  muted: { video: boolean; audio: boolean } = { video: false, audio: false },
): boolean {
  return (camera === 0 && !muted.video) || (microphone === 0 && !muted.audio);
}
export const roomExtraInfoSchema = z.object({ key: z.string(), value: z.string(), updateUser: userSchema, updateTime: z.number() });
export type RoomExtraInfo = z.infer<typeof roomExtraInfoSchema>;

/**
 * Requests the SDK never loses across a reconnect carry a per-session sequence number; the server
 * answers a repeat (sent again after a reconnect) without doing it twice.
 */
const clientSeq = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const roomConfigSchema = z.object({
  isUserStatusNotify: z.boolean(),
  maxMemberCount: z.number().int().nonnegative().max(1_000_000),
  /**
   * The client is in several rooms at once (RoomMode.MultiRoom): this login replaces the user's
   * session in the same room only, and other multi-room sessions of the user stay.
   */
  multiRoom: z.boolean().optional(),
});

const loginAuthSchema = z.union([
  z.object({ appSignProof: z.string().regex(/^[0-9a-f]{64}$/) }),
  z.object({ token: z.string().min(1).max(4096) }),
  z.object({}),
]);

/**
 * What a player wants of a simulcast stream: `type` is a VideoStreamType (automatic, smallest or
 * largest layer); in automatic mode a view of `viewWidth`×`viewHeight` pixels caps the layer (0: no view, no cap).
 */
export const playVideoSchema = z.object({
  type: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  viewWidth: z.number().int().min(0).max(16_384),
  viewHeight: z.number().int().min(0).max(16_384),
});
export type PlayVideo = z.infer<typeof playVideoSchema>;
/** What a player does not want forwarded. */
export const playMutedSchema = z.object({ video: z.boolean(), audio: z.boolean() });
export type PlayMuted = z.infer<typeof playMutedSchema>;

export const clientMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('login'),
    id: requestId,
    appID: z.number().int().nonnegative().max(0xffffffff),
    roomID: id,
    user: userSchema,
    config: roomConfigSchema,
    auth: loginAuthSchema,
    /**
     * Set by an SDK logging in again after the server forgot its session: refused with KickedOut
     * if another session of the same userID exists, so that the later login keeps winning.
     */
    rejoin: z.boolean().optional(),
  }),
  z.object({ type: z.literal('logout'), id: requestId }),
  z.object({
    type: z.literal('publish'),
    id: requestId,
    streamID: id,
    sdp,
    extraInfo: z.string().max(4096),
    /** The camera's, microphone's and speaker's states as players are to be told (Open when absent). */
    devices: streamDevicesSchema.omit({ streamID: true }).optional(),
  }),
  z.object({ type: z.literal('unpublish'), id: requestId, streamID: id }),
  z.object({
    type: z.literal('play'),
    id: requestId,
    streamID: id,
    sdp,
    attempt: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    video: playVideoSchema.optional(),
    muted: playMutedSchema.optional(),
  }),
  /** mutePlayStreamVideo / mutePlayStreamAudio: the server stops (or resumes) forwarding them. */
  z.object({ type: z.literal('mutePlay'), id: requestId, streamID: id, muted: playMutedSchema }),
  /** The player's choice of video layer and the size of its view changed. */
  z.object({ type: z.literal('playVideo'), id: requestId, streamID: id, video: playVideoSchema }),
  z.object({ type: z.literal('unplay'), id: requestId, streamID: id }),
  /**
   * The media of a stream being published or played stopped flowing: new ICE credentials for its
   * transport (an offer from `pc.restartIce()`); DTLS, SRTP and everything above stay as they are.
   */
  z.object({ type: z.literal('restartIce'), id: requestId, streamID: id, role: mediaRole, sdp }),
  /** addPublishCdnUrl / removePublishCdnUrl: the server pushes (or stops pushing) a stream the session publishes to an RTMP URL. */
  z.object({ type: z.literal('addCdnUrl'), id: requestId, streamID: id, url: cdnUrl }),
  z.object({ type: z.literal('removeCdnUrl'), id: requestId, streamID: id, url: cdnUrl }),
  /** startMixerTask (again with the same taskID: new inputs or layout) and stopMixerTask. */
  z.object({ type: z.literal('startMixerTask'), id: requestId, task: mixerTaskSchema }),
  z.object({ type: z.literal('stopMixerTask'), id: requestId, taskID: z.string().min(1).max(128) }),
  z.object({ type: z.literal('heartbeat'), id: requestId }),
  /** Replaces the session's token before it expires. */
  z.object({ type: z.literal('renewToken'), id: requestId, token: z.string().min(1).max(4096) }),
  z.object({ type: z.literal('broadcastMessage'), id: requestId, clientSeq, message: messageText }),
  /** Best effort: not replayed after a reconnect, skipped for receivers that are behind. */
  z.object({ type: z.literal('barrageMessage'), id: requestId, message: messageText }),
  /** To the listed userIDs, or everyone else in the room when `toUserIDs` is null. */
  z.object({
    type: z.literal('customCommand'),
    id: requestId,
    clientSeq,
    command: messageText,
    toUserIDs: z.array(id).max(1000).nullable(),
  }),
  z.object({ type: z.literal('setRoomExtraInfo'), id: requestId, clientSeq, key: z.string().max(512), value: z.string().max(512) }),
  z.object({ type: z.literal('setStreamExtraInfo'), id: requestId, clientSeq, streamID: id, extraInfo: z.string().max(4096) }),
  /** The publisher turned its camera, microphone or speaker off or on, or muted what it sends. */
  z.object({ type: z.literal('setStreamDevices'), id: requestId, clientSeq, ...streamDevicesSchema.shape }),
  /** Re-attaches a session after the connection broke; `lastSeq` is the last room event the client saw. */
  z.object({
    type: z.literal('resume'),
    id: requestId,
    appID: z.number().int().nonnegative().max(0xffffffff),
    sessionID: z.string().max(64),
    proof: z.string().regex(/^[0-9a-f]{64}$/),
    lastSeq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  }),
]);
export type ClientMessage = z.infer<typeof clientMessageSchema>;
export type ClientMessageType = ClientMessage['type'];
export type ClientRequest<T extends ClientMessageType> = Extract<ClientMessage, { type: T }>;

/** What a successful reply carries, per request type. */
const updateType = z.union([z.literal(0), z.literal(1)]);
/** A room notification of `type`: its room and its number in the room's sequence, then `fields`. */
const roomEvent = <T extends string, F extends z.ZodRawShape>(type: T, fields: F) =>
  z.object({ type: z.literal(type), roomID: id, seq: z.number().int(), ...fields });
const userUpdateSchema = roomEvent('userUpdate', { updateType, users: z.array(userSchema) });
const streamUpdateSchema = roomEvent('streamUpdate', { updateType, streams: z.array(streamInfoSchema) });
const broadcastEventSchema = roomEvent('broadcastMessage', { message: messageInfoSchema });
const customCommandEventSchema = roomEvent('customCommand', { fromUser: userSchema, command: z.string() });
const roomExtraInfoEventSchema = roomEvent('roomExtraInfoUpdate', { extraInfos: z.array(roomExtraInfoSchema) });
const streamExtraInfoEventSchema = roomEvent('streamExtraInfoUpdate', { streams: z.array(streamInfoSchema) });
const streamDevicesEventSchema = roomEvent('streamDevicesUpdate', { streams: z.array(streamDevicesSchema) });
/** Room notifications: numbered per room, replayed after a resume. */
export const roomEventSchema = z.discriminatedUnion('type', [
  userUpdateSchema,
  streamUpdateSchema,
  broadcastEventSchema,
  customCommandEventSchema,
  roomExtraInfoEventSchema,
  streamExtraInfoEventSchema,
  streamDevicesEventSchema,
]);
export type RoomEvent = z.infer<typeof roomEventSchema>;

/**
 * A TURN server and the short-lived credentials for it (the TURN REST API scheme: `username` is
 * "<expiry in unix seconds>:<userID>", `credential` its HMAC-SHA1 under the server's shared secret).
 */
export const iceServerSchema = z.object({
  urls: z.array(z.string().max(512)).max(8),
  username: z.string().max(512),
  credential: z.string().max(512),
});
export type IceServer = z.infer<typeof iceServerSchema>;

export const replyDataSchemas = {
  login: z.object({
    sessionID: z.string(),
    /** Secret for resuming this session after a broken connection. */
    resumeToken: z.string().regex(/^[0-9a-f]{32}$/),
    /** The room's latest event number: events after it are news. */
    seq: z.number().int(),
    users: z.array(userSchema),
    streams: z.array(streamInfoSchema),
    /** The room's extra info as it is now. */
    extraInfos: z.array(roomExtraInfoSchema),
    /** The devices of the streams (those not all Open). */
    streamDevices: z.array(streamDevicesSchema),
    /** TURN servers for this session's peer connections, when the server has TURN configured. */
    iceServers: z.array(iceServerSchema).optional(),
  }),
  resume: z.object({
    seq: z.number().int(),
    /** What the client missed, in order; absent when too much was missed, then `snapshot` is the room as it is. */
    events: z.array(roomEventSchema).optional(),
    snapshot: z
      .object({
        users: z.array(userSchema),
        streams: z.array(streamInfoSchema),
        extraInfos: z.array(roomExtraInfoSchema),
        streamDevices: z.array(streamDevicesSchema),
      })
      .optional(),
    /** Every stream the server has this session publishing and playing (media connected or not). */
    publishing: z.array(id),
    playing: z.array(id),
    /** Fresh TURN credentials, as at login. */
    iceServers: z.array(iceServerSchema).optional(),
  }),
  logout: z.object({}),
  publish: z.object({ sdp }),
  unpublish: z.object({}),
  play: z.object({ sdp }),
  playVideo: z.object({}),
  mutePlay: z.object({}),
  unplay: z.object({}),
  restartIce: z.object({ sdp }),
  addCdnUrl: z.object({}),
  removeCdnUrl: z.object({}),
  startMixerTask: z.object({}),
  stopMixerTask: z.object({}),
  heartbeat: z.object({}),
  renewToken: z.object({}),
  broadcastMessage: z.object({ messageID: z.number().int() }),
  barrageMessage: z.object({ messageID: z.string() }),
  customCommand: z.object({}),
  setRoomExtraInfo: z.object({}),
  setStreamExtraInfo: z.object({}),
  setStreamDevices: z.object({}),
} satisfies Record<ClientMessageType, z.ZodType>;
export type ReplyData<T extends ClientMessageType> = z.infer<(typeof replyDataSchemas)[T]>;

export const serverMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    protocolVersion: z.number().int(),
    nonce: z.string().min(16).max(128),
    heartbeatIntervalMs: z.number().int().positive(),
  }),
  z.object({
    type: z.literal('reply'),
    id: requestId,
    code: z.number().int(),
    message: z.string().optional(),
    data: z.unknown().optional(),
  }),
  /** A frame the server could not attribute to a request (malformed, unknown type). */
  z.object({ type: z.literal('error'), code: z.number().int(), message: z.string() }),
  ...roomEventSchema.options,
  z.object({ type: z.literal('barrageMessage'), roomID: id, messages: z.array(barrageMessageInfoSchema) }),
  z.object({ type: z.literal('onlineUserCount'), roomID: id, count: z.number().int().nonnegative() }),
  z.object({ type: z.literal('kickedOut'), roomID: id, code: z.number().int(), reason: z.string().optional() }),
  /** The session's token expires in `remainSeconds`; renew it to keep publishing. */
  z.object({ type: z.literal('tokenWillExpire'), roomID: id, remainSeconds: z.number().int() }),
  /** The server stopped a publication for good (forbidden by the server API): do not retry. */
  z.object({ type: z.literal('publishStopped'), streamID: id, code: z.number().int() }),
  /** Which simulcast layers of a published stream some player uses (smallest first): the others pause until told otherwise. */
  z.object({ type: z.literal('publishLayers'), streamID: id, active: z.array(z.boolean()).min(1).max(3) }),
  /**
   * The most each simulcast layer of a published stream (smallest first) is to be encoded at, in
   * bits per second, 0 for as configured: the links of the players of a layer cannot take its rate.
   */
  z.object({
    type: z.literal('publishBitrates'),
    streamID: id,
    maxBitrates: z.array(z.number().int().nonnegative()).min(1).max(3),
  }),
  /**
   * How the server sees a user's links, every few seconds: sent to the user itself and to those
   * who play its streams. Levels are StreamQualityLevel values (Unknown where it has no link that way).
   */
  z.object({
    type: z.literal('networkQuality'),
    roomID: id,
    userID: id,
    upstream: z.number().int().min(0).max(5),
    downstream: z.number().int().min(0).max(5),
  }),
  /**
   * Who speaks in the room now (sound level at least SPEAKING_LEVEL over the last moment),
   * loudest first; sent to everyone in the room when the set changes.
   */
  z.object({
    type: z.literal('activeSpeakers'),
    roomID: id,
    speakers: z.array(z.object({ userID: id, streamID: id, soundLevel: z.number().min(0).max(100) })).max(1000),
  }),
  /** The server has received nothing (no RTP, no RTCP) on this transport for a while: the client should restart its ICE. */
  z.object({ type: z.literal('mediaStalled'), streamID: id, role: mediaRole }),
  /**
   * The server moved this transport's media to another of its media threads (the one it was on
   * stopped): the client restarts its ICE at once, and the answer brings a new DTLS fingerprint,
   * so a new DTLS association, on the same transport. Nothing is lost and nothing is to be shown.
   */
  z.object({ type: z.literal('mediaMoved'), streamID: id, role: mediaRole }),
  /** onPublisherRelayCDNStateUpdate: the relays of a stream the session publishes, each URL's state. */
  z.object({ type: z.literal('relayCdnState'), streamID: id, infoList: z.array(streamRelayCdnInfoSchema) }),
  /** onMixerRelayCDNStateUpdate: the RTMP outputs of a mixing task this session started. */
  z.object({ type: z.literal('mixerRelayCdnState'), taskID: z.string(), infoList: z.array(streamRelayCdnInfoSchema) }),
  /** The server ended a play session (the stream stopped or was removed); the player may wait for it to return. */
  z.object({ type: z.literal('playStopped'), streamID: id, attempt: z.number().int(), code: z.number().int() }),
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type ServerMessageOf<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string; id?: number };

function parseFrame<T>(schema: z.ZodType<T>, raw: string): ParseResult<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, message: 'frame is not JSON' };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  // Echo a usable request id so the sender can match the error to its request.
  const maybeId = (json as { id?: unknown } | null)?.id;
  const first = result.error.issues[0];
  const message = first ? `${first.path.join('.') || 'frame'}: ${first.message}` : 'invalid frame';
  return typeof maybeId === 'number' && requestId.safeParse(maybeId).success ? { ok: false, message, id: maybeId } : { ok: false, message };
}

export const parseClientMessage = (raw: string): ParseResult<ClientMessage> => parseFrame(clientMessageSchema, raw);
export const parseServerMessage = (raw: string): ParseResult<ServerMessage> => parseFrame(serverMessageSchema, raw);
