/**
 * The RoomStore of one server process. Every operation runs to its end before any other starts
 * (no await inside), which makes each one atomic.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, UpdateType, type RoomEvent, type RoomExtraInfo } from '@parley/protocol';
import { fail, ok, type Outcome } from '../../outcome.js';
import {
  MAX_KICKED_SESSIONS,
  REQUEST_OUTCOMES,
  ROOM_EVENT_LOG_SIZE,
  newPublication,
  type StreamRequest,
  type EventToLog,
  type JoinedRoom,
  type KickedSession,
  type LeftRoom,
  type LoggedEvent,
  type PlayRecord,
  type PublicationRecord,
  type RoomRecord,
  type RoomStore,
  type SessionRecord,
  type SessionToken,
  type StoreCounts,
} from './roomStore.js';

interface OpenRoom {
  record: RoomRecord;
  /** Session IDs in the order they joined. */
  readonly members: Set<string>;
  readonly extraInfos: Map<string, RoomExtraInfo>;
  /** The latest events, oldest first. */
  readonly log: LoggedEvent[];
}

class AppState {
  readonly sessions = new Map<string, SessionRecord>();
  readonly sessionsByUser = new Map<string, Set<string>>();
  readonly rooms = new Map<string, OpenRoom>();
  /** Every publication, reserved or live, by streamID: streamIDs are unique per app. */
  readonly publications = new Map<string, PublicationRecord>();
  readonly publicationsBySession = new Map<string, Set<string>>();
  /** Plays by session, then streamID. */
  readonly plays = new Map<string, Map<string, PlayRecord>>();
  readonly kicked = new Map<string, KickedSession>();
  readonly forbidden = new Set<string>();
  /** Each session's reliable requests: the last one done, and the outcomes of the recent ones. */
  readonly requests = new Map<string, { last: number; outcomes: Map<number, Outcome<unknown>> }>();
}

const addTo = <K, V>(map: Map<K, Set<V>>, key: K, value: V): void => {
  map.set(key, (map.get(key) ?? new Set()).add(value));
};
const removeFrom = <K, V>(map: Map<K, Set<V>>, key: K, value: V): void => {
  const set = map.get(key);
  set?.delete(value);
  if (set?.size === 0) map.delete(key);
};

export class MemoryRoomStore implements RoomStore {
  private readonly apps = new Map<number, AppState>();

  constructor(private readonly now: () => number = Date.now) {}

  private app(appID: number): AppState {
    let app = this.apps.get(appID);
    if (!app) this.apps.set(appID, (app = new AppState()));
    return app;
  }

  async session(appID: number, sessionID: string): Promise<SessionRecord | undefined> {
    return this.apps.get(appID)?.sessions.get(sessionID);
  }

  async sessionsOfUser(appID: number, userID: string): Promise<SessionRecord[]> {
    const app = this.apps.get(appID);
    return [...(app?.sessionsByUser.get(userID) ?? [])].map((id) => app!.sessions.get(id)!);
  }

  async setSessionToken(appID: number, sessionID: string, token: SessionToken | undefined): Promise<void> {
    const sessions = this.apps.get(appID)?.sessions;
    const session = sessions?.get(sessionID);
    if (session) sessions!.set(sessionID, { ...session, token });
  }

  async room(appID: number, roomID: string): Promise<RoomRecord | undefined> {
    return this.apps.get(appID)?.rooms.get(roomID)?.record;
  }

  async members(appID: number, roomID: string): Promise<SessionRecord[]> {
    const app = this.apps.get(appID);
    return [...(app?.rooms.get(roomID)?.members ?? [])].map((id) => app!.sessions.get(id)!);
  }

  async memberCount(appID: number, roomID: string): Promise<number> {
    return this.apps.get(appID)?.rooms.get(roomID)?.members.size ?? 0;
  }

  async joinRoom(session: SessionRecord, maxMemberCount: number): Promise<Outcome<JoinedRoom>> {
    const app = this.app(session.appID);
    let room = app.rooms.get(session.roomID);
    if (room && room.record.maxMemberCount > 0 && room.members.size >= room.record.maxMemberCount) {
      return fail(ErrorCode.RoomFull, `room ${session.roomID} is full`);
    }
    let opened: LoggedEvent | undefined;
    if (!room) {
      const record = { appID: session.appID, roomID: session.roomID, lifeID: randomUUID(), maxMemberCount, seq: 0, messageSeq: 0 };
      room = { record, members: new Set(), extraInfos: new Map(), log: [] };
      app.rooms.set(session.roomID, room);
      opened = this.log(room, { event: null, from: null });
    }
    app.sessions.set(session.sessionID, session);
    addTo(app.sessionsByUser, session.user.userID, session.sessionID);
    room.members.add(session.sessionID);
    const joined = this.log(room, {
      event: { type: 'userUpdate', updateType: UpdateType.Add, users: [session.user] },
      from: session.sessionID,
    });
    const snapshot = {
      members: [...room.members].filter((id) => id !== session.sessionID).map((id) => app.sessions.get(id)!),
      streams: await this.liveStreams(session.appID, session.roomID),
      extraInfos: [...room.extraInfos.values()],
    };
    return ok({ room: room.record, snapshot, created: opened !== undefined, joined, opened });
  }

  async leaveRoom(appID: number, sessionID: string): Promise<LeftRoom | undefined> {
    const app = this.apps.get(appID);
    const session = app?.sessions.get(sessionID);
    const room = session && app!.rooms.get(session.roomID);
    if (!app || !session || !room) return undefined;
    app.sessions.delete(sessionID);
    removeFrom(app.sessionsByUser, session.user.userID, sessionID);
    app.plays.delete(sessionID);
    app.requests.delete(sessionID);
    room.members.delete(sessionID);
    const left = this.log(room, { event: { type: 'userUpdate', updateType: UpdateType.Delete, users: [session.user] }, from: sessionID });
    let closed: LoggedEvent | undefined;
    if (room.members.size === 0) {
      closed = this.log(room, { event: null, from: null });
      app.rooms.delete(session.roomID);
    }
    return { left, closed, room: room.record };
  }

  async appendEvent(appID: number, roomID: string, entry: EventToLog): Promise<LoggedEvent | undefined> {
    const room = this.apps.get(appID)?.rooms.get(roomID);
    return room && this.log(room, entry);
  }

  private log(room: OpenRoom, { event, from, to = null }: EventToLog): LoggedEvent {
    const seq = room.record.seq + 1;
    room.record = { ...room.record, seq };
    const logged = { seq, event: event && ({ ...event, roomID: room.record.roomID, seq } as RoomEvent), from, to, timeMs: this.now() };
    room.log.push(logged);
    if (room.log.length > ROOM_EVENT_LOG_SIZE) room.log.shift();
    return logged;
  }

  async eventsSince(appID: number, roomID: string, seq: number): Promise<LoggedEvent[] | undefined> {
    const room = this.apps.get(appID)?.rooms.get(roomID);
    if (!room) return undefined;
    const oldest = room.log[0]?.seq ?? room.record.seq + 1;
    if (seq < oldest - 1) return undefined;
    return room.log.filter((entry) => entry.seq > seq);
  }

  async nextMessageID(appID: number, roomID: string): Promise<number | undefined> {
    const room = this.apps.get(appID)?.rooms.get(roomID);
    if (!room) return undefined;
    room.record = { ...room.record, messageSeq: room.record.messageSeq + 1 };
    return room.record.messageSeq;
  }

  async setRoomExtraInfo(appID: number, roomID: string, info: RoomExtraInfo, maxKeys: number): Promise<Outcome<void>> {
    const room = this.apps.get(appID)?.rooms.get(roomID);
    if (!room) return fail(ErrorCode.NotLoggedIn, `room ${roomID} is not open`);
    if (!room.extraInfos.has(info.key) && room.extraInfos.size >= maxKeys) {
      return fail(ErrorCode.RoomExtraInfoTooManyKeys, `at most ${maxKeys} room extra info keys`);
    }
    room.extraInfos.set(info.key, info);
    return ok(undefined);
  }

  async roomExtraInfos(appID: number, roomID: string): Promise<RoomExtraInfo[]> {
    return [...(this.apps.get(appID)?.rooms.get(roomID)?.extraInfos.values() ?? [])];
  }

  async reserveStream(
    session: SessionRecord,
    stream: StreamRequest,
    maxPerSession: number,
  ): Promise<Outcome<{ publication: PublicationRecord; reserved: boolean }>> {
    const app = this.app(session.appID);
    const { streamID } = stream;
    if (app.forbidden.has(streamID)) return fail(ErrorCode.StreamForbidden, `stream ${streamID} is forbidden`);
    const existing = app.publications.get(streamID);
    if (existing && existing.sessionID !== session.sessionID) {
      return fail(ErrorCode.StreamAlreadyPublished, `stream ${streamID} is published by another user`);
    }
    if (!existing && (app.publicationsBySession.get(session.sessionID)?.size ?? 0) >= maxPerSession) {
      return fail(ErrorCode.ChannelAlreadyPublishing, `at most ${maxPerSession} streams per user`);
    }
    const publication: PublicationRecord = existing
      ? { ...existing, devices: stream.devices ?? existing.devices, negotiation: existing.negotiation + 1, mediaNode: stream.mediaNode }
      : newPublication(session, stream);
    app.publications.set(streamID, publication);
    addTo(app.publicationsBySession, session.sessionID, streamID);
    return ok({ publication, reserved: !existing });
  }

  async publication(appID: number, streamID: string): Promise<PublicationRecord | undefined> {
    return this.apps.get(appID)?.publications.get(streamID);
  }

  async publicationsOfSession(appID: number, sessionID: string): Promise<PublicationRecord[]> {
    const app = this.apps.get(appID);
    return [...(app?.publicationsBySession.get(sessionID) ?? [])].map((streamID) => app!.publications.get(streamID)!);
  }

  async liveStreams(appID: number, roomID: string): Promise<PublicationRecord[]> {
    const room = this.apps.get(appID)?.rooms.get(roomID);
    if (!room) return [];
    const streams = [];
    for (const sessionID of room.members) for (const p of await this.publicationsOfSession(appID, sessionID)) if (p.live) streams.push(p);
    return streams;
  }

  async updatePublication(
    appID: number,
    publication: PublicationRecord,
    change: Partial<Pick<PublicationRecord, 'extraInfo' | 'devices'>>,
  ): Promise<PublicationRecord | undefined> {
    const publications = this.apps.get(appID)?.publications;
    const current = publications?.get(publication.streamID);
    if (current?.publicationID !== publication.publicationID) return undefined;
    const updated = { ...current, ...change };
    publications!.set(publication.streamID, updated);
    return updated;
  }

  async announcePublication(
    appID: number,
    publication: PublicationRecord,
    entries: readonly EventToLog[],
  ): Promise<{ publication: PublicationRecord; logged: LoggedEvent[] } | undefined> {
    const app = this.apps.get(appID);
    const current = app?.publications.get(publication.streamID);
    const room = app?.rooms.get(publication.roomID);
    if (!room || current?.publicationID !== publication.publicationID || current.live) return undefined;
    const announced = { ...current, live: true };
    app!.publications.set(publication.streamID, announced);
    return { publication: announced, logged: entries.map((entry) => this.log(room, entry)) };
  }

  async dropPublication(
    appID: number,
    publication: PublicationRecord,
    ended: EventToLog,
  ): Promise<{ publication: PublicationRecord; logged: LoggedEvent | undefined } | undefined> {
    const app = this.apps.get(appID);
    const current = app?.publications.get(publication.streamID);
    if (current?.publicationID !== publication.publicationID) return undefined;
    app!.publications.delete(publication.streamID);
    removeFrom(app!.publicationsBySession, current.sessionID, current.streamID);
    const room = current.live ? app!.rooms.get(current.roomID) : undefined;
    return { publication: current, logged: room && this.log(room, ended) };
  }

  async addPlay(play: PlayRecord, maxPerSession: number): Promise<Outcome<void>> {
    const app = this.app(play.appID);
    const plays = app.plays.get(play.sessionID) ?? new Map<string, PlayRecord>();
    if (!plays.has(play.streamID) && plays.size >= maxPerSession) {
      return fail(ErrorCode.PlayFailed, `at most ${maxPerSession} streams played per user`);
    }
    app.plays.set(play.sessionID, plays.set(play.streamID, play));
    return ok(undefined);
  }

  async play(appID: number, sessionID: string, streamID: string): Promise<PlayRecord | undefined> {
    return this.apps.get(appID)?.plays.get(sessionID)?.get(streamID);
  }

  async playsOfSession(appID: number, sessionID: string): Promise<PlayRecord[]> {
    return [...(this.apps.get(appID)?.plays.get(sessionID)?.values() ?? [])];
  }

  async dropPlay(play: PlayRecord): Promise<boolean> {
    const plays = this.apps.get(play.appID)?.plays;
    const ofSession = plays?.get(play.sessionID);
    if (ofSession?.get(play.streamID)?.playID !== play.playID) return false;
    ofSession.delete(play.streamID);
    if (ofSession.size === 0) plays!.delete(play.sessionID);
    return true;
  }

  async rememberKick(appID: number, sessionID: string, kick: KickedSession): Promise<void> {
    // Remembered until enough newer kicks push it out; a client that comes back later than that
    // logs in again with `rejoin`, which the newer session also wins.
    const { kicked } = this.app(appID);
    kicked.set(sessionID, kick);
    if (kicked.size > MAX_KICKED_SESSIONS) kicked.delete(kicked.keys().next().value!);
  }

  async kickOf(appID: number, sessionID: string): Promise<KickedSession | undefined> {
    return this.apps.get(appID)?.kicked.get(sessionID);
  }

  async forgetKicks(): Promise<void> {
    for (const app of this.apps.values()) app.kicked.clear();
  }

  async forbidStream(appID: number, streamID: string): Promise<void> {
    this.app(appID).forbidden.add(streamID);
  }

  async requestOutcome(appID: number, sessionID: string, clientSeq: number): Promise<Outcome<unknown> | undefined> {
    const requests = this.apps.get(appID)?.requests.get(sessionID);
    if (!requests || clientSeq > requests.last) return undefined;
    return requests.outcomes.get(clientSeq) ?? ok({});
  }

  async rememberRequest(appID: number, sessionID: string, clientSeq: number, outcome: Outcome<unknown>): Promise<void> {
    const app = this.app(appID);
    if (!app.sessions.has(sessionID)) return;
    let requests = app.requests.get(sessionID);
    if (!requests) app.requests.set(sessionID, (requests = { last: 0, outcomes: new Map() }));
    requests.last = Math.max(requests.last, clientSeq);
    requests.outcomes.set(clientSeq, outcome);
    requests.outcomes.delete(clientSeq - REQUEST_OUTCOMES);
  }

  async streamForbidden(appID: number, streamID: string): Promise<boolean> {
    return this.apps.get(appID)?.forbidden.has(streamID) ?? false;
  }

  async allowStream(appID: number, streamID: string): Promise<void> {
    this.apps.get(appID)?.forbidden.delete(streamID);
  }

  async counts(): Promise<StoreCounts> {
    const counts = { rooms: 0, sessions: 0, publications: 0, streams: 0 };
    for (const app of this.apps.values()) {
      counts.rooms += app.rooms.size;
      counts.sessions += app.sessions.size;
      counts.publications += app.publications.size;
      for (const publication of app.publications.values()) if (publication.live) counts.streams++;
    }
    return counts;
  }
}
