import { randomUUID } from 'node:crypto';
import type { ServerMessage, StreamInfo, User } from '@parley/protocol';
import type { MediaPublisher, MediaSubscriber } from '../media/index.js';

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
  readonly publications = new Map<string, Publication>();
  readonly plays = new Map<string, Play>();
  lastSeen = Date.now();
  active = true;
  expiryTimer: NodeJS.Timeout | undefined;

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

export class Room {
  readonly sessions = new Map<string, Session>(); // by userID
  readonly publications = new Map<string, Publication>(); // live ones, by streamID
  private seq = 0;

  constructor(
    readonly app: AppRooms,
    readonly id: string,
    /** 0 = unlimited; set by the room's first user. */
    readonly maxMemberCount: number,
  ) {}

  nextSeq(): number {
    return ++this.seq;
  }

  users(except?: Session): User[] {
    return [...this.sessions.values()].filter((s) => s !== except).map((s) => s.user);
  }

  streams(): StreamInfo[] {
    return [...this.publications.values()].map((p) => p.info);
  }
}

/** Everything of one app. Apps never share rooms, users or streams. */
export class AppRooms {
  readonly rooms = new Map<string, Room>();
  readonly sessionsByUser = new Map<string, Session>();
  /** Every publication of the app, reserved or live: streamIDs are unique per app. */
  readonly publications = new Map<string, Publication>();

  constructor(readonly appID: number) {}
}
