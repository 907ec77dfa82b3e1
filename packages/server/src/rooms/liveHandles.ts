/**
 * What this server holds live for the room state's records, keyed by the same IDs: the client
 * links of its sessions, their timers, and the media of their publications and plays. None of it
 * is room state: a record's handle is looked up by ID whenever it is needed.
 */
import type { MediaRole, ServerMessage, User } from '@parley/protocol';
import type { MediaPublisher, MediaSubscriber } from '../media/index.js';
import type { PlayRecord, PublicationRecord, SessionRecord } from './store/roomStore.js';

/** The signalling connection a session currently talks through. */
export interface ClientLink {
  /** The client's address (as a trusted proxy reports it, behind one). */
  readonly remoteAddress: string;
  /** When the client was last heard on this link (Unix ms). */
  readonly lastHeardMs: number;
  /** `droppable`: best-effort content, skipped if the client is already behind. */
  send(message: ServerMessage, droppable?: boolean): void;
  /** Ends the connection after pending frames are flushed. */
  close(): void;
  /**
   * The media transport of a stream the session publishes closed (never connected, or its ICE consent or DTLS ended).
   * The SDK sees this on its own peer connection; a client without signalling (WHIP) is told here.
   */
  mediaClosed?(role: MediaRole, streamID: string): void;
}

export interface LiveSession {
  readonly appID: number;
  readonly sessionID: string;
  readonly roomID: string;
  readonly user: User;
  readonly notifyUserUpdates: boolean;
  link: ClientLink | null;
  /** Ends the session when its link has been gone for the heartbeat timeout. */
  cancelExpiry: (() => void) | undefined;
  cancelTokenWarning: (() => void) | undefined;
  /** The last online count this session was told. */
  toldOnlineCount: number;
}

export interface LivePublication {
  readonly record: Pick<PublicationRecord, 'appID' | 'streamID' | 'sessionID' | 'publicationID'>;
  /** Undefined while the transport is negotiated, or after its media died. */
  media: MediaPublisher | undefined;
  /** Drops the publication if its media is not re-established in time. */
  cancelOrphan: (() => void) | undefined;
}

const roomKey = (appID: number, roomID: string): string => `${appID}/${roomID}`;

/** Told which sessions this server holds (a cluster keeps an index of them, to end those of a node that died). */
export interface SessionHolder {
  held(session: { appID: number; sessionID: string }): void;
  released(session: { appID: number; sessionID: string }): void;
}

export class LiveHandles {
  private readonly sessions = new Map<string, LiveSession>();
  private readonly sessionsByRoom = new Map<string, Set<LiveSession>>();
  private readonly publications = new Map<string, LivePublication>();
  private readonly plays = new Map<string, { sessionID: string; media: MediaSubscriber }>();
  /** The active speakers each room was last told of (sorted streamIDs, one per line). */
  private readonly toldSpeakers = new Map<string, string>();
  /** The last event of each room told to this server's sessions in it. */
  private readonly deliveredSeqs = new Map<string, number>();

  constructor(private readonly holder?: SessionHolder) {}

  addSession(record: SessionRecord, link: ClientLink | null): LiveSession {
    const { appID, sessionID, roomID, user, notifyUserUpdates } = record;
    const live: LiveSession = {
      appID,
      sessionID,
      roomID,
      user,
      notifyUserUpdates,
      link,
      cancelExpiry: undefined,
      cancelTokenWarning: undefined,
      toldOnlineCount: -1,
    };
    this.sessions.set(sessionID, live);
    this.holder?.held(live);
    const key = roomKey(appID, roomID);
    this.sessionsByRoom.set(key, (this.sessionsByRoom.get(key) ?? new Set()).add(live));
    return live;
  }

  session(sessionID: string): LiveSession | undefined {
    return this.sessions.get(sessionID);
  }

  allSessions(): LiveSession[] {
    return [...this.sessions.values()];
  }

  /** This server's sessions, room by room. */
  rooms(): Iterable<ReadonlySet<LiveSession>> {
    return this.sessionsByRoom.values();
  }

  /** This server's sessions in a room. */
  inRoom(appID: number, roomID: string): ReadonlySet<LiveSession> {
    return this.sessionsByRoom.get(roomKey(appID, roomID)) ?? new Set();
  }

  removeSession(live: LiveSession): void {
    live.cancelExpiry?.();
    live.cancelTokenWarning?.();
    live.link = null;
    this.sessions.delete(live.sessionID);
    this.holder?.released(live);
    const key = roomKey(live.appID, live.roomID);
    const inRoom = this.sessionsByRoom.get(key);
    inRoom?.delete(live);
    if (inRoom?.size === 0) {
      this.sessionsByRoom.delete(key);
      this.toldSpeakers.delete(key);
      this.deliveredSeqs.delete(key);
    }
  }

  send(sessionID: string, message: ServerMessage, droppable = false): void {
    this.sessions.get(sessionID)?.link?.send(message, droppable);
  }

  publication(record: LivePublication['record']): LivePublication {
    let live = this.publications.get(record.publicationID);
    if (!live) this.publications.set(record.publicationID, (live = { record, media: undefined, cancelOrphan: undefined }));
    return live;
  }

  /** The publication of `streamID` whose media this server has, if any. */
  publicationOfStream(appID: number, streamID: string): LivePublication | undefined {
    for (const live of this.publications.values()) if (live.record.appID === appID && live.record.streamID === streamID) return live;
    return undefined;
  }

  /** The publications and plays of a session with media here, forgotten; their media, to be closed. */
  takeMediaOf(sessionID: string): Array<MediaPublisher | MediaSubscriber> {
    const media: Array<MediaPublisher | MediaSubscriber> = [];
    for (const [id, live] of this.publications) {
      if (live.record.sessionID !== sessionID) continue;
      if (live.media) media.push(live.media);
      this.removePublication(id);
    }
    for (const [id, play] of this.plays) {
      if (play.sessionID !== sessionID) continue;
      media.push(play.media);
      this.plays.delete(id);
    }
    return media;
  }

  /** Whether this server has the publication (its media, or the wait for it). */
  hasPublication(publicationID: string): boolean {
    return this.publications.has(publicationID);
  }

  publisherMedia(publicationID: string): MediaPublisher | undefined {
    return this.publications.get(publicationID)?.media;
  }

  removePublication(publicationID: string): void {
    this.publications.get(publicationID)?.cancelOrphan?.();
    this.publications.delete(publicationID);
  }

  playMedia(playID: string): MediaSubscriber | undefined {
    return this.plays.get(playID)?.media;
  }

  setPlayMedia(play: PlayRecord, media: MediaSubscriber): void {
    this.plays.set(play.playID, { sessionID: play.sessionID, media });
  }

  /** Forgets a play's media and returns it (to be closed). */
  takePlayMedia(playID: string): MediaSubscriber | undefined {
    const media = this.plays.get(playID)?.media;
    this.plays.delete(playID);
    return media;
  }

  /** The last event of the room told to its sessions here; undefined while none of them is here. */
  deliveredSeq(appID: number, roomID: string): number | undefined {
    return this.deliveredSeqs.get(roomKey(appID, roomID));
  }

  setDeliveredSeq(appID: number, roomID: string, seq: number): void {
    const key = roomKey(appID, roomID);
    if (this.sessionsByRoom.has(key)) this.deliveredSeqs.set(key, seq);
  }

  /** Takes the streams that speak now in a room; true when they are not those the room was last told of. */
  speakersChanged(appID: number, roomID: string, streamIDs: readonly string[]): boolean {
    const key = roomKey(appID, roomID);
    const told = [...streamIDs].sort().join('\n');
    if (told === (this.toldSpeakers.get(key) ?? '')) return false;
    this.toldSpeakers.set(key, told);
    return true;
  }
}
