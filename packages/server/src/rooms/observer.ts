/**
 * What happens in rooms, for the parts of the server that watch rather than steer: webhooks,
 * metrics, logs. Emitted by the room service after its state has changed, each with the room
 * event's number.
 */
import type { EventEmitter } from 'node:events';
import type { StreamInfo, User } from '@parley/protocol';

/** Why a session left its room. */
export type SessionEndReason =
  /** logoutRoom, or the connection closed normally. */
  | 'logout'
  /** Nothing heard from the client for the heartbeat timeout. */
  | 'heartbeatTimeout'
  /** The same userID logged in elsewhere. */
  | 'replaced'
  /** Kicked by the server API. */
  | 'kicked'
  /** The room was closed by the server API. */
  | 'roomClosed'
  | 'serverShutdown';

/** Why a stream ended: stopped by its publisher, media lost and not re-established, forbidden by the server API, or its session ended. */
export type StreamEndReason = 'stopped' | 'mediaLost' | 'forbidden' | SessionEndReason;

/** Which room, which of its lifetimes, and the number and time of the room event that reports it. */
export interface RoomRef {
  appID: number;
  roomID: string;
  lifeID: string;
  seq: number;
  timeMs: number;
}

export interface RoomServiceEvents {
  roomCreated: [RoomRef];
  /** The last session left; `reason` is why it did. */
  roomClosed: [RoomRef & { reason: SessionEndReason }];
  userJoined: [RoomRef & { user: User; sessionID: string }];
  userLeft: [RoomRef & { user: User; sessionID: string; reason: SessionEndReason }];
  /** Announced to the room: its media is connected. */
  streamCreated: [RoomRef & { stream: StreamInfo }];
  /** An announced stream ended. */
  streamClosed: [RoomRef & { stream: StreamInfo; reason: StreamEndReason }];
}

export type RoomServiceObserver = EventEmitter<RoomServiceEvents>;
