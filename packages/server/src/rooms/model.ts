import { randomUUID } from 'node:crypto';
import { randomHex } from '../random.js';
import {
  carriesMedia,
  RemoteDeviceState,
  type RoomEvent,
  type RoomExtraInfo,
  type ServerMessage,
  type StreamDevices,
  type StreamInfo,
  type User,
} from '@parley/protocol';
import type { MediaPublisher, MediaSubscriber } from '../media/index.js';
import type { TokenPrivileges } from '../auth/token04.js';

export interface SessionToken {
  /** Unix seconds. */
  expire: number;
  /** From a strict payload; undefined means every privilege. */
  privileges: TokenPrivileges | undefined;
}

/** The signalling connection a session currently talks through. */
export interface ClientLink {
  /** The client's address (as a trusted proxy reports it, behind one). */
  readonly remoteAddress: string;
  /** `droppable`: best-effort content, skipped if the client is already behind. */
  send(message: ServerMessage, droppable?: boolean): void;
  /** Ends the connection after pending frames are flushed. */
  close(): void;
}

/** A published stream. It is reserved (media undefined) while its transport is being negotiated. */
export class Publication {
  media: MediaPublisher | undefined;
  live = false;
  /** Counts publish negotiations, so that only the latest one installs its media. */
  negotiations = 0;
  /** Drops a publication whose media died and was not re-established. */
  orphanTimer: NodeJS.Timeout | undefined;

  private deviceStates: Devices = OPEN_DEVICES;

  constructor(
    readonly streamID: string,
    readonly session: Session,
    public extraInfo: string,
  ) {}

  get info(): StreamInfo {
    return { user: this.session.user, streamID: this.streamID, extraInfo: this.extraInfo };
  }

  get devices(): StreamDevices {
    return { streamID: this.streamID, ...this.deviceStates };
  }

  /** Takes the publisher's device states; true when they changed. */
  setDevices({ camera, microphone, speaker }: Devices): boolean {
    const now = this.deviceStates;
    if (camera === now.camera && microphone === now.microphone && speaker === now.speaker) return false;
    this.deviceStates = { camera, microphone, speaker };
    this.media?.setMediaDue(this.mediaDue);
    return true;
  }

  get mediaDue(): boolean {
    return carriesMedia(this.deviceStates);
  }
}

type Devices = Omit<StreamDevices, 'streamID'>;
const OPEN_DEVICES: Devices = { camera: RemoteDeviceState.Open, microphone: RemoteDeviceState.Open, speaker: RemoteDeviceState.Open };

export class Play {
  media: MediaSubscriber | undefined;
  constructor(
    readonly streamID: string,
    readonly session: Session,
    /** The client's attempt number, echoed in playStopped so a stale stop cannot end a newer attempt. */
    readonly attempt: number,
  ) {}
}

export class Session {
  readonly id = randomUUID();
  readonly resumeToken = randomHex(16);
  readonly publications = new Map<string, Publication>();
  readonly plays = new Map<string, Play>();
  lastSeen = Date.now();
  active = true;
  expiryTimer: NodeJS.Timeout | undefined;
  /** Set when the session logged in with a token: what it allows and until when. */
  token: SessionToken | undefined;
  tokenWarningTimer: NodeJS.Timeout | undefined;
  /** The last online count this session was told. */
  toldOnlineCount = -1;
  /** Reliable requests already done (by client sequence), so that a repeat after a reconnect is not done twice. */
  private lastClientSeq = 0;
  private readonly recentOutcomes = new Map<number, unknown>();

  constructor(
    public link: ClientLink | null,
    readonly room: Room,
    readonly user: User,
    readonly notifyUserUpdates: boolean,
    /** Logged in as one of several rooms of one client (RoomMode.MultiRoom). */
    readonly multiRoom: boolean,
  ) {}

  send(message: ServerMessage, droppable = false): void {
    this.link?.send(message, droppable);
  }

  /** The outcome of request `clientSeq` if it was done already, else runs `action` and remembers its outcome. */
  once<T>(clientSeq: number, action: () => T): T {
    if (clientSeq <= this.lastClientSeq) return (this.recentOutcomes.get(clientSeq) ?? { code: 0, data: {} }) as T;
    this.lastClientSeq = clientSeq;
    const outcome = action();
    this.recentOutcomes.set(clientSeq, outcome);
    if (this.recentOutcomes.size > RECENT_OUTCOMES) this.recentOutcomes.delete(this.recentOutcomes.keys().next().value!);
    return outcome;
  }
}

/** More than a client can have in flight when its connection breaks. */
const RECENT_OUTCOMES = 256;

/** How many recent room events a room keeps for clients that resume after a broken connection. */
export const ROOM_EVENT_LOG_SIZE = 256;

type RoomEventBody = RoomEvent extends infer E ? (E extends RoomEvent ? Omit<E, 'seq' | 'roomID'> : never) : never;

export class Room {
  readonly sessions = new Map<string, Session>(); // by userID
  readonly publications = new Map<string, Publication>(); // live ones, by streamID
  /** Room extra info by key. */
  readonly extraInfos = new Map<string, RoomExtraInfo>();
  /** The last broadcast messageID. */
  messageSeq = 0;
  private lastSeq = 0;
  /** The active speakers' streamIDs the room was last told of, sorted, one per line. */
  private toldSpeakers = '';
  /** The latest events with who caused them and whom they are for (everyone if unset), oldest first. */
  private readonly log: Array<{ event: RoomEvent; from: Session | null; to: ReadonlySet<string> | undefined }> = [];

  constructor(
    readonly app: AppRooms,
    readonly id: string,
    /** 0 = unlimited; set by the room's first user. */
    readonly maxMemberCount: number,
  ) {}

  get seq(): number {
    return this.lastSeq;
  }

  /** Takes the streams that speak now; true when they are not those the room was last told of. */
  speakersChanged(streamIDs: readonly string[]): boolean {
    const told = [...streamIDs].sort().join('\n');
    if (told === this.toldSpeakers) return false;
    this.toldSpeakers = told;
    return true;
  }

  /**
   * Numbers, logs and delivers a room event to everyone it concerns except the session that caused
   * it (null: the server API); `to` limits it to those userIDs.
   */
  emit(body: RoomEventBody, from: Session | null, to?: ReadonlySet<string>): void {
    const entry = { event: { ...body, roomID: this.id, seq: ++this.lastSeq } as RoomEvent, from, to };
    this.log.push(entry);
    if (this.log.length > ROOM_EVENT_LOG_SIZE) this.log.shift();
    for (const session of this.sessions.values()) if (concerns(entry, session)) session.send(entry.event);
  }

  /** The events after `seq` that concern `session`, or undefined if some of them are no longer kept. */
  eventsSince(seq: number, session: Session): RoomEvent[] | undefined {
    const oldest = this.log[0]?.event.seq ?? this.lastSeq + 1;
    if (seq < oldest - 1) return undefined;
    return this.log.filter((entry) => entry.event.seq > seq && concerns(entry, session)).map(({ event }) => event);
  }

  users(except?: Session): User[] {
    return [...this.sessions.values()].filter((s) => s !== except).map((s) => s.user);
  }

  streams(except?: Session): StreamInfo[] {
    return [...this.publications.values()].filter((p) => p.session !== except).map((p) => p.info);
  }

  /** The devices of the live streams (except `except`'s) that are not all Open. */
  streamDevices(except?: Session): StreamDevices[] {
    return [...this.publications.values()]
      .filter((p) => p.session !== except)
      .map((p) => p.devices)
      .filter(
        (d) => d.camera !== RemoteDeviceState.Open || d.microphone !== RemoteDeviceState.Open || d.speaker !== RemoteDeviceState.Open,
      );
  }
}

function concerns(
  { event, from, to }: { event: RoomEvent; from: Session | null; to: ReadonlySet<string> | undefined },
  session: Session,
): boolean {
  if (session === from || (to && !to.has(session.user.userID))) return false;
  return event.type !== 'userUpdate' || session.notifyUserUpdates;
}

/** Everything of one app. Apps never share rooms, users or streams. */
export class AppRooms {
  readonly rooms = new Map<string, Room>();
  /** Each user's sessions: one, or one per room of a client in several rooms. */
  private readonly sessionsByUser = new Map<string, Set<Session>>();
  readonly sessionsById = new Map<string, Session>();
  /** Sessions kicked out (sessionID → resume token and code), so that their resume learns why. */
  readonly kickedSessions = new Map<string, { resumeToken: string; code: number }>();
  /** Streams the server API forbade: they cannot be published until resumed. */
  readonly forbiddenStreams = new Set<string>();
  /** Every publication of the app, reserved or live: streamIDs are unique per app. */
  readonly publications = new Map<string, Publication>();

  constructor(readonly appID: number) {}

  sessionsOf(userID: string): Session[] {
    return [...(this.sessionsByUser.get(userID) ?? [])];
  }

  addSession(session: Session): void {
    const sessions = this.sessionsByUser.get(session.user.userID) ?? new Set();
    this.sessionsByUser.set(session.user.userID, sessions.add(session));
    this.sessionsById.set(session.id, session);
  }

  removeSession(session: Session): void {
    const sessions = this.sessionsByUser.get(session.user.userID);
    sessions?.delete(session);
    if (sessions?.size === 0) this.sessionsByUser.delete(session.user.userID);
    this.sessionsById.delete(session.id);
  }
}
