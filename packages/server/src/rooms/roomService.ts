/**
 * Rooms, sessions and streams of every app: who is where, who publishes what, who plays what,
 * and who must be told. The one writer of room state, through its store: the transport hands it
 * validated requests by session ID, the server API asks it by room, and the rest watch its
 * observer. Every operation either succeeds or returns a spec error code and changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  ErrorCode,
  UpdateType,
  validateRoomID,
  validateUserID,
  validateUserName,
  type ClientRequest,
  type IceServer,
  type MediaRole,
  type ReplyData,
  type ServerMessage,
  type StreamInfo,
  type User,
} from '@parley/protocol';
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import type { AppRegistry } from '../apps.js';
import { verifyAppSignProof, verifyResumeProof } from '../auth/appSign.js';
import { verifyToken04 } from '../auth/token04.js';
import type { MediaPlane, MediaTap } from '../media/index.js';
import { randomHex } from '../random.js';
import { fail, ok, type Failure, type FailureCode, type Outcome } from '../outcome.js';
import { realRoomClock, type RoomClock } from './clock.js';
import { LiveHandles, type ClientLink, type LiveSession, type SessionHolder } from './liveHandles.js';
import { RoomMessaging, type MessagingLimits, type Sender } from './messaging.js';
import type { RoomServiceEvents, RoomServiceObserver, SessionEndReason } from './observer.js';
import { RoomReports, type ReportIntervals } from './roomReports.js';
import { AppQueues, LONE_NODE, refOf, type NodeDirectory, type RoomContext } from './roomContext.js';
import { concerns, NO_BUS, RoomFeeds, type RoomBus } from './roomFeeds.js';
import { devicesChanged, RoomStreams, streamDevicesOf, streamInfoOf, type StreamLimits } from './streams.js';
import { MemoryRoomStore } from './store/memoryRoomStore.js';
import type { LoggedEvent, RoomStore, SessionRecord, SessionToken, StoreCounts } from './store/roomStore.js';

const TOKEN_WARNING_SECONDS = 30;

export interface RoomServiceOptions extends ReportIntervals {
  apps: AppRegistry;
  limits: StreamLimits & MessagingLimits;
  media: MediaPlane;
  heartbeatTimeoutMs: number;
  /** TURN servers with credentials for a user's peer connections, handed out at login and resume (none without TURN). */
  iceServers(userID: string): IceServer[] | undefined;
  log: Logger;
  /** Where room state lives; in this process's memory by default. */
  store?: RoomStore;
  /** How the servers sharing the store hear of each other's room events; none by default (one server). */
  bus?: RoomBus;
  /** Told which sessions this server holds (a cluster's index of them). */
  holder?: SessionHolder;
  /** The servers sharing the store; this one alone by default. */
  nodes?: NodeDirectory;
  clock?: RoomClock;
}

/** A session as the transport knows it: by ID. */
export interface SessionRef {
  appID: number;
  sessionID: string;
}

/** What a room looks like from outside (the server API): its users in the order they joined, and its announced streams. */
export interface RoomView {
  users: User[];
  streams: StreamInfo[];
}

export class RoomService {
  readonly observer: RoomServiceObserver = new EventEmitter<RoomServiceEvents>();
  private readonly ctx: RoomContext;
  private readonly streams: RoomStreams;
  private readonly messaging: RoomMessaging;
  private readonly reports: RoomReports;
  private readonly apps: AppRegistry;
  private readonly iceServers: RoomServiceOptions['iceServers'];
  private readonly heartbeatTimeoutMs: number;

  constructor(options: RoomServiceOptions) {
    this.apps = options.apps;
    this.iceServers = options.iceServers;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    const store = options.store ?? new MemoryRoomStore();
    const live = new LiveHandles(options.holder);
    const bus = options.bus ?? NO_BUS;
    const feeds = new RoomFeeds(store, live, bus, options.log, (room, logged) => this.loggedElsewhere(room, logged));
    const queues = new AppQueues();
    const nodes = options.nodes ?? LONE_NODE;
    this.ctx = { store, live, clock: options.clock ?? realRoomClock, log: options.log, observer: this.observer, queues, feeds, nodes };
    // Other servers' players of this server's streams get them relayed from their publishers here.
    options.media.relay?.serve(({ appID, streamID, publicationID }) => {
      const handle = live.publicationOfStream(appID, streamID);
      return handle?.record.publicationID === publicationID ? handle.media : undefined;
    });
    bus.listen((room, logged) => void queues.run(room.appID, () => feeds.heard(room, logged)));
    this.streams = new RoomStreams(this.ctx, options.media, options.limits, options.heartbeatTimeoutMs);
    this.messaging = new RoomMessaging(this.ctx, options.limits);
    this.reports = new RoomReports(this.ctx, options);
  }

  async login(link: ClientLink, nonce: string, req: ClientRequest<'login'>): Promise<Outcome<ReplyData<'login'>>> {
    const config = this.apps.get(req.appID);
    if (!config) return fail(ErrorCode.AppIDUnknown, `unknown appID ${req.appID}`);
    const invalid = validateRoomID(req.roomID) || validateUserID(req.user.userID) || validateUserName(req.user.userName);
    if (invalid) return fail(invalid as FailureCode, 'invalid roomID, userID or userName');

    let token: SessionToken | undefined;
    if ('appSignProof' in req.auth) {
      const login = { nonce, appID: req.appID, roomID: req.roomID, userID: req.user.userID };
      if (!verifyAppSignProof(config.appSign, req.auth.appSignProof, login))
        return fail(ErrorCode.AppSignWrong, 'appSign proof does not match');
    } else if ('token' in req.auth) {
      const checked = checkToken(config, req.auth.token, req.user.userID, req.roomID);
      if ('code' in checked) return checked;
      token = checked.token;
    } else {
      return fail(ErrorCode.NoTokenNorAppSign, 'neither token nor appSign given');
    }
    return this.ctx.queues.run(req.appID, () => this.join(link, req, token));
  }

  private async join(link: ClientLink, req: ClientRequest<'login'>, token: SessionToken | undefined): Promise<Outcome<ReplyData<'login'>>> {
    const { store, live, log, observer } = this.ctx;
    const { appID, roomID } = req;
    // A login replaces the user's older sessions: all of them, but for those in other rooms when
    // both are multi-room (one client in several rooms).
    const multiRoom = req.config.multiRoom ?? false;
    const [sessionsOfUser, existing] = await Promise.all([store.sessionsOfUser(appID, req.user.userID), store.room(appID, roomID)]);
    const replaced = sessionsOfUser.filter((s) => !(multiRoom && s.multiRoom && s.roomID !== roomID));
    if (existing && existing.maxMemberCount > 0) {
      // A replaced session does not count towards the limit.
      const members = (await store.memberCount(appID, roomID)) - replaced.filter((s) => s.roomID === roomID).length;
      if (members >= existing.maxMemberCount) return fail(ErrorCode.RoomFull, `room ${roomID} is full`);
    }
    if (replaced.length > 0 && req.rejoin) return fail(ErrorCode.KickedOut, 'the same userID logged in elsewhere');
    for (const previous of replaced) await this.kick(previous, ErrorCode.KickedOut, 'replaced');

    const session: SessionRecord = {
      sessionID: randomUUID(),
      appID,
      roomID,
      user: { ...req.user },
      resumeToken: randomHex(16),
      notifyUserUpdates: req.config.isUserStatusNotify,
      multiRoom,
      token,
    };
    const joined = await store.joinRoom(session, req.config.maxMemberCount);
    if (joined.code !== 0) return joined;
    const { room, opened, snapshot } = joined.data;
    if (opened) {
      log.info({ appID, roomID }, 'room created');
      observer.emit('roomCreated', refOf(room, opened));
    }
    const handle = live.addSession(session, link);
    this.armTokenWarning(handle, token);
    await this.ctx.feeds.logged(room, joined.data.joined);
    log.info({ appID, roomID, userID: session.user.userID, address: link.remoteAddress }, 'login');
    observer.emit('userJoined', { ...refOf(room, joined.data.joined), user: session.user, sessionID: session.sessionID });
    // After the reply: the count includes the newcomer; everyone else hears at the next interval.
    setImmediate(() => this.reports.tellOnlineCount(handle, snapshot.members.length + 1));
    const { streams } = snapshot;
    return ok({
      sessionID: session.sessionID,
      resumeToken: session.resumeToken,
      seq: joined.data.joined.seq,
      users: snapshot.members.map((s) => s.user),
      streams: streams.map(streamInfoOf),
      extraInfos: snapshot.extraInfos,
      streamDevices: streams.map(streamDevicesOf).filter(devicesChanged),
      iceServers: this.iceServers(session.user.userID),
    });
  }

  /**
   * Re-attaches a session to a new connection after the old one broke. Nobody else notices; the
   * client gets the room events it missed (or a snapshot if too many) and what the server still
   * has it publishing and playing.
   */
  async resume(link: ClientLink, nonce: string, req: ClientRequest<'resume'>): Promise<Outcome<ReplyData<'resume'>>> {
    const { appID, sessionID } = req;
    if (!this.apps.wasServed(appID)) return fail(ErrorCode.AppIDUnknown, `unknown appID ${appID}`);
    const { store, live, log, queues } = this.ctx;
    return queues.run(appID, async () => {
      const kicked = await store.kickOf(appID, sessionID);
      if (kicked && verifyResumeProof(kicked.resumeToken, req.proof, nonce, sessionID)) {
        return fail(kicked.code as FailureCode, 'this session was kicked out');
      }
      const session = await store.session(appID, sessionID);
      // An unknown session and a wrong proof look the same from outside.
      if (!session || !verifyResumeProof(session.resumeToken, req.proof, nonce, sessionID)) {
        return fail(ErrorCode.SessionNotFound, 'no such session; log in again');
      }
      const handle = live.session(sessionID) ?? live.addSession(session, null);
      const previous = handle.link;
      handle.link = link;
      handle.cancelExpiry?.();
      handle.cancelExpiry = undefined;
      previous?.close();
      // A warning due while the link was down was lost with it: re-armed, it goes out now if due.
      this.armTokenWarning(handle, session.token);
      const { roomID } = session;
      const [room, logged, publications, plays] = await Promise.all([
        store.room(appID, roomID),
        store.eventsSince(appID, roomID, req.lastSeq),
        store.publicationsOfSession(appID, sessionID),
        store.playsOfSession(appID, sessionID),
      ]);
      const events = logged?.filter((entry) => concerns(entry, handle)).map((entry) => entry.event!);
      log.info({ appID, roomID, userID: session.user.userID, missed: events?.length ?? 'snapshot' }, 'session resumed');
      return ok({
        seq: room?.seq ?? req.lastSeq,
        ...(events ? { events } : { snapshot: await this.snapshot(session) }),
        // Only what has its transport here: a session resumed on another server sets up its media again.
        publishing: publications.filter((p) => live.hasPublication(p.publicationID)).map((p) => p.streamID),
        playing: plays.filter((p) => live.playMedia(p.playID)).map((p) => p.streamID),
        iceServers: this.iceServers(session.user.userID),
      });
    });
  }

  /** The room as `session` sees it: everyone and everything but itself. */
  private async snapshot(session: SessionRecord): Promise<NonNullable<ReplyData<'resume'>['snapshot']>> {
    const { store } = this.ctx;
    const { appID, roomID, sessionID } = session;
    const streams = (await store.liveStreams(appID, roomID)).filter((p) => p.sessionID !== sessionID);
    return {
      users: (await store.members(appID, roomID)).filter((s) => s.sessionID !== sessionID).map((s) => s.user),
      streams: streams.map(streamInfoOf),
      extraInfos: await store.roomExtraInfos(appID, roomID),
      streamDevices: streams.map(streamDevicesOf).filter(devicesChanged),
    };
  }

  /** Whether `link` is the connection `ref`'s session talks through now (a connection whose session resumed elsewhere speaks for it no more). */
  speaksFor(ref: SessionRef, link: ClientLink): boolean {
    return this.ctx.live.session(ref.sessionID)?.link === link;
  }

  /**
   * Does a session's reliable request once: the client re-sends it after a reconnect (to this
   * server or another) until answered, and a repeat gets the first outcome.
   */
  async once<T>(ref: SessionRef, clientSeq: number, request: () => Promise<Outcome<T>>): Promise<Outcome<T>> {
    const { store } = this.ctx;
    const done = await store.requestOutcome(ref.appID, ref.sessionID, clientSeq);
    if (done) return done as Outcome<T>;
    const outcome = await request();
    // A refusal changed nothing: a repeat may as well be tried anew.
    if (outcome.code === 0) {
      await store.rememberRequest(ref.appID, ref.sessionID, clientSeq, outcome).catch((err: unknown) => {
        this.ctx.log.warn({ err, ...ref, clientSeq }, 'a reliable request’s outcome was not remembered: a repeat would be done again');
      });
    }
    return outcome;
  }

  /** Replaces a session's token: same app, same user, not expired. */
  renewToken(ref: SessionRef, tokenString: string): Promise<Outcome<ReplyData<'renewToken'>>> {
    return this.asSession(ref, async (session) => {
      const config = this.apps.get(ref.appID);
      // An app a reload removed: its calls go on, but it takes no new tokens.
      if (!config) return fail(ErrorCode.AppIDUnknown, `app ${ref.appID} is no longer configured`);
      const checked = checkToken(config, tokenString, session.user.userID, session.roomID);
      if ('code' in checked) return checked;
      await this.ctx.store.setSessionToken(ref.appID, ref.sessionID, checked.token);
      const handle = this.ctx.live.session(ref.sessionID);
      if (handle) this.armTokenWarning(handle, checked.token);
      return ok({});
    });
  }

  /** Warns the client 30 s before its token expires (at once if less is left). */
  private armTokenWarning(session: LiveSession, token: SessionToken | undefined): void {
    const { clock } = this.ctx;
    session.cancelTokenWarning?.();
    session.cancelTokenWarning = undefined;
    if (!token) return;
    session.cancelTokenWarning = clock.after(Math.max(0, (token.expire - TOKEN_WARNING_SECONDS) * 1000 - clock.now()), () => {
      const remainSeconds = Math.max(0, Math.round(token.expire - clock.now() / 1000));
      session.link?.send({ type: 'tokenWillExpire', roomID: session.roomID, remainSeconds });
    });
  }

  logout(ref: SessionRef): Promise<void> {
    return this.ctx.queues.run(ref.appID, async () => {
      const session = await this.ctx.store.session(ref.appID, ref.sessionID);
      if (session) await this.removeSession(session, 'logout');
    });
  }

  /** The session's connection is gone; it stays in the room until its heartbeat times out. */
  linkLost(ref: SessionRef, link: ClientLink): void {
    const { live, clock, queues } = this.ctx;
    const session = live.session(ref.sessionID);
    if (session?.link !== link) return;
    session.link = null;
    const remaining = Math.max(0, link.lastHeardMs + this.heartbeatTimeoutMs - clock.now());
    session.cancelExpiry = clock.after(remaining, () => {
      void queues.run(ref.appID, async () => {
        const record = await this.ctx.store.session(ref.appID, ref.sessionID);
        if (record && live.session(ref.sessionID) === session && !session.link) await this.removeSession(record, 'heartbeatTimeout');
      });
    });
  }

  addRemoteCandidates(
    ref: SessionRef,
    role: MediaRole,
    streamID: string,
    candidates: readonly string[],
  ): Promise<Outcome<Record<string, never>>> {
    return this.streams.addRemoteCandidates(ref.appID, ref.sessionID, role, streamID, candidates);
  }

  /** The room a live stream of the app is published in. */
  async roomOfStream(appID: number, streamID: string): Promise<string | undefined> {
    const publication = await this.ctx.store.publication(appID, streamID);
    return publication?.live ? publication.roomID : undefined;
  }

  publish(ref: SessionRef, req: ClientRequest<'publish'>): Promise<Outcome<ReplyData<'publish'>>> {
    return this.streams.publish(ref.appID, ref.sessionID, req);
  }

  unpublish(ref: SessionRef, streamID: string): Promise<Outcome<ReplyData<'unpublish'>>> {
    return this.streams.unpublish(ref.appID, ref.sessionID, streamID);
  }

  play(ref: SessionRef, req: ClientRequest<'play'>): Promise<Outcome<ReplyData<'play'>>> {
    return this.streams.play(ref.appID, ref.sessionID, req);
  }

  unplay(ref: SessionRef, streamID: string): Promise<Outcome<ReplyData<'unplay'>>> {
    return this.streams.unplay(ref.appID, ref.sessionID, streamID);
  }

  /** A player's new choice of layer or view size, or of what not to receive, for its play of `streamID`. */
  changePlay(ref: SessionRef, req: ClientRequest<'playVideo'> | ClientRequest<'mutePlay'>): Promise<Outcome<Record<string, never>>> {
    return this.streams.changePlay(ref.appID, ref.sessionID, req);
  }

  restartIce(ref: SessionRef, req: ClientRequest<'restartIce'>): Promise<Outcome<ReplyData<'restartIce'>>> {
    return this.streams.restartIce(ref.appID, ref.sessionID, req);
  }

  /** A room message or extra info from a session (see RoomMessaging). */
  say<T>(ref: SessionRef, act: (messaging: RoomMessaging, session: SessionRecord) => Promise<Outcome<T>>): Promise<Outcome<T>> {
    return this.asSession(ref, (session) => act(this.messaging, session));
  }

  /** A room message on behalf of `user` (the server API); undefined when the room is not open. */
  sayAs<T>(
    appID: number,
    roomID: string,
    user: User,
    act: (messaging: RoomMessaging, room: { appID: number; roomID: string }, from: Sender) => Promise<Outcome<T>>,
  ): Promise<Outcome<T> | undefined> {
    return this.ctx.queues.run(appID, async () =>
      (await this.ctx.store.room(appID, roomID)) ? act(this.messaging, { appID, roomID }, { user, sessionID: null }) : undefined,
    );
  }

  private asSession<T>(ref: SessionRef, act: (session: SessionRecord) => Promise<Outcome<T>>): Promise<Outcome<T>> {
    return this.ctx.queues.run(ref.appID, async () => {
      const session = await this.ctx.store.session(ref.appID, ref.sessionID);
      return session ? act(session) : fail(ErrorCode.NotLoggedIn, 'not logged in');
    });
  }

  /** A tap on a live stream's media (a recording's), here or relayed from its node; undefined while it has none. */
  tap(appID: number, streamID: string): Promise<MediaTap | undefined> {
    return this.streams.tap(appID, streamID);
  }

  /** The session that publishes a stream, if it is live. */
  async publisherOf(appID: number, streamID: string): Promise<string | undefined> {
    const publication = await this.ctx.store.publication(appID, streamID);
    return publication?.live ? publication.sessionID : undefined;
  }

  /** Sends a message to a session connected to this server (nothing if it is not). */
  tell(sessionID: string, message: ServerMessage): void {
    this.ctx.live.send(sessionID, message);
  }

  /** Who is in a room and what is published there; undefined when the room is not open. */
  async describeRoom(appID: number, roomID: string): Promise<RoomView | undefined> {
    const { store } = this.ctx;
    if (!(await store.room(appID, roomID))) return undefined;
    const [members, streams] = await Promise.all([store.members(appID, roomID), store.liveStreams(appID, roomID)]);
    return { users: members.map((s) => s.user), streams: streams.map(streamInfoOf) };
  }

  /** Ends a session that a dead server held (heartbeat timeout), unless it resumed here meanwhile: false then. */
  sweep(ref: SessionRef): Promise<boolean> {
    return this.ctx.queues.run(ref.appID, async () => {
      if (this.ctx.live.session(ref.sessionID)) return false;
      const session = await this.ctx.store.session(ref.appID, ref.sessionID);
      if (session) await this.removeSession(session, 'heartbeatTimeout');
      return true;
    });
  }

  /** A session of this server resumed on another: its link and media here close, and nothing else changes. */
  letGoOfMoved(ref: SessionRef): Promise<void> {
    return this.ctx.queues.run(ref.appID, async () => {
      const handle = this.ctx.live.session(ref.sessionID);
      if (handle) this.letGo(handle);
    });
  }

  /** Lets go of the sessions this server holds that the room state no longer has (ended while this server was away). */
  async letGoOfEnded(): Promise<void> {
    const { store, live } = this.ctx;
    for (const handle of live.allSessions()) {
      await this.ctx.queues.run(handle.appID, async () => {
        if (live.session(handle.sessionID) === handle && !(await store.session(handle.appID, handle.sessionID))) this.letGo(handle);
      });
    }
  }

  /** Forgets what this server holds of a session ended elsewhere: its link closes, its media too. */
  private letGo(handle: LiveSession): void {
    const { live } = this.ctx;
    const link = handle.link;
    for (const media of live.takeMediaOf(handle.sessionID)) media.close();
    live.removeSession(handle);
    link?.close();
  }

  /** Sessions this server holds. */
  get heldSessions(): number {
    return this.ctx.live.allSessions().length;
  }

  /** Kicks a user out of its room on the server API's behalf (KickOut 1002055); false if it is not there. */
  kickOut(appID: number, roomID: string, userID: string): Promise<boolean> {
    return this.ctx.queues.run(appID, async () => {
      const session = (await this.ctx.store.members(appID, roomID)).find((s) => s.user.userID === userID);
      if (session) await this.kick(session, ErrorCode.KickedByServer, 'kicked');
      return Boolean(session);
    });
  }

  /** Ends a room: everyone in it is kicked out (1002055). False if it is not open. */
  closeRoom(appID: number, roomID: string): Promise<boolean> {
    return this.ctx.queues.run(appID, async () => {
      const members = await this.ctx.store.members(appID, roomID);
      for (const session of members) await this.kick(session, ErrorCode.KickedByServer, 'roomClosed');
      return members.length > 0;
    });
  }

  /** Stops a stream and refuses it until resumeStream: its publisher gets 1003025, its players see it deleted. */
  forbidStream(appID: number, streamID: string): Promise<void> {
    return this.ctx.queues.run(appID, () => this.streams.forbid(appID, streamID));
  }

  resumeStream(appID: number, streamID: string): Promise<void> {
    return this.ctx.queues.run(appID, () => this.ctx.store.allowStream(appID, streamID));
  }

  /** Counts for tests and operations. */
  stats(): Promise<StoreCounts> {
    return this.ctx.store.counts();
  }

  /** Resolves once every operation under way (and those they started) has finished. */
  settled(): Promise<void> {
    return this.ctx.queues.settled();
  }

  /**
   * Lets go of every session of this node of a cluster (shutdown) and ends nothing: their clients
   * resume on other nodes, and the cluster ends those that do not (see NodeLease).
   */
  async releaseAll(): Promise<void> {
    this.reports.stop();
    for (const handle of this.ctx.live.allSessions()) {
      const link = handle.link;
      handle.link = null;
      handle.cancelExpiry?.();
      for (const media of this.ctx.live.takeMediaOf(handle.sessionID)) media.close();
      link?.close();
    }
    await this.ctx.queues.settled();
  }

  /** Removes every session of this server (server shutdown) without telling anyone: clients reconnect elsewhere or later. */
  async closeAll(): Promise<void> {
    const { live, store, queues } = this.ctx;
    this.reports.stop();
    const sessions = live.allSessions();
    for (const session of sessions) session.link = null;
    await Promise.all(
      sessions.map((handle) =>
        queues.run(handle.appID, async () => {
          const session = await store.session(handle.appID, handle.sessionID);
          if (session) await this.removeSession(session, 'serverShutdown');
        }),
      ),
    );
    await queues.settled();
    await store.forgetKicks();
  }

  private async kick(session: SessionRecord, code: FailureCode, reason: SessionEndReason): Promise<void> {
    const handle = this.ctx.live.session(session.sessionID);
    handle?.link?.send({ type: 'kickedOut', roomID: session.roomID, code, reason });
    await this.ctx.store.rememberKick(session.appID, session.sessionID, { resumeToken: session.resumeToken, code, reason });
    const link = handle?.link;
    await this.removeSession(session, reason);
    link?.close();
  }

  private async removeSession(session: SessionRecord, why: SessionEndReason): Promise<void> {
    const { store, live, log, observer } = this.ctx;
    const { appID, roomID, sessionID, user } = session;
    const handle = live.session(sessionID);
    if (handle) live.removeSession(handle);
    await this.streams.endSessionStreams(session, why);
    const left = await store.leaveRoom(appID, sessionID);
    if (!left) return;
    log.info({ appID, roomID, userID: user.userID, why }, 'session removed');
    observer.emit('userLeft', { ...refOf(left.room, left.left), user, sessionID, reason: why });
    await this.ctx.feeds.logged(left.room, left.left);
    if (left.closed) {
      this.messaging.forget(left.room);
      log.info({ appID, roomID }, 'room closed');
      observer.emit('roomClosed', { ...refOf(left.room, left.closed), reason: why });
      await this.ctx.feeds.logged(left.room, left.closed);
    }
  }

  /**
   * An event another server logged, after this server's sessions were told of it: what it ended
   * that this server holds live ends here too. A session of this server that left its room was
   * kicked out elsewhere (its client is told why); a stream of this server that was deleted was
   * ended elsewhere (its media closes; its publisher is told if it was forbidden).
   */
  private async loggedElsewhere(room: { appID: number; roomID: string }, { event, from }: LoggedEvent): Promise<void> {
    const { store, live } = this.ctx;
    if (event?.type === 'userUpdate' && event.updateType === UpdateType.Delete && from) {
      const handle = live.session(from);
      if (!handle || (await store.session(room.appID, from))) return;
      const kick = await store.kickOf(room.appID, from);
      if (kick) handle.link?.send({ type: 'kickedOut', roomID: room.roomID, code: kick.code as FailureCode, reason: kick.reason });
      this.letGo(handle);
    }
    if (event?.type === 'streamUpdate' && event.updateType === UpdateType.Delete) {
      for (const { streamID } of event.streams) {
        const handle = live.publicationOfStream(room.appID, streamID);
        if (!handle || (await store.publication(room.appID, streamID))?.publicationID === handle.record.publicationID) continue;
        const media = handle.media;
        live.removePublication(handle.record.publicationID);
        media?.close();
        if (await store.streamForbidden(room.appID, streamID)) {
          live.send(handle.record.sessionID, { type: 'publishStopped', streamID, code: ErrorCode.StreamForbidden });
        }
      }
    }
  }
}

function checkToken(config: AppConfig, tokenString: string, userID: string, roomID: string): { token: SessionToken } | Failure {
  const verified = verifyToken04(tokenString, config.serverSecret, { appID: config.appID, userID });
  if (!verified.ok) return fail(verified.code as FailureCode, verified.message);
  const { privileges } = verified;
  if (privileges && privileges.room_id !== roomID) return fail(ErrorCode.TokenInvalid, 'token is for another room');
  if (privileges && privileges.privilege['1'] !== 1) return fail(ErrorCode.TokenInvalid, 'token does not allow login');
  return { token: { expire: verified.claims.expire, privileges } };
}
