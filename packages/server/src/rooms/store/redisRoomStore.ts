/**
 * The RoomStore in Redis, shared by every server of a cluster. Records are JSON strings; the
 * operations that must be atomic are Lua scripts (redisScripts.ts), the reads plain commands.
 * A room's keys carry the room's hash tag (`{appID:roomID}`), an app's indexes the app's
 * (`{appID}`).
 */
import { randomUUID } from 'node:crypto';
import type { RedisClientType } from 'redis';
import { ErrorCode, UpdateType, type RoomEvent, type RoomExtraInfo } from '@parley/protocol';
import { fail, ok, type Outcome } from '../../outcome.js';
import {
  ADD_PLAY,
  ANNOUNCE_PUBLICATION,
  APPEND_EVENT,
  DROP_PLAY,
  DROP_PUBLICATION,
  EVENTS_SINCE,
  JOIN_ROOM,
  LEAVE_ROOM,
  NEXT_MESSAGE_ID,
  REMEMBER_KICK,
  REMEMBER_REQUEST,
  RESERVE_STREAM,
  SET_ROOM_EXTRA_INFO,
  UPDATE_PUBLICATION,
  type LuaScript,
} from './redisScripts.js';
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

/** A connected client of `redis` (node-redis) with its default modules. */
export type RedisClient = RedisClientType;

type Reply = string | number | null | Reply[];

/** The keys of one room, of one app, and of everything. */
class Keys {
  constructor(private readonly prefix: string) {}

  get apps(): string {
    return `${this.prefix}:apps`;
  }

  app(appID: number) {
    const base = `${this.prefix}:{${appID}}`;
    return {
      rooms: `${base}:rooms`,
      /** sessionID → roomID */
      sessionRooms: `${base}:session-rooms`,
      user: (userID: string) => `${base}:user:${userID}`,
      /** streamID → the sessionID that holds it */
      streams: `${base}:streams`,
      /** streamID → its roomID */
      streamRooms: `${base}:stream-rooms`,
      live: `${base}:live`,
      forbidden: `${base}:forbidden`,
      kicked: `${base}:kicked`,
      kickOrder: `${base}:kick-order`,
      kickCount: `${base}:kick-count`,
      /** A session's reliable requests: clientSeq → outcome, and 'last'. */
      requests: (sessionID: string) => `${base}:requests:${sessionID}`,
    };
  }

  room(appID: number, roomID: string) {
    const base = `${this.prefix}:{${appID}:${roomID}}`;
    return {
      room: `${base}:room`,
      members: `${base}:members`,
      sessions: `${base}:sessions`,
      log: `${base}:log`,
      extra: `${base}:extra`,
      publications: `${base}:publications`,
      plays: (sessionID: string) => `${base}:plays:${sessionID}`,
      sessionPublications: (sessionID: string) => `${base}:session-publications:${sessionID}`,
    };
  }
}

const parse = <T>(json: string | null | undefined): T | undefined => (json ? (JSON.parse(json) as T) : undefined);

function roomRecord(appID: number, roomID: string, [lifeID, max, seq, messageSeq]: Reply[]): RoomRecord {
  return { appID, roomID, lifeID: String(lifeID), maxMemberCount: Number(max), seq: Number(seq), messageSeq: Number(messageSeq) };
}

/** A log entry as XRANGE returns it: [id, [field, value, ...]]. */
function loggedEvent(roomID: string, [id, fields]: [string, string[]]): LoggedEvent {
  const field = (name: string): string => fields[fields.indexOf(name) + 1] ?? '';
  const seq = Number(id.slice(2));
  const body = field('b');
  return {
    seq,
    event: body ? ({ ...JSON.parse(body), roomID, seq } as RoomEvent) : null,
    from: field('f') || null,
    to: field('t') ? (JSON.parse(field('t')) as string[]) : null,
    timeMs: Number(field('m')),
  };
}

/** The logged form of an event appended now with number `seq`. */
function logged(roomID: string, seq: number, { event, from, to = null }: EventToLog, timeMs: number): LoggedEvent {
  return { seq, event: event && ({ ...event, roomID, seq } as RoomEvent), from, to, timeMs };
}

export interface RedisRoomStoreOptions {
  /** Prefixes every key, so that several stores can share one Redis. */
  prefix?: string;
  now?: () => number;
}

/** A node's lease: its key and the epoch the node holds it with. Writes are refused once the key holds another. */
export interface Fence {
  key: string;
  epoch(): string;
}

export class RedisRoomStore implements RoomStore {
  private readonly keys: Keys;
  private readonly now: () => number;
  /** Set by a cluster node (see `fenceWith`); a store without one writes unfenced. */
  private fence: Fence | undefined;

  constructor(
    private readonly redis: RedisClient,
    { prefix = 'parley', now = Date.now }: RedisRoomStoreOptions = {},
  ) {
    this.keys = new Keys(prefix);
    this.now = now;
  }

  /** From now on, writes happen only while `fence` holds. */
  fenceWith(fence: Fence): void {
    this.fence = fence;
  }

  /** Runs a script by its SHA1, loading it on first use (or after Redis lost its script cache). */
  private async run(script: LuaScript, keys: string[], args: Array<string | number>): Promise<Reply> {
    const fenced = script.writes ? [this.fence?.key ?? '-', this.fence?.epoch() ?? ''] : undefined;
    const options = {
      keys: fenced ? [...keys, fenced[0]!] : keys,
      arguments: [...args.map(String), ...(fenced ? [fenced[1]!] : [])],
    };
    try {
      return (await this.redis.evalSha(script.sha1, options)) as Reply;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return (await this.redis.eval(script.source, options)) as Reply;
    }
  }

  private async roomOfSession(appID: number, sessionID: string): Promise<string | undefined> {
    return (await this.redis.hGet(this.keys.app(appID).sessionRooms, sessionID)) ?? undefined;
  }

  async session(appID: number, sessionID: string): Promise<SessionRecord | undefined> {
    const roomID = await this.roomOfSession(appID, sessionID);
    return roomID === undefined ? undefined : parse(await this.redis.hGet(this.keys.room(appID, roomID).sessions, sessionID));
  }

  async sessionsOfUser(appID: number, userID: string): Promise<SessionRecord[]> {
    const sessionIDs = await this.redis.sMembers(this.keys.app(appID).user(userID));
    const sessions = await Promise.all(sessionIDs.map((id) => this.session(appID, id)));
    return sessions.filter((s): s is SessionRecord => s !== undefined);
  }

  async setSessionToken(appID: number, sessionID: string, token: SessionToken | undefined): Promise<void> {
    const session = await this.session(appID, sessionID);
    if (!session) return;
    await this.redis.hSet(this.keys.room(appID, session.roomID).sessions, sessionID, JSON.stringify({ ...session, token }));
  }

  async room(appID: number, roomID: string): Promise<RoomRecord | undefined> {
    const fields = await this.redis.hmGet(this.keys.room(appID, roomID).room, ['lifeID', 'max', 'seq', 'msgSeq']);
    return fields[0] === null ? undefined : roomRecord(appID, roomID, fields);
  }

  async members(appID: number, roomID: string): Promise<SessionRecord[]> {
    const keys = this.keys.room(appID, roomID);
    const sessionIDs = await this.redis.zRange(keys.members, 0, -1);
    if (sessionIDs.length === 0) return [];
    const sessions = await this.redis.hmGet(keys.sessions, sessionIDs);
    return sessions.flatMap((json) => parse<SessionRecord>(json) ?? []);
  }

  memberCount(appID: number, roomID: string): Promise<number> {
    return this.redis.zCard(this.keys.room(appID, roomID).members);
  }

  async joinRoom(session: SessionRecord, maxMemberCount: number): Promise<Outcome<JoinedRoom>> {
    const { appID, roomID, sessionID } = session;
    const room = this.keys.room(appID, roomID);
    const app = this.keys.app(appID);
    const now = this.now();
    const joinedEvent: EventToLog = { event: { type: 'userUpdate', updateType: UpdateType.Add, users: [session.user] }, from: sessionID };
    const reply = (await this.run(
      JOIN_ROOM,
      [
        room.room,
        room.members,
        room.sessions,
        room.log,
        app.rooms,
        app.sessionRooms,
        app.user(session.user.userID),
        this.keys.apps,
        room.publications,
        room.extra,
      ],
      [
        sessionID,
        JSON.stringify(session),
        maxMemberCount,
        randomUUID(),
        JSON.stringify(joinedEvent.event),
        now,
        ROOM_EVENT_LOG_SIZE,
        roomID,
        appID,
      ],
    )) as Reply[];
    if (reply[0] === 'full') return fail(ErrorCode.RoomFull, `room ${roomID} is full`);
    type Joined = [string, number, number, Reply, Reply, Reply, Reply, string[], string[], string[], string[]];
    const [, opened, joined, lifeID, max, seq, msgSeq, memberIDs, sessionFields, publications, extras] = reply as Joined;
    const sessions = new Map<string, string>();
    for (let i = 0; i + 1 < sessionFields.length; i += 2) sessions.set(sessionFields[i]!, sessionFields[i + 1]!);
    return ok({
      room: roomRecord(appID, roomID, [lifeID, max, seq, msgSeq]),
      snapshot: {
        members: memberIDs.filter((id) => id !== sessionID).flatMap((id) => parse<SessionRecord>(sessions.get(id) ?? null) ?? []),
        streams: publications.flatMap((json) => parse<PublicationRecord>(json) ?? []).filter((p) => p.live),
        extraInfos: extras.flatMap((json) => parse<RoomExtraInfo>(json) ?? []),
      },
      created: opened !== 0,
      joined: logged(roomID, joined, joinedEvent, now),
      opened: opened === 0 ? undefined : logged(roomID, opened, { event: null, from: null }, now),
    });
  }

  async leaveRoom(appID: number, sessionID: string): Promise<LeftRoom | undefined> {
    const session = await this.session(appID, sessionID);
    if (!session) return undefined;
    const { roomID } = session;
    const room = this.keys.room(appID, roomID);
    const app = this.keys.app(appID);
    const now = this.now();
    const leftEvent: EventToLog = { event: { type: 'userUpdate', updateType: UpdateType.Delete, users: [session.user] }, from: sessionID };
    const reply = (await this.run(
      LEAVE_ROOM,
      [
        room.room,
        room.members,
        room.sessions,
        room.log,
        room.extra,
        room.publications,
        app.rooms,
        app.sessionRooms,
        app.user(session.user.userID),
        room.plays(sessionID),
        room.sessionPublications(sessionID),
        app.streams,
        app.live,
        app.streamRooms,
        app.requests(sessionID),
      ],
      [sessionID, JSON.stringify(leftEvent.event), now, ROOM_EVENT_LOG_SIZE, roomID],
    )) as Reply[] | null;
    if (!reply) return undefined;
    const [left, closed, ...fields] = reply as [number, number, ...Reply[]];
    return {
      left: logged(roomID, left, leftEvent, now),
      closed: closed === 0 ? undefined : logged(roomID, closed, { event: null, from: null }, now),
      room: roomRecord(appID, roomID, fields),
    };
  }

  async appendEvent(appID: number, roomID: string, entry: EventToLog): Promise<LoggedEvent | undefined> {
    const room = this.keys.room(appID, roomID);
    const now = this.now();
    const to = entry.to ? JSON.stringify(entry.to) : '';
    const seq = await this.run(
      APPEND_EVENT,
      [room.room, room.log],
      [entry.event ? JSON.stringify(entry.event) : '', entry.from ?? '', to, now, ROOM_EVENT_LOG_SIZE],
    );
    return seq === null ? undefined : logged(roomID, Number(seq), entry, now);
  }

  async eventsSince(appID: number, roomID: string, seq: number): Promise<LoggedEvent[] | undefined> {
    const room = this.keys.room(appID, roomID);
    const reply = (await this.run(EVENTS_SINCE, [room.room, room.log], [seq])) as [string, Array<[string, string[]]>] | null;
    if (!reply || reply[0] === 'gone') return undefined;
    return reply[1].map((entry) => loggedEvent(roomID, entry));
  }

  async nextMessageID(appID: number, roomID: string): Promise<number | undefined> {
    const id = await this.run(NEXT_MESSAGE_ID, [this.keys.room(appID, roomID).room], []);
    return id === null ? undefined : Number(id);
  }

  async setRoomExtraInfo(appID: number, roomID: string, info: RoomExtraInfo, maxKeys: number): Promise<Outcome<void>> {
    const room = this.keys.room(appID, roomID);
    const reply = await this.run(SET_ROOM_EXTRA_INFO, [room.room, room.extra], [info.key, JSON.stringify(info), maxKeys]);
    if (reply === 'closed') return fail(ErrorCode.NotLoggedIn, `room ${roomID} is not open`);
    if (reply === 'full') return fail(ErrorCode.RoomExtraInfoTooManyKeys, `at most ${maxKeys} room extra info keys`);
    return ok(undefined);
  }

  async roomExtraInfos(appID: number, roomID: string): Promise<RoomExtraInfo[]> {
    return (await this.redis.hVals(this.keys.room(appID, roomID).extra)).map((json) => JSON.parse(json) as RoomExtraInfo);
  }

  async reserveStream(
    session: SessionRecord,
    stream: StreamRequest,
    maxPerSession: number,
  ): Promise<Outcome<{ publication: PublicationRecord; reserved: boolean }>> {
    const { appID, sessionID, roomID } = session;
    const { streamID } = stream;
    const app = this.keys.app(appID);
    const room = this.keys.room(appID, roomID);
    const fresh = newPublication(session, stream);
    const [outcome, json] = (await this.run(
      RESERVE_STREAM,
      [app.forbidden, app.streams, app.streamRooms, room.publications, room.sessionPublications(sessionID)],
      [
        streamID,
        sessionID,
        maxPerSession,
        JSON.stringify(fresh),
        stream.devices ? JSON.stringify(stream.devices) : '',
        roomID,
        stream.mediaNode,
      ],
    )) as [string, string?];
    if (outcome === 'forbidden') return fail(ErrorCode.StreamForbidden, `stream ${streamID} is forbidden`);
    if (outcome === 'taken') return fail(ErrorCode.StreamAlreadyPublished, `stream ${streamID} is published by another user`);
    if (outcome === 'limit') return fail(ErrorCode.ChannelAlreadyPublishing, `at most ${maxPerSession} streams per user`);
    return ok({ publication: JSON.parse(json!) as PublicationRecord, reserved: outcome === 'reserved' });
  }

  async publication(appID: number, streamID: string): Promise<PublicationRecord | undefined> {
    const roomID = await this.redis.hGet(this.keys.app(appID).streamRooms, streamID);
    return roomID === null ? undefined : parse(await this.redis.hGet(this.keys.room(appID, roomID).publications, streamID));
  }

  async publicationsOfSession(appID: number, sessionID: string): Promise<PublicationRecord[]> {
    const roomID = await this.roomOfSession(appID, sessionID);
    if (roomID === undefined) return [];
    const room = this.keys.room(appID, roomID);
    const streamIDs = await this.redis.sMembers(room.sessionPublications(sessionID));
    if (streamIDs.length === 0) return [];
    return (await this.redis.hmGet(room.publications, streamIDs)).flatMap((json) => parse<PublicationRecord>(json) ?? []);
  }

  async liveStreams(appID: number, roomID: string): Promise<PublicationRecord[]> {
    const all = await this.redis.hVals(this.keys.room(appID, roomID).publications);
    return all.map((json) => JSON.parse(json) as PublicationRecord).filter((p) => p.live);
  }

  async updatePublication(
    appID: number,
    publication: PublicationRecord,
    change: Partial<Pick<PublicationRecord, 'extraInfo' | 'devices'>>,
  ): Promise<PublicationRecord | undefined> {
    const keys = [this.keys.room(appID, publication.roomID).publications];
    const json = await this.run(UPDATE_PUBLICATION, keys, [publication.streamID, publication.publicationID, JSON.stringify(change)]);
    return parse(json as string | null);
  }

  async announcePublication(
    appID: number,
    publication: PublicationRecord,
    entries: readonly EventToLog[],
  ): Promise<{ publication: PublicationRecord; logged: LoggedEvent[] } | undefined> {
    const { roomID } = publication;
    const room = this.keys.room(appID, roomID);
    const now = this.now();
    const reply = (await this.run(
      ANNOUNCE_PUBLICATION,
      [room.publications, this.keys.app(appID).live, room.room, room.log],
      [
        publication.streamID,
        publication.publicationID,
        now,
        ROOM_EVENT_LOG_SIZE,
        ...entries.flatMap((entry) => [
          entry.event ? JSON.stringify(entry.event) : '',
          entry.from ?? '',
          entry.to ? JSON.stringify(entry.to) : '',
        ]),
      ],
    )) as [string, number[]] | null;
    if (!reply) return undefined;
    const [json, seqs] = reply;
    return {
      publication: JSON.parse(json) as PublicationRecord,
      logged: entries.map((entry, i) => logged(roomID, Number(seqs[i]), entry, now)),
    };
  }

  async dropPublication(
    appID: number,
    publication: PublicationRecord,
    ended: EventToLog,
  ): Promise<{ publication: PublicationRecord; logged: LoggedEvent | undefined } | undefined> {
    const app = this.keys.app(appID);
    const { roomID } = publication;
    const room = this.keys.room(appID, roomID);
    const now = this.now();
    const reply = (await this.run(
      DROP_PUBLICATION,
      [room.publications, app.streams, app.streamRooms, app.live, room.sessionPublications(publication.sessionID), room.room, room.log],
      [
        publication.streamID,
        publication.publicationID,
        now,
        ROOM_EVENT_LOG_SIZE,
        ended.event ? JSON.stringify(ended.event) : '',
        ended.from ?? '',
        ended.to ? JSON.stringify(ended.to) : '',
      ],
    )) as [string, number] | null;
    if (!reply) return undefined;
    const [json, seq] = reply;
    return { publication: JSON.parse(json) as PublicationRecord, logged: seq ? logged(roomID, Number(seq), ended, now) : undefined };
  }

  /** The key of a session's plays, or undefined if the session is gone. */
  private async playsKey(appID: number, sessionID: string): Promise<string | undefined> {
    const roomID = await this.roomOfSession(appID, sessionID);
    return roomID === undefined ? undefined : this.keys.room(appID, roomID).plays(sessionID);
  }

  async addPlay(play: PlayRecord, maxPerSession: number): Promise<Outcome<void>> {
    const key = await this.playsKey(play.appID, play.sessionID);
    if (!key) return fail(ErrorCode.NotLoggedIn, 'not logged in');
    const reply = await this.run(ADD_PLAY, [key], [play.streamID, JSON.stringify(play), maxPerSession]);
    return reply === 'limit' ? fail(ErrorCode.PlayFailed, `at most ${maxPerSession} streams played per user`) : ok(undefined);
  }

  async play(appID: number, sessionID: string, streamID: string): Promise<PlayRecord | undefined> {
    const key = await this.playsKey(appID, sessionID);
    return key === undefined ? undefined : parse(await this.redis.hGet(key, streamID));
  }

  async playsOfSession(appID: number, sessionID: string): Promise<PlayRecord[]> {
    const key = await this.playsKey(appID, sessionID);
    return key ? (await this.redis.hVals(key)).map((json) => JSON.parse(json) as PlayRecord) : [];
  }

  async dropPlay(play: PlayRecord): Promise<boolean> {
    const key = await this.playsKey(play.appID, play.sessionID);
    return key !== undefined && (await this.run(DROP_PLAY, [key], [play.streamID, play.playID])) === 1;
  }

  async rememberKick(appID: number, sessionID: string, kick: KickedSession): Promise<void> {
    const app = this.keys.app(appID);
    await this.redis.sAdd(this.keys.apps, String(appID));
    await this.run(REMEMBER_KICK, [app.kicked, app.kickOrder, app.kickCount], [sessionID, JSON.stringify(kick), MAX_KICKED_SESSIONS]);
  }

  async kickOf(appID: number, sessionID: string): Promise<KickedSession | undefined> {
    return parse(await this.redis.hGet(this.keys.app(appID).kicked, sessionID));
  }

  async forgetKicks(): Promise<void> {
    for (const appID of await this.redis.sMembers(this.keys.apps)) {
      const app = this.keys.app(Number(appID));
      await this.redis.del([app.kicked, app.kickOrder, app.kickCount]);
    }
  }

  async forbidStream(appID: number, streamID: string): Promise<void> {
    await this.redis.sAdd(this.keys.app(appID).forbidden, streamID);
  }

  async requestOutcome(appID: number, sessionID: string, clientSeq: number): Promise<Outcome<unknown> | undefined> {
    const [last, outcome] = await this.redis.hmGet(this.keys.app(appID).requests(sessionID), ['last', String(clientSeq)]);
    if (clientSeq > Number(last ?? 0)) return undefined;
    return parse<Outcome<unknown>>(outcome) ?? ok({});
  }

  async rememberRequest(appID: number, sessionID: string, clientSeq: number, outcome: Outcome<unknown>): Promise<void> {
    const app = this.keys.app(appID);
    await this.run(
      REMEMBER_REQUEST,
      [app.requests(sessionID), app.sessionRooms],
      [sessionID, clientSeq, JSON.stringify(outcome), REQUEST_OUTCOMES],
    );
  }

  async streamForbidden(appID: number, streamID: string): Promise<boolean> {
    return (await this.redis.sIsMember(this.keys.app(appID).forbidden, streamID)) === 1;
  }

  async allowStream(appID: number, streamID: string): Promise<void> {
    await this.redis.sRem(this.keys.app(appID).forbidden, streamID);
  }

  async counts(): Promise<StoreCounts> {
    const counts = { rooms: 0, sessions: 0, publications: 0, streams: 0 };
    for (const appID of await this.redis.sMembers(this.keys.apps)) {
      const app = this.keys.app(Number(appID));
      const [rooms, sessions, publications, streams] = await Promise.all([
        this.redis.sCard(app.rooms),
        this.redis.hLen(app.sessionRooms),
        this.redis.hLen(app.streams),
        this.redis.sCard(app.live),
      ]);
      counts.rooms += rooms;
      counts.sessions += sessions;
      counts.publications += publications;
      counts.streams += streams;
    }
    return counts;
  }
}
