/**
 * Room state as records by ID: sessions, rooms with their numbered event logs, publications,
 * plays, kicked sessions and forbidden streams. Only the room service writes it. Each operation
 * is atomic and named by what it guarantees, so that an implementation shared by several servers
 * (Redis) keeps the rules that one process keeps in memory. Records are plain immutable data:
 * what a read returns never changes afterwards, and nothing live (links, timers, media) is kept.
 */
import { randomUUID } from 'node:crypto';
import { RemoteDeviceState, type RoomEvent, type RoomExtraInfo, type StreamDevices, type User } from '@parley/protocol';
import type { TokenPrivileges } from '../../auth/token04.js';
import type { Outcome } from '../../outcome.js';
import type { SessionEndReason } from '../observer.js';

export interface SessionToken {
  /** Unix seconds. */
  expire: number;
  /** From a strict payload; undefined means every privilege. */
  privileges: TokenPrivileges | undefined;
}

export interface SessionRecord {
  readonly sessionID: string;
  readonly appID: number;
  readonly roomID: string;
  readonly user: User;
  readonly resumeToken: string;
  readonly notifyUserUpdates: boolean;
  /** Logged in as one of several rooms of one client (RoomMode.MultiRoom). */
  readonly multiRoom: boolean;
  /** Set when the session logged in with a token: what it allows and until when. */
  readonly token: SessionToken | undefined;
}

export interface RoomRecord {
  readonly appID: number;
  readonly roomID: string;
  /** This lifetime of the room: a room that closes and opens again gets a new one. */
  readonly lifeID: string;
  /** 0 = unlimited; set by the room's first user. */
  readonly maxMemberCount: number;
  /** The last event's number. */
  readonly seq: number;
  /** The last broadcast message's number. */
  readonly messageSeq: number;
}

export type Devices = Omit<StreamDevices, 'streamID'>;

const OPEN_DEVICES: Devices = { camera: RemoteDeviceState.Open, microphone: RemoteDeviceState.Open, speaker: RemoteDeviceState.Open };

/** What a publisher asks to publish. */
export interface StreamRequest {
  streamID: string;
  extraInfo: string;
  /** As players are to be told them (all Open when absent). */
  devices: Devices | undefined;
  /** The server (node of a cluster) that negotiates its media: players elsewhere get it relayed from there. */
  mediaNode: string;
}

/** A stream reserved by a session (while its media is negotiated) or announced to its room (`live`). */
export interface PublicationRecord {
  /** This reservation: a streamID published again after it was dropped is another publication. */
  readonly publicationID: string;
  readonly appID: number;
  readonly streamID: string;
  readonly sessionID: string;
  readonly roomID: string;
  readonly user: User;
  readonly extraInfo: string;
  readonly devices: Devices;
  readonly live: boolean;
  /** Counts publish negotiations, so that only the latest one installs its media. */
  readonly negotiation: number;
  /** The server whose latest negotiation it is: where its media is (see StreamRequest). */
  readonly mediaNode: string;
}

export interface PlayRecord {
  readonly playID: string;
  readonly appID: number;
  readonly sessionID: string;
  readonly streamID: string;
  /** The client's attempt number, echoed in playStopped so a stale stop cannot end a newer attempt. */
  readonly attempt: number;
}

/** A room event as it is logged: a client event, or a mark of the room's lifetime that no client is told of. */
export interface LoggedEvent {
  readonly seq: number;
  readonly event: RoomEvent | null;
  /** The session that caused it (not told of it); null for the server API and the room itself. */
  readonly from: string | null;
  /** Only these userIDs are told of it; null: everyone. */
  readonly to: readonly string[] | null;
  readonly timeMs: number;
}

/** The reservation a store makes for `session`'s first negotiation of `stream`. */
export const newPublication = (session: SessionRecord, stream: StreamRequest): PublicationRecord => ({
  publicationID: randomUUID(),
  appID: session.appID,
  streamID: stream.streamID,
  sessionID: session.sessionID,
  roomID: session.roomID,
  user: session.user,
  extraInfo: stream.extraInfo,
  devices: stream.devices ?? OPEN_DEVICES,
  live: false,
  negotiation: 1,
  mediaNode: stream.mediaNode,
});

/** A client event before the room numbers it. */
export type RoomEventBody = RoomEvent extends infer E ? (E extends RoomEvent ? Omit<E, 'seq' | 'roomID'> : never) : never;

export interface EventToLog {
  event: RoomEventBody | null;
  from: string | null;
  to?: readonly string[] | null;
}

export interface KickedSession {
  resumeToken: string;
  code: number;
  reason: SessionEndReason;
}

export interface StoreCounts {
  rooms: number;
  sessions: number;
  publications: number;
  /** Publications announced to their rooms. */
  streams: number;
}

/** A room as the client that joins it sees it, as of its join: the others, in the order they joined, its announced streams, its extra infos. */
export interface RoomSnapshot {
  members: SessionRecord[];
  streams: PublicationRecord[];
  extraInfos: RoomExtraInfo[];
}

export interface JoinedRoom {
  room: RoomRecord;
  /** Read with the join, in the same step: nothing happens in between. */
  snapshot: RoomSnapshot;
  /** The room opened with this join (its first logged event marks it). */
  created: boolean;
  /** The joining user's userUpdate (added), numbered. */
  joined: LoggedEvent;
  /** The room's creation mark when `created`. */
  opened: LoggedEvent | undefined;
}

export interface LeftRoom {
  /** The leaving user's userUpdate (deleted), numbered: the room's members are told unless it closed. */
  left: LoggedEvent;
  /** The room closed with it: the last event of the room's lifetime. */
  closed: LoggedEvent | undefined;
  room: RoomRecord;
}

export interface RoomStore {
  session(appID: number, sessionID: string): Promise<SessionRecord | undefined>;
  /** A user's sessions, app-wide: one, or one per room of a multi-room client. */
  sessionsOfUser(appID: number, userID: string): Promise<SessionRecord[]>;
  setSessionToken(appID: number, sessionID: string, token: SessionToken | undefined): Promise<void>;

  room(appID: number, roomID: string): Promise<RoomRecord | undefined>;
  /** The room's sessions in the order they joined. */
  members(appID: number, roomID: string): Promise<SessionRecord[]>;
  /** How many sessions the room has (0 when it is not open). */
  memberCount(appID: number, roomID: string): Promise<number>;
  /**
   * Adds the session to its room unless the room is full, opening the room (with the session's
   * `maxMemberCount`) if it is not open: two logins racing for the last place cannot both win.
   * Logs the user's arrival, and reads the room as the newcomer is to see it.
   */
  joinRoom(session: SessionRecord, maxMemberCount: number): Promise<Outcome<JoinedRoom>>;
  /** Removes the session from its room and its user, logs its departure, and closes the room if it was the last. */
  leaveRoom(appID: number, sessionID: string): Promise<LeftRoom | undefined>;

  /** Numbers and logs an event of an open room (undefined when the room is not open). */
  appendEvent(appID: number, roomID: string, entry: EventToLog): Promise<LoggedEvent | undefined>;
  /** The events after `seq`, or undefined if some of them are no longer kept. */
  eventsSince(appID: number, roomID: string, seq: number): Promise<LoggedEvent[] | undefined>;
  /** The next broadcast messageID of an open room. */
  nextMessageID(appID: number, roomID: string): Promise<number | undefined>;
  /** Sets one room extra info, unless it is a new key beyond `maxKeys`. */
  setRoomExtraInfo(appID: number, roomID: string, info: RoomExtraInfo, maxKeys: number): Promise<Outcome<void>>;
  roomExtraInfos(appID: number, roomID: string): Promise<RoomExtraInfo[]>;

  /**
   * Reserves a streamID app-wide for the session, or takes the session's own reservation again
   * (a new negotiation, on `stream.mediaNode`): refused when the stream is forbidden, someone else holds it, or the
   * session holds `maxPerSession` others.
   */
  reserveStream(
    session: SessionRecord,
    stream: StreamRequest,
    maxPerSession: number,
  ): Promise<Outcome<{ publication: PublicationRecord; reserved: boolean }>>;
  publication(appID: number, streamID: string): Promise<PublicationRecord | undefined>;
  publicationsOfSession(appID: number, sessionID: string): Promise<PublicationRecord[]>;
  /** The room's announced publications. */
  liveStreams(appID: number, roomID: string): Promise<PublicationRecord[]>;
  /** Changes the publication if it is still this one; its new record, or undefined if it is gone. */
  updatePublication(
    appID: number,
    publication: PublicationRecord,
    change: Partial<Pick<PublicationRecord, 'extraInfo' | 'devices'>>,
  ): Promise<PublicationRecord | undefined>;
  /**
   * Announces the publication to its room if it is still this one and not announced yet: marks
   * it live and logs `entries` in the same step, so that a login at any moment either sees the
   * stream in its room's state or is told of it, never both. Undefined when it did nothing.
   */
  announcePublication(
    appID: number,
    publication: PublicationRecord,
    entries: readonly EventToLog[],
  ): Promise<{ publication: PublicationRecord; logged: LoggedEvent[] } | undefined>;
  /**
   * Removes the publication if it is still this one: the removed record, and, if it was announced
   * and its room is open, `ended` logged in the same step (as announcePublication does).
   */
  dropPublication(
    appID: number,
    publication: PublicationRecord,
    ended: EventToLog,
  ): Promise<{ publication: PublicationRecord; logged: LoggedEvent | undefined } | undefined>;

  /** Records a play of the session, replacing its play of the same stream, unless it has `maxPerSession` others. */
  addPlay(play: PlayRecord, maxPerSession: number): Promise<Outcome<void>>;
  play(appID: number, sessionID: string, streamID: string): Promise<PlayRecord | undefined>;
  playsOfSession(appID: number, sessionID: string): Promise<PlayRecord[]>;
  /** Removes the play if it is still this one. */
  dropPlay(play: PlayRecord): Promise<boolean>;

  /**
   * The outcome of the session's reliable request `clientSeq` if it was done (a client re-sends
   * one after a reconnect, to any server, until answered): as remembered, or success for one too
   * old to be kept. Undefined if it was not done.
   */
  requestOutcome(appID: number, sessionID: string, clientSeq: number): Promise<Outcome<unknown> | undefined>;
  /** Remembers a reliable request's outcome while the session lasts (the most recent REQUEST_OUTCOMES of them). */
  rememberRequest(appID: number, sessionID: string, clientSeq: number, outcome: Outcome<unknown>): Promise<void>;

  /** Remembers why a session was kicked out (the oldest are forgotten beyond a bound). */
  rememberKick(appID: number, sessionID: string, kick: KickedSession): Promise<void>;
  kickOf(appID: number, sessionID: string): Promise<KickedSession | undefined>;
  forgetKicks(): Promise<void>;
  forbidStream(appID: number, streamID: string): Promise<void>;
  streamForbidden(appID: number, streamID: string): Promise<boolean>;
  allowStream(appID: number, streamID: string): Promise<void>;

  counts(): Promise<StoreCounts>;
}

/** Reliable requests' outcomes kept per session: more than a client can have in flight when its connection breaks. */
export const REQUEST_OUTCOMES = 256;

/** How many recent room events a room keeps for clients that resume after a broken connection. */
export const ROOM_EVENT_LOG_SIZE = 256;
/** Kicked sessions remembered per app, so that their resume learns why. */
export const MAX_KICKED_SESSIONS = 10_000;
