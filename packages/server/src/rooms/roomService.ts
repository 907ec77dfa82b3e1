/**
 * Rooms, sessions and streams of every app: who is where, who publishes what, who plays what,
 * and who must be told. The transport hands it validated requests; the media plane does the
 * media. Every operation either succeeds or returns a spec error code and changes nothing.
 */
import {
  ErrorCode,
  qualityLevel,
  SPEAKING_LEVEL,
  StreamQualityLevel,
  UpdateType,
  validateRoomID,
  validateStreamExtraInfo,
  validateStreamID,
  validateUserID,
  validateUserName,
  worseLevel,
  type ClientRequest,
  type IceServer,
  type ReplyData,
  type StreamInfo,
  type User,
} from '@parley/protocol';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AppConfig, Limits } from '../config.js';
import { verifyAppSignProof, verifyResumeProof } from '../auth/appSign.js';
import { verifyToken04 } from '../auth/token04.js';
import { SdpError, type MediaEndpoint, type MediaPlane } from '../media/index.js';
import { AppRooms, Play, Publication, Room, Session, type ClientLink, type SessionToken } from './model.js';
import type { RoomServiceEvents, RoomServiceObserver, SessionEndReason, StreamEndReason } from './observer.js';
import { RoomMessaging, type MessagingLimits } from './messaging.js';
import { fail, type Failure, type FailureCode, type Outcome } from '../outcome.js';

const MAX_KICKED_SESSIONS = 10_000;
const TOKEN_WARNING_SECONDS = 30;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RoomServiceOptions {
  apps: AppConfig[];
  limits: Pick<Limits, 'maxPublicationsPerSession' | 'maxPlaysPerSession'> & MessagingLimits;
  media: MediaPlane;
  heartbeatTimeoutMs: number;
  /** How often rooms are told their online user count when it changed. */
  onlineCountIntervalMs: number;
  /** How often users are told how the server sees their links and those of whom they play. */
  networkQualityIntervalMs: number;
  /** How often rooms' active speakers are judged, and told when they changed. */
  activeSpeakerIntervalMs: number;
  /** TURN servers with credentials for a user's peer connections, handed out at login and resume (none without TURN). */
  iceServers(userID: string): IceServer[] | undefined;
  log: Logger;
}

export class RoomService {
  readonly observer: RoomServiceObserver = new EventEmitter<RoomServiceEvents>();
  readonly messaging: RoomMessaging;
  private readonly appConfigs = new Map<number, AppConfig>();
  private readonly apps = new Map<number, AppRooms>();
  private readonly media: MediaPlane;
  private readonly iceServers: RoomServiceOptions['iceServers'];
  private readonly heartbeatTimeoutMs: number;
  private readonly log: Logger;
  private readonly limits: RoomServiceOptions['limits'];
  private readonly onlineCountTimer: NodeJS.Timeout;
  private readonly networkQualityTimer: NodeJS.Timeout;
  private readonly activeSpeakerTimer: NodeJS.Timeout;

  constructor(options: RoomServiceOptions) {
    this.setApps(options.apps);
    this.media = options.media;
    this.iceServers = options.iceServers;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    this.limits = options.limits;
    this.log = options.log;
    this.messaging = new RoomMessaging(options.limits);
    this.onlineCountTimer = setInterval(() => this.tellOnlineCounts(), options.onlineCountIntervalMs).unref();
    this.networkQualityTimer = setInterval(() => this.tellNetworkQuality(), options.networkQualityIntervalMs).unref();
    this.activeSpeakerTimer = setInterval(() => this.tellActiveSpeakers(), options.activeSpeakerIntervalMs).unref();
  }

  /**
   * The apps, at start and from a reloaded configuration: a new app is served, changed secrets
   * apply to the next logins and tokens, and a removed app takes no new logins while the calls of
   * its users go on (they may still resume).
   */
  setApps(apps: AppConfig[]): void {
    this.appConfigs.clear();
    for (const app of apps) {
      this.appConfigs.set(app.appID, app);
      if (!this.apps.has(app.appID)) this.apps.set(app.appID, new AppRooms(app.appID));
    }
  }

  login(link: ClientLink, nonce: string, req: ClientRequest<'login'>): Outcome<ReplyData<'login'> & { session: Session }> {
    const config = this.appConfigs.get(req.appID);
    const app = this.apps.get(req.appID);
    if (!config || !app) return fail(ErrorCode.AppIDUnknown, `unknown appID ${req.appID}`);

    const invalid = validateRoomID(req.roomID) || validateUserID(req.user.userID) || validateUserName(req.user.userName);
    if (invalid) return fail(invalid as FailureCode, 'invalid roomID, userID or userName');

    let token: SessionToken | undefined;
    if ('appSignProof' in req.auth) {
      const login = { nonce, appID: req.appID, roomID: req.roomID, userID: req.user.userID };
      if (!verifyAppSignProof(config.appSign, req.auth.appSignProof, login)) {
        return fail(ErrorCode.AppSignWrong, 'appSign proof does not match');
      }
    } else if ('token' in req.auth) {
      const checked = this.checkToken(config, req.auth.token, req.user.userID, req.roomID);
      if ('code' in checked) return checked;
      token = checked.token;
    } else {
      return fail(ErrorCode.NoTokenNorAppSign, 'neither token nor appSign given');
    }

    const existingRoom = app.rooms.get(req.roomID);
    // A login replaces the user's older sessions: all of them, but for those in other rooms when
    // both are multi-room (one client in several rooms).
    const multiRoom = req.config.multiRoom ?? false;
    const replaced = app.sessionsOf(req.user.userID).filter((s) => !(multiRoom && s.multiRoom && s.room.id !== req.roomID));
    // A replaced session does not count towards the limit.
    const members = (existingRoom?.sessions.size ?? 0) - (replaced.some((s) => s.room === existingRoom) ? 1 : 0);
    if (existingRoom && existingRoom.maxMemberCount > 0 && members >= existingRoom.maxMemberCount) {
      return fail(ErrorCode.RoomFull, `room ${req.roomID} is full`);
    }
    if (replaced.length > 0 && req.rejoin) return fail(ErrorCode.KickedOut, 'the same userID logged in elsewhere');
    for (const previous of replaced) this.kick(previous, ErrorCode.KickedOut, 'replaced');

    let room = app.rooms.get(req.roomID);
    if (!room) {
      room = new Room(app, req.roomID, req.config.maxMemberCount);
      app.rooms.set(room.id, room);
      this.log.info({ appID: app.appID, roomID: room.id }, 'room created');
      this.observer.emit('roomCreated', { appID: app.appID, roomID: room.id });
    }
    const session = new Session(link, room, { ...req.user }, req.config.isUserStatusNotify, multiRoom);
    this.setToken(session, token);
    const users = room.users();
    room.sessions.set(session.user.userID, session);
    app.addSession(session);
    this.notifyUsers(room, UpdateType.Add, session);
    this.log.info({ appID: app.appID, roomID: room.id, userID: session.user.userID, address: link.remoteAddress }, 'login');
    this.observer.emit('userJoined', { appID: app.appID, roomID: room.id, user: session.user, sessionID: session.id });
    const data = {
      sessionID: session.id,
      resumeToken: session.resumeToken,
      seq: room.seq,
      users,
      streams: room.streams(session),
      extraInfos: [...room.extraInfos.values()],
      streamDevices: room.streamDevices(session),
      iceServers: this.iceServers(session.user.userID),
    };
    // After the reply: the count includes the newcomer; everyone else hears at the next interval.
    setImmediate(() => this.tellOnlineCount(session));
    return { code: 0, data: { ...data, session } };
  }

  /**
   * Re-attaches a session to a new connection after the old one broke. Nobody else notices; the
   * client gets the room events it missed (or a snapshot if too many) and what the server still
   * has it publishing and playing.
   */
  resume(link: ClientLink, nonce: string, req: ClientRequest<'resume'>): Outcome<ReplyData<'resume'> & { session: Session }> {
    const app = this.apps.get(req.appID);
    if (!app) return fail(ErrorCode.AppIDUnknown, `unknown appID ${req.appID}`);
    const kicked = app.kickedSessions.get(req.sessionID);
    if (kicked && verifyResumeProof(kicked.resumeToken, req.proof, nonce, req.sessionID)) {
      return fail(kicked.code as FailureCode, 'this session was kicked out');
    }
    const session = app.sessionsById.get(req.sessionID);
    // An unknown session and a wrong proof look the same from outside.
    if (!session?.active || !verifyResumeProof(session.resumeToken, req.proof, nonce, req.sessionID)) {
      return fail(ErrorCode.SessionNotFound, 'no such session; log in again');
    }
    const previous = session.link;
    session.link = link;
    session.lastSeen = Date.now();
    clearTimeout(session.expiryTimer);
    previous?.close();
    // A warning due while the link was down was lost with it: re-armed, it goes out now if due.
    if (session.token) this.setToken(session, session.token);
    const { room } = session;
    const events = room.eventsSince(req.lastSeq, session);
    this.log.info(
      { appID: app.appID, roomID: room.id, userID: session.user.userID, missed: events?.length ?? 'snapshot' },
      'session resumed',
    );
    return {
      code: 0,
      data: {
        seq: room.seq,
        ...(events
          ? { events }
          : {
              snapshot: {
                users: room.users(session),
                streams: room.streams(session),
                extraInfos: [...room.extraInfos.values()],
                streamDevices: room.streamDevices(session),
              },
            }),
        publishing: [...session.publications.keys()],
        playing: [...session.plays.keys()],
        iceServers: this.iceServers(session.user.userID),
        session,
      },
    };
  }

  /** Replaces a session's token: same app, same user, not expired. */
  renewToken(session: Session, tokenString: string): Outcome<ReplyData<'renewToken'>> {
    const config = this.appConfigs.get(session.room.app.appID);
    // An app a reload removed: its calls go on, but it takes no new tokens.
    if (!config) return fail(ErrorCode.AppIDUnknown, `app ${session.room.app.appID} is no longer configured`);
    const checked = this.checkToken(config, tokenString, session.user.userID, session.room.id);
    if ('code' in checked) return checked;
    this.setToken(session, checked.token);
    return { code: 0, data: {} };
  }

  private checkToken(config: AppConfig, tokenString: string, userID: string, roomID: string): { token: SessionToken } | Failure {
    const verified = verifyToken04(tokenString, config.serverSecret, { appID: config.appID, userID });
    if (!verified.ok) return fail(verified.code as FailureCode, verified.message);
    const { privileges } = verified;
    if (privileges && privileges.room_id !== roomID) return fail(ErrorCode.TokenInvalid, 'token is for another room');
    if (privileges && privileges.privilege['1'] !== 1) return fail(ErrorCode.TokenInvalid, 'token does not allow login');
    return { token: { expire: verified.claims.expire, privileges } };
  }

  /** Warns the client 30 s before its token expires (at once if less is left). */
  private setToken(session: Session, token: SessionToken | undefined): void {
    session.token = token;
    clearTimeout(session.tokenWarningTimer);
    if (!token) return;
    const warnAt = (token.expire - TOKEN_WARNING_SECONDS) * 1000;
    const warn = (): void => {
      const remainSeconds = Math.max(0, Math.round(token.expire - Date.now() / 1000));
      session.send({ type: 'tokenWillExpire', roomID: session.room.id, remainSeconds });
    };
    // Timers cannot wait longer than ~24.8 days; a longer token is re-armed in steps.
    const arm = (): void => {
      const wait = warnAt - Date.now();
      session.tokenWarningTimer = wait > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(warn, Math.max(0, wait));
    };
    arm();
  }

  logout(session: Session): void {
    this.removeSession(session, 'logout');
  }

  /** The session's connection is gone; it stays in the room until its heartbeat times out. */
  linkLost(session: Session, link: ClientLink): void {
    if (!session.active || session.link !== link) return;
    session.link = null;
    const remaining = Math.max(0, session.lastSeen + this.heartbeatTimeoutMs - Date.now());
    session.expiryTimer = setTimeout(() => this.removeSession(session, 'heartbeatTimeout'), remaining);
  }

  async publish(session: Session, req: ClientRequest<'publish'>): Promise<Outcome<ReplyData<'publish'>>> {
    if (!session.active) return fail(ErrorCode.NotLoggedIn, 'not logged in');
    const invalid = validateStreamID(req.streamID);
    if (invalid) return fail(invalid as FailureCode, 'invalid streamID');
    const denied = this.publishDenied(session, req.streamID);
    if (denied) return denied;
    if (validateStreamExtraInfo(req.extraInfo)) return fail(ErrorCode.StreamExtraInfoTooLong, 'stream extra info too long');
    const app = session.room.app;
    if (app.forbiddenStreams.has(req.streamID)) return fail(ErrorCode.StreamForbidden, `stream ${req.streamID} is forbidden`);
    const existing = app.publications.get(req.streamID);
    if (existing && existing.session !== session) {
      return fail(ErrorCode.StreamAlreadyPublished, `stream ${req.streamID} is published by another user`);
    }
    if (!existing && session.publications.size >= this.limits.maxPublicationsPerSession) {
      return fail(ErrorCode.ChannelAlreadyPublishing, `at most ${this.limits.maxPublicationsPerSession} streams per user`);
    }
    // The same session publishing its stream again is a publisher re-establishing its media after
    // an interruption: the stream stays announced and its players are told to play it again.
    // A new streamID is reserved before the (asynchronous) negotiation so that racing publishers lose cleanly.
    const publication = existing ?? new Publication(req.streamID, session, req.extraInfo);
    if (req.devices) publication.setDevices(req.devices);
    if (!existing) {
      app.publications.set(req.streamID, publication);
      session.publications.set(req.streamID, publication);
    }
    const negotiation = ++publication.negotiations;
    this.detachMedia(publication);

    let media;
    try {
      media = await this.media.publish(req.sdp);
    } catch (err) {
      if (!existing) this.dropPublication(publication, 'stopped');
      return this.mediaFailure(err, ErrorCode.PublishInterrupted);
    }
    if (session.publications.get(req.streamID) !== publication || publication.negotiations !== negotiation) {
      media.close(); // unpublished, logged out or superseded meanwhile
      return fail(ErrorCode.PublishInterrupted, 'publish cancelled');
    }
    publication.media = media;
    media.setMediaDue(publication.mediaDue);
    clearTimeout(publication.orphanTimer);
    media.observer.once('connected', () => {
      if (publication.media !== media || publication.live) return;
      publication.live = true;
      session.room.publications.set(publication.streamID, publication);
      this.notifyStreams(session.room, UpdateType.Add, [publication.info], session);
      session.room.emit({ type: 'streamDevicesUpdate', streams: [publication.devices] }, session);
      this.observer.emit('streamCreated', { appID: app.appID, roomID: session.room.id, stream: publication.info });
    });
    media.observer.once('closed', () => {
      if (publication.media === media) this.detachMedia(publication);
    });
    media.observer.on('activeLayers', (active) => {
      if (publication.media === media) session.send({ type: 'publishLayers', streamID: publication.streamID, active });
    });
    media.observer.on('stalled', () => {
      if (publication.media === media) session.send({ type: 'mediaStalled', streamID: publication.streamID, role: 'publish' });
    });
    return { code: 0, data: { sdp: media.answer } };
  }

  /**
   * Closes a publication's media, keeping the publication: its players are told to play again,
   * and its publisher gets a heartbeat timeout to publish again before the stream goes.
   */
  private detachMedia(publication: Publication): void {
    const media = publication.media;
    publication.media = undefined;
    clearTimeout(publication.orphanTimer);
    publication.orphanTimer = setTimeout(() => this.dropPublication(publication, 'mediaLost'), this.heartbeatTimeoutMs);
    media?.close();
  }

  unpublish(session: Session, streamID: string): Outcome<ReplyData<'unpublish'>> {
    const publication = session.publications.get(streamID);
    if (!publication) return { code: 0, data: {} }; // stopping what is not running is not an error
    this.dropPublication(publication, 'stopped');
    return { code: 0, data: {} };
  }

  async play(session: Session, req: ClientRequest<'play'>): Promise<Outcome<ReplyData<'play'>>> {
    if (!session.active) return fail(ErrorCode.NotLoggedIn, 'not logged in');
    const invalid = validateStreamID(req.streamID);
    if (invalid) return fail(invalid as FailureCode, 'invalid streamID');
    if (session.plays.has(req.streamID)) this.dropPlay(session.plays.get(req.streamID)!);
    if (session.plays.size >= this.limits.maxPlaysPerSession) {
      return fail(ErrorCode.PlayFailed, `at most ${this.limits.maxPlaysPerSession} streams played per user`);
    }
    const publication = session.room.publications.get(req.streamID);
    if (!publication?.media) return fail(ErrorCode.StreamNotFound, `stream ${req.streamID} does not exist`);

    const play = new Play(req.streamID, session, req.attempt);
    session.plays.set(req.streamID, play);
    let media;
    try {
      media = await publication.media.subscribe(req.sdp, req.video);
    } catch (err) {
      this.dropPlay(play);
      return this.mediaFailure(err, ErrorCode.PlayFailed);
    }
    if (session.plays.get(req.streamID) !== play || media.closed) {
      media.close();
      this.dropPlay(play);
      return fail(ErrorCode.StreamNotFound, `stream ${req.streamID} ended`);
    }
    play.media = media;
    if (req.muted) media.setMuted(req.muted);
    media.observer.once('closed', () => {
      if (session.plays.get(play.streamID) !== play) return;
      this.dropPlay(play);
      // Still announced means its publisher is re-establishing media: play again soon. Else it is gone.
      const stillAnnounced = session.room.publications.get(play.streamID) === publication;
      const code = stillAnnounced ? ErrorCode.PlayInterrupted : ErrorCode.StreamNotFound;
      session.send({ type: 'playStopped', streamID: play.streamID, attempt: play.attempt, code });
    });
    media.observer.on('stalled', () => {
      if (session.plays.get(play.streamID) === play) session.send({ type: 'mediaStalled', streamID: play.streamID, role: 'play' });
    });
    return { code: 0, data: { sdp: media.answer } };
  }

  /** New ICE credentials for the transport of a stream the session publishes or plays; nothing else changes. */
  async restartIce(session: Session, req: ClientRequest<'restartIce'>): Promise<Outcome<ReplyData<'restartIce'>>> {
    const media = req.role === 'publish' ? session.publications.get(req.streamID)?.media : session.plays.get(req.streamID)?.media;
    const interrupted = req.role === 'publish' ? ErrorCode.PublishInterrupted : ErrorCode.PlayInterrupted;
    if (!media?.connected) return fail(interrupted, `no connected media transport for ${req.role} of ${req.streamID}`);
    try {
      return { code: 0, data: { sdp: await media.restartIce(req.sdp) } };
    } catch (err) {
      return this.mediaFailure(err, interrupted);
    }
  }

  /** A player's new choice of layer or view size, for the play it has of `streamID`. */
  playVideo(session: Session, req: ClientRequest<'playVideo'>): Outcome<ReplyData<'playVideo'>> {
    const media = session.plays.get(req.streamID)?.media;
    if (!media) return fail(ErrorCode.StreamNotFound, `not playing ${req.streamID}`);
    media.setVideo(req.video);
    return { code: 0, data: {} };
  }

  /** A player's choice of what not to receive of `streamID`. */
  mutePlay(session: Session, req: ClientRequest<'mutePlay'>): Outcome<ReplyData<'mutePlay'>> {
    const media = session.plays.get(req.streamID)?.media;
    if (!media) return fail(ErrorCode.StreamNotFound, `not playing ${req.streamID}`);
    media.setMuted(req.muted);
    return { code: 0, data: {} };
  }

  unplay(session: Session, streamID: string): Outcome<ReplyData<'unplay'>> {
    const play = session.plays.get(streamID);
    if (play) this.dropPlay(play);
    return { code: 0, data: {} };
  }

  /** A token session may publish only with privilege 2, only listed streams (if listed), and only before it expires. */
  private publishDenied(session: Session, streamID: string): Failure | undefined {
    const { token } = session;
    if (!token) return undefined;
    if (token.expire <= Date.now() / 1000) return fail(ErrorCode.PublishPrivilegeDenied, 'token expired: renew it to publish');
    const privileges = token.privileges;
    if (!privileges) return undefined;
    if (privileges.privilege['2'] !== 1) return fail(ErrorCode.PublishPrivilegeDenied, 'token does not allow publishing');
    const list = privileges.stream_id_list;
    if (list && list.length > 0 && !list.includes(streamID))
      return fail(ErrorCode.PublishPrivilegeDenied, `token does not allow publishing ${streamID}`);
    return undefined;
  }

  /** A room of an app, for the server API. */
  room(appID: number, roomID: string): Room | undefined {
    return this.apps.get(appID)?.rooms.get(roomID);
  }

  /** Kicks a user out of its room on the server API's behalf (KickOut 1002055). */
  kickOut(room: Room, userID: string): boolean {
    const session = room.sessions.get(userID);
    if (session) this.kick(session, ErrorCode.KickedByServer, 'kicked');
    return Boolean(session);
  }

  /** Ends a room: everyone in it is kicked out (1002055). */
  closeRoom(room: Room): void {
    for (const session of [...room.sessions.values()]) this.kick(session, ErrorCode.KickedByServer, 'roomClosed');
  }

  /** Stops a stream and refuses it until resumeStream: its publisher gets 1003025, its players see it deleted. */
  forbidStream(appID: number, streamID: string): void {
    const app = this.apps.get(appID);
    if (!app) return;
    app.forbiddenStreams.add(streamID);
    const publication = app.publications.get(streamID);
    if (!publication) return;
    publication.session.send({ type: 'publishStopped', streamID, code: ErrorCode.StreamForbidden });
    this.dropPublication(publication, 'forbidden');
  }

  resumeStream(appID: number, streamID: string): void {
    this.apps.get(appID)?.forbiddenStreams.delete(streamID);
  }

  /** Who is in a room and what is published there, as the server sees it. */
  describeRoom(appID: number, roomID: string): { users: User[]; streams: StreamInfo[] } | undefined {
    const room = this.apps.get(appID)?.rooms.get(roomID);
    return room && { users: room.users(), streams: room.streams() };
  }

  /** Counts for tests and operations. */
  stats(): { rooms: number; sessions: number; publications: number } {
    let rooms = 0,
      sessions = 0,
      publications = 0;
    for (const app of this.apps.values()) {
      rooms += app.rooms.size;
      sessions += app.sessionsById.size;
      publications += app.publications.size;
    }
    return { rooms, sessions, publications };
  }

  private tellOnlineCounts(): void {
    for (const app of this.apps.values())
      for (const room of app.rooms.values()) for (const session of room.sessions.values()) this.tellOnlineCount(session);
  }

  private tellOnlineCount(session: Session): void {
    const count = session.room.sessions.size;
    if (!session.active || session.toldOnlineCount === count) return;
    session.toldOnlineCount = count;
    session.send({ type: 'onlineUserCount', roomID: session.room.id, count });
  }

  /**
   * Tells each user that publishes or plays how the server sees its uplink (the worst of its
   * publications') and downlink (the worst of its plays'), and tells the same of it to those who
   * play its streams.
   */
  private tellNetworkQuality(): void {
    type Link = Pick<MediaEndpoint, 'linkQuality'> | undefined;
    const levelOf = (media: Link): StreamQualityLevel => {
      if (!media) return StreamQualityLevel.Unknown;
      const { rttMs, lossFraction } = media.linkQuality();
      return qualityLevel(rttMs, lossFraction, true);
    };
    const worst = (media: Link[]): StreamQualityLevel =>
      media.reduce<StreamQualityLevel>((level, m) => worseLevel(level, levelOf(m)), StreamQualityLevel.Unknown);
    for (const app of this.apps.values()) {
      for (const room of app.rooms.values()) {
        const users = [...room.sessions.values()].filter((s) => s.active && (s.publications.size > 0 || s.plays.size > 0));
        for (const session of users) {
          const upstream = worst([...session.publications.values()].map((p) => p.media));
          const downstream = worst([...session.plays.values()].map((p) => p.media));
          const message = { type: 'networkQuality', roomID: room.id, userID: session.user.userID, upstream, downstream } as const;
          session.send(message);
          for (const other of users) {
            if (other !== session && [...other.plays.keys()].some((streamID) => session.publications.has(streamID))) other.send(message);
          }
        }
      }
    }
  }

  /** Tells each room who speaks in it (loudest first) when that changed: the publications whose audio was loud enough. */
  private tellActiveSpeakers(): void {
    for (const app of this.apps.values()) {
      for (const room of app.rooms.values()) {
        const speakers = [];
        for (const publication of room.publications.values()) {
          const soundLevel = publication.media?.speechLevel() ?? 0;
          if (soundLevel >= SPEAKING_LEVEL)
            speakers.push({ userID: publication.session.user.userID, streamID: publication.streamID, soundLevel });
        }
        if (!room.speakersChanged(speakers.map((s) => s.streamID))) continue;
        speakers.sort((a, b) => b.soundLevel - a.soundLevel);
        for (const session of room.sessions.values())
          if (session.active) session.send({ type: 'activeSpeakers', roomID: room.id, speakers });
      }
    }
  }

  /** Removes every session (server shutdown) without telling anyone: clients reconnect elsewhere or later. */
  closeAll(): void {
    clearInterval(this.onlineCountTimer);
    clearInterval(this.networkQualityTimer);
    clearInterval(this.activeSpeakerTimer);
    for (const app of this.apps.values()) {
      const sessions = [...app.sessionsById.values()];
      for (const session of sessions) session.link = null;
      for (const session of sessions) this.removeSession(session, 'serverShutdown');
      app.kickedSessions.clear();
    }
  }

  private kick(session: Session, code: FailureCode, reason: SessionEndReason): void {
    session.send({ type: 'kickedOut', roomID: session.room.id, code, reason });
    // Remembered until enough newer kicks push it out; a client that comes back later than that
    // logs in again with `rejoin`, which the newer session also wins.
    const { kickedSessions } = session.room.app;
    kickedSessions.set(session.id, { resumeToken: session.resumeToken, code });
    if (kickedSessions.size > MAX_KICKED_SESSIONS) kickedSessions.delete(kickedSessions.keys().next().value!);
    const link = session.link;
    this.removeSession(session, reason);
    link?.close();
  }

  private removeSession(session: Session, why: SessionEndReason): void {
    if (!session.active) return;
    session.active = false;
    clearTimeout(session.expiryTimer);
    clearTimeout(session.tokenWarningTimer);
    const { room } = session;
    const app = room.app;
    for (const play of [...session.plays.values()]) this.dropPlay(play);
    for (const publication of [...session.publications.values()]) this.dropPublication(publication, why);
    room.sessions.delete(session.user.userID);
    app.removeSession(session);
    session.link = null;
    this.log.info({ appID: app.appID, roomID: room.id, userID: session.user.userID, why }, 'session removed');
    const ref = { appID: app.appID, roomID: room.id };
    this.observer.emit('userLeft', { ...ref, user: session.user, sessionID: session.id, reason: why });
    if (room.sessions.size === 0) {
      app.rooms.delete(room.id);
      this.log.info(ref, 'room closed');
      this.observer.emit('roomClosed', { ...ref, reason: why });
    } else {
      this.notifyUsers(room, UpdateType.Delete, session);
    }
  }

  private dropPublication(publication: Publication, why: StreamEndReason): void {
    const { session, streamID } = publication;
    const app = session.room.app;
    if (app.publications.get(streamID) !== publication) return;
    clearTimeout(publication.orphanTimer);
    app.publications.delete(streamID);
    session.publications.delete(streamID);
    if (publication.live) {
      session.room.publications.delete(streamID);
      this.notifyStreams(session.room, UpdateType.Delete, [publication.info], session);
      this.observer.emit('streamClosed', { appID: app.appID, roomID: session.room.id, stream: publication.info, reason: why });
    }
    // Closing the media closes every subscriber, which tells each player (see play()).
    this.detachMedia(publication);
    clearTimeout(publication.orphanTimer);
  }

  private dropPlay(play: Play): void {
    const { session } = play;
    if (session.plays.get(play.streamID) === play) session.plays.delete(play.streamID);
    const media = play.media;
    play.media = undefined;
    media?.close();
  }

  private notifyUsers(room: Room, updateType: UpdateType, subject: Session): void {
    room.emit({ type: 'userUpdate', updateType, users: [subject.user] }, subject);
  }

  private notifyStreams(room: Room, updateType: UpdateType, streams: StreamInfo[], from: Session): void {
    room.emit({ type: 'streamUpdate', updateType, streams }, from);
  }

  private mediaFailure(err: unknown, fallback: FailureCode): Failure {
    if (err instanceof SdpError) return fail(ErrorCode.InvalidSdp, err.message);
    this.log.error({ err }, 'media plane failure');
    return fail(fallback, 'media negotiation failed');
  }
}
