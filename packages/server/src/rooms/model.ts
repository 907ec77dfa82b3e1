import { randomBytes, randomUUID } from 'node:crypto';
import type { RoomEvent, ServerMessage, StreamInfo, User } from '@parley/protocol';
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
  send(message: ServerMessage): void;
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

  constructor(
    readonly streamID: string,
    readonly session: Session,
    readonly extraInfo: string,
  ) {}

  get info(): StreamInfo {
    return { user: this.session.user, streamID: this.streamID, extraInfo: this.extraInfo };
  }
}

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
  readonly resumeToken = randomBytes(16).toString('hex');
  readonly publications = new Map<string, Publication>();
  readonly plays = new Map<string, Play>();
  lastSeen = Date.now();
  active = true;
  expiryTimer: NodeJS.Timeout | undefined;
  /** Set when the session logged in with a token: what it allows and until when. */
  token: SessionToken | undefined;
  tokenWarningTimer: NodeJS.Timeout | undefined;

  constructor(
    public link: ClientLink | null,
    readonly room: Room,
    readonly user: User,
    readonly notifyUserUpdates: boolean,
  ) {}

  send(message: ServerMessage): void {
    this.link?.send(message);
  }
}

/** How many recent room events a room keeps for clients that resume after a broken connection. */
export const ROOM_EVENT_LOG_SIZE = 256;

type RoomEventBody = RoomEvent extends infer E ? (E extends RoomEvent ? Omit<E, 'seq' | 'roomID'> : never) : never;

export class Room {
  readonly sessions = new Map<string, Session>(); // by userID
  readonly publications = new Map<string, Publication>(); // live ones, by streamID
  private lastSeq = 0;
  /** The latest events with who caused them, oldest first. */
  private readonly log: Array<{ event: RoomEvent; from: Session }> = [];

  constructor(
    readonly app: AppRooms,
    readonly id: string,
    /** 0 = unlimited; set by the room's first user. */
    readonly maxMemberCount: number,
  ) {}

  get seq(): number {
    return this.lastSeq;
  }

  /** Numbers, logs and delivers a room event to everyone it concerns except the session that caused it. */
  emit(body: RoomEventBody, from: Session): void {
    const event = { ...body, roomID: this.id, seq: ++this.lastSeq } as RoomEvent;
    this.log.push({ event, from });
    if (this.log.length > ROOM_EVENT_LOG_SIZE) this.log.shift();
    for (const session of this.sessions.values()) if (concerns(event, session, from)) session.send(event);
  }

  /** The events after `seq` that concern `session`, or undefined if some of them are no longer kept. */
  eventsSince(seq: number, session: Session): RoomEvent[] | undefined {
    const oldest = this.log[0]?.event.seq ?? this.lastSeq + 1;
    if (seq < oldest - 1) return undefined;
    return this.log.filter(({ event, from }) => event.seq > seq && concerns(event, session, from)).map(({ event }) => event);
  }

  users(except?: Session): User[] {
    return [...this.sessions.values()].filter((s) => s !== except).map((s) => s.user);
  }

  streams(except?: Session): StreamInfo[] {
    return [...this.publications.values()].filter((p) => p.session !== except).map((p) => p.info);
  }
}

function concerns(event: RoomEvent, session: Session, from: Session): boolean {
  return session !== from && (event.type !== 'userUpdate' || session.notifyUserUpdates);
}

/** Everything of one app. Apps never share rooms, users or streams. */
export class AppRooms {
  readonly rooms = new Map<string, Room>();
  readonly sessionsByUser = new Map<string, Session>();
  readonly sessionsById = new Map<string, Session>();
  /** Sessions replaced by a repeat login (sessionID → resume token), so that their resume learns why. */
  readonly kickedSessions = new Map<string, string>();
  /** Every publication of the app, reserved or live: streamIDs are unique per app. */
  readonly publications = new Map<string, Publication>();

  constructor(readonly appID: number) {}
}
