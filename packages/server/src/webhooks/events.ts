/**
 * The webhook payloads the server POSTs to an app's callback URL, one JSON object per event, and
 * how the room service's reasons become the vendor's numeric codes. These types are exported for
 * business servers that receive the webhooks (see `verifyWebhook`).
 */
import type { SessionEndReason, StreamEndReason } from '../rooms/observer.js';
import type { RecordEventType } from '../egress/recordings.js';
import type { MixEndReason } from '../egress/mixTask.js';

export type { SessionEndReason, StreamEndReason };

export const WEBHOOK_EVENTS = [
  'room_create',
  'room_close',
  'room_login',
  'room_logout',
  'stream_create',
  'stream_close',
  'record_status',
  'mix_start',
  'mix_stop',
] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

/** `close_reason` of room_close: why the last user left. */
export const RoomCloseReason = {
  Normal: 0,
  /** The last user's heartbeat timed out. */
  HeartbeatTimeout: 1,
  /** The last user was dropped (logged in elsewhere, or the server shut down). */
  LastUserDropped: 2,
  /** The last user was kicked, or the room was closed, by the server API. */
  Kicked: 3,
} as const;
export type RoomCloseReason = (typeof RoomCloseReason)[keyof typeof RoomCloseReason];

/** `reason` of room_logout. */
export const RoomLogoutReason = {
  Normal: 0,
  HeartbeatTimeout: 1,
  /** The session was disconnected: replaced by a repeat login of its userID, or the server shut down. */
  Disconnect: 2,
  /** Kicked, or its room closed, by the server API. */
  KickedByApi: 3,
  TokenExpired: 4,
} as const;
export type RoomLogoutReason = (typeof RoomLogoutReason)[keyof typeof RoomLogoutReason];

/** `type` of stream_close. */
export const StreamCloseType = {
  /** Stopped by its publisher, or its publisher logged out. */
  Stopped: 0,
  HeartbeatTimeout: 1,
  ReplacedByRepeatLogin: 2,
  Kicked: 3,
  /** Media lost and not re-established, or the server shut down. */
  ConnectionLost: 4,
  /** The room was closed by the server API. */
  RoomCleared: 5,
  /** Forbidden by the server API. */
  DeletedByApi: 100,
} as const;
export type StreamCloseType = (typeof StreamCloseType)[keyof typeof StreamCloseType];

/*
 * The mapping, in one place. `Record` over the reason unions makes a new reason a compile error
 * here until it is given a code.
 */
export const ROOM_CLOSE_REASONS: Readonly<Record<SessionEndReason, RoomCloseReason>> = {
  logout: RoomCloseReason.Normal,
  heartbeatTimeout: RoomCloseReason.HeartbeatTimeout,
  replaced: RoomCloseReason.LastUserDropped,
  serverShutdown: RoomCloseReason.LastUserDropped,
  kicked: RoomCloseReason.Kicked,
  roomClosed: RoomCloseReason.Kicked,
};

export const ROOM_LOGOUT_REASONS: Readonly<Record<SessionEndReason, RoomLogoutReason>> = {
  logout: RoomLogoutReason.Normal,
  heartbeatTimeout: RoomLogoutReason.HeartbeatTimeout,
  replaced: RoomLogoutReason.Disconnect,
  serverShutdown: RoomLogoutReason.Disconnect,
  kicked: RoomLogoutReason.KickedByApi,
  roomClosed: RoomLogoutReason.KickedByApi,
};

export const STREAM_CLOSE_TYPES: Readonly<Record<StreamEndReason, StreamCloseType>> = {
  stopped: StreamCloseType.Stopped,
  logout: StreamCloseType.Stopped,
  heartbeatTimeout: StreamCloseType.HeartbeatTimeout,
  replaced: StreamCloseType.ReplacedByRepeatLogin,
  kicked: StreamCloseType.Kicked,
  mediaLost: StreamCloseType.ConnectionLost,
  serverShutdown: StreamCloseType.ConnectionLost,
  roomClosed: StreamCloseType.RoomCleared,
  forbidden: StreamCloseType.DeletedByApi,
};

/** Fields every webhook carries. */
export interface WebhookCommon {
  event: WebhookEventName;
  appid: number;
  /** Unix time in seconds when this delivery attempt was signed. */
  timestamp: number;
  /** Random, new for every delivery attempt. */
  nonce: string;
  /** `sha1_hex(join(sort([callbackSecret, String(timestamp), nonce])))`, see `webhookSignature`. */
  signature: string;
  room_id: string;
  /**
   * One lifetime of the room: a room that closes and is created again under the same room_id
   * gets a new one (and its room_seq starts again at 1).
   */
  room_session_id: string;
  /**
   * The number of the room event it reports: 1 for room_create, then increasing with every event
   * of this room lifetime (the events its users see included, so webhooks skip numbers).
   * Retried deliveries may arrive out of order on a single server (a cluster delivers each room's in
   * order): order by room_seq and deduplicate by event_id.
   */
  room_seq: number;
  /** When the event happened on the server, Unix time in milliseconds (the same on every retry). */
  event_time: number;
  /**
   * This event's own name, `<appid>-<room_session_id>-<room_seq>`: the same on every retry and
   * redelivery (a cluster delivers at least once), different for every other event. Deduplicate by it.
   */
  event_id: string;
}

interface UserFields {
  /** The userID. */
  user_account: string;
  /** The userName. */
  user_nickname: string;
}

export interface RoomCreateWebhook extends WebhookCommon {
  event: 'room_create';
}

export interface RoomCloseWebhook extends WebhookCommon {
  event: 'room_close';
  close_reason: RoomCloseReason;
  /** The server's own reason, finer than the code. */
  reason_detail: SessionEndReason;
}

export interface RoomLoginWebhook extends WebhookCommon, UserFields {
  event: 'room_login';
  session_id: string;
}

export interface RoomLogoutWebhook extends WebhookCommon, UserFields {
  event: 'room_logout';
  session_id: string;
  reason: RoomLogoutReason;
  /** The server's own reason, finer than the code. */
  reason_detail: SessionEndReason;
}

export interface StreamCreateWebhook extends WebhookCommon, UserFields {
  event: 'stream_create';
  stream_id: string;
  extra_info: string;
}

export interface StreamCloseWebhook extends WebhookCommon, UserFields {
  event: 'stream_close';
  stream_id: string;
  extra_info: string;
  type: StreamCloseType;
  /** The server's own reason, finer than the code. */
  reason_detail: StreamEndReason;
}

/**
 * A recording task's news: started (100), a file ready (1), ended abnormally (2: `detail.quit_reason`
 * 3 MaxIdleTime, 4 MaxRecordTime, 1001 a file could not be written), finished (5). Its
 * `room_session_id` is the task's ID and its `room_seq` the task's `sequence` + 1: a task's
 * webhooks are ordered and deduplicated as a room lifetime's are.
 */
export interface RecordStatusWebhook extends WebhookCommon {
  event: 'record_status';
  task_id: string;
  event_type: RecordEventType;
  /** The task's events numbered from 0. */
  sequence: number;
  detail: Record<string, unknown>;
}

/**
 * A mixing task started (StartMix) or ended: stopped, its inputs gone for 90 s, or failed. Its
 * `room_id` is the room of its first input (where its stream is), `room_session_id` the task's ID,
 * `room_seq` 1 for the start and 2 for the end.
 */
export interface MixStartWebhook extends WebhookCommon {
  event: 'mix_start';
  task_id: string;
  /** The mixed stream. */
  stream_id: string;
}

export interface MixStopWebhook extends WebhookCommon {
  event: 'mix_stop';
  task_id: string;
  stream_id: string;
  reason: MixEndReason;
}

/** Any webhook, discriminated by `event`. */
export type WebhookEvent =
  | RoomCreateWebhook
  | RoomCloseWebhook
  | RoomLoginWebhook
  | RoomLogoutWebhook
  | StreamCreateWebhook
  | StreamCloseWebhook
  | RecordStatusWebhook
  | MixStartWebhook
  | MixStopWebhook;

/** The fields set per delivery attempt. */
export type WebhookSignedFields = 'timestamp' | 'nonce' | 'signature';

/** A webhook before signing: what stays the same across attempts. */
export type UnsignedWebhook = OmitEach<WebhookEvent, WebhookSignedFields>;

type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
