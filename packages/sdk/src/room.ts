/**
 * The room state machine of one engine: Logining → Logined (or LoginFailed); on a broken
 * connection Reconnecting → Reconnected (or ReconnectFailed past the reconnect window); Logout
 * and KickOut end it. It owns the signalling connection while in a room, numbers what it has
 * seen of the room, and after a reconnect makes the app see exactly what it missed.
 */
import {
  ErrorCode,
  RoomStateChangedReason,
  UpdateType,
  appSignProofMessage,
  hexKeyBytes,
  resumeProofMessage,
  type ClientRequest,
  type IceServer,
  type ReplyData,
  RemoteDeviceState,
  type MediaRole,
  type StreamDevices,
  type RoomEvent,
  type RoomExtraInfo,
  type ServerMessage,
  type StreamInfo,
  type StreamQualityLevel,
  type User,
} from '@parley/protocol';
import type { EventHub } from './events.js';
import type { Timeouts } from './context.js';
import type { Platform } from './platform.js';
import { SignallingClient } from './signalling.js';
import { ReconnectPolicy } from './reconnectPolicy.js';
import type { ServerList } from './serverList.js';
import { ReliableRequests } from './reliableRequests.js';
import type { MediaNotice } from './mediaLink.js';

export interface RoomConfig {
  isUserStatusNotify?: boolean;
  maxMemberCount?: number;
  token?: string;
}

export interface RoomCredentials {
  appID: number;
  appSign?: string;
  servers: ServerList;
  reconnectWindowMs: number;
}

/** What the server still has this client doing after a reconnect. */
export interface ResumedState {
  publishing: string[];
  playing: string[];
}

/** What the room tells the engine beyond callbacks. */
export interface RoomObserver {
  streamAdded(streamID: string): void;
  playStopped(streamID: string, attempt: number, code: number): void;
  /** The server stopped a publication for good. */
  publishStopped(streamID: string, code: number): void;
  /** Which simulcast layers of a published stream some player uses; the others may pause. */
  publishLayers(streamID: string, active: boolean[]): void;
  /** The most each layer of a published stream is to be encoded at (bits per second, 0: as configured). */
  publishBitrates(streamID: string, maxBitrates: number[]): void;
  /** Another user's stream's camera or microphone changed (or is known from the room's state). */
  streamDevicesChanged(devices: StreamDevices): void;
  /**
   * About the transport publishing or playing `streamID`: the server receives nothing on it
   * (`stalled`), or moved its media to another of its threads (`moved`).
   */
  mediaNotice(streamID: string, role: MediaRole, notice: MediaNotice): void;
  /** Back in the room after a reconnect; media the server no longer has must be set up again. */
  resumed(state: ResumedState): void;
  /** The room ended (logout, kick-out, reconnect failed): publishers and players must stop. */
  ended(errorCode: number): void;
}

type Phase = 'idle' | 'logining' | 'logined' | 'reconnecting' | 'loggingOut';
type LoginAuth = ClientRequest<'login'>['auth'];
type Push = Exclude<ServerMessage, { type: 'hello' | 'reply' | 'error' }>;

/** Login failures that retrying cannot fix. */
const FINAL_LOGIN_CODES = new Set<number>([
  ErrorCode.AppIDUnknown,
  ErrorCode.AppSignWrong,
  ErrorCode.NoTokenNorAppSign,
  ErrorCode.TokenInvalid,
  ErrorCode.RoomFull,
]);

export class Room {
  private phase: Phase = 'idle';
  private roomID = '';
  private user: User | undefined;
  private config: RoomConfig = {};
  private signalling: SignallingClient | null = null;
  private session: { sessionID: string; resumeToken: string } | undefined;
  private turnServers: IceServer[] = [];
  /** The last room event applied; events at or below it are repeats. */
  private lastSeq = 0;
  /** The app's view of the room, to turn a snapshot into the ADD/DELETE it implies. */
  private readonly users = new Map<string, User>();
  private readonly streams = new Map<string, StreamInfo>();
  private readonly extraInfos = new Map<string, RoomExtraInfo>();
  /** The devices of others' streams that are not all Open (players report them). */
  private readonly streamDevices = new Map<string, StreamDevices>();
  /** Messages and extra info on their way to the server; they survive reconnects. */
  readonly requests = new ReliableRequests();
  private wakeReconnect: (() => void) | undefined;
  /**
   * Pushes that arrive while a login or resume reply is still being handled (a socket may hand
   * over a reply and the next frames at once); they are applied right after it.
   */
  private early: Push[] = [];
  /** Callers of renewToken waiting for a connection to send it on. */
  private renewalWaiters: Array<(code: number) => void> = [];
  private renewalsInFlight = 0;
  private stopWatchingPage: (() => void) | undefined;

  constructor(
    private readonly platform: Platform,
    private readonly credentials: RoomCredentials,
    private readonly timeouts: Timeouts,
    private readonly hub: EventHub,
    private readonly observer: RoomObserver,
    /** One of several rooms of the engine (RoomMode.MultiRoom): the server keeps the user's sessions in other rooms. */
    private readonly multiRoom = false,
  ) {}

  get id(): string {
    return this.roomID;
  }

  /** In no room: before login, after logout or an end. */
  get idle(): boolean {
    return this.phase === 'idle';
  }

  /** Whether the room has announced stream `streamID` (it is published there now). */
  announces(streamID: string): boolean {
    return this.streams.has(streamID);
  }

  /** Logging in, logged in or reconnecting to room `roomID`. */
  isIn(roomID: string): boolean {
    return this.roomID === roomID && (this.phase === 'logining' || this.phase === 'logined' || this.phase === 'reconnecting');
  }

  get iceServers(): IceServer[] {
    return this.turnServers;
  }

  /** The signalling client while logged in (not while reconnecting). */
  get activeSignalling(): SignallingClient | null {
    return this.phase === 'logined' ? this.signalling : null;
  }

  async login(roomID: string, user: User, config: RoomConfig): Promise<number> {
    if (this.phase !== 'idle') return ErrorCode.RoomCountExceeded;
    this.phase = 'logining';
    Object.assign(this, { roomID, user, config });
    // A closed tab logs out at once rather than staying in the room until the server's heartbeat
    // timeout (the logout frame goes out before the page's socket closes).
    this.stopWatchingPage = this.platform.onPageHide?.(() => void this.logout());
    this.state(RoomStateChangedReason.Logining, 0);
    const signalling = new SignallingClient(this.platform, this.timeouts);
    this.signalling = signalling;
    const entered = await this.enter(signalling);
    if (this.signalling !== signalling) return ErrorCode.ConnectFailed; // logged out meanwhile
    if (typeof entered === 'number') {
      this.leave(entered);
      this.state(RoomStateChangedReason.LoginFailed, entered);
      return entered;
    }
    this.phase = 'logined';
    this.sendRenewal();
    this.requests.connected(signalling);
    this.state(RoomStateChangedReason.Logined, 0);
    entered(); // the room as it is arrives after Logined
    this.flushEarly();
    return 0;
  }

  /** Replaces the room token; later logins after a reconnect use the new one too. */
  renewToken(token: string): Promise<number> {
    if (this.phase === 'idle' || this.phase === 'loggingOut') return Promise.resolve(ErrorCode.NotLoggedIn);
    this.config = { ...this.config, token };
    // While logging in or reconnecting, a login already sent or a resumed session holds the old
    // token: the new one goes out once the session is back.
    const answered = new Promise<number>((resolve) => this.renewalWaiters.push(resolve));
    if (this.phase === 'logined') this.sendRenewal();
    return answered;
  }

  private sendRenewal(): void {
    const waiters = this.renewalWaiters.splice(0);
    if (waiters.length === 0 || !this.signalling || !this.config.token) return;
    this.renewalsInFlight++;
    void this.signalling.request('renewToken', { token: this.config.token }).then(({ code }) => {
      this.renewalsInFlight--;
      for (const resolve of waiters) resolve(code);
    });
  }

  /** Leaves this room and enters `roomID` as the same user (switchRoom); `config` replaces this room's (a token for the new room). */
  async switchTo(roomID: string, config: RoomConfig | undefined): Promise<number> {
    const user = this.user;
    if (!user) return ErrorCode.NotLoggedIn;
    const next = config ?? this.config;
    await this.logout();
    return this.login(roomID, user, next);
  }

  async logout(): Promise<void> {
    if (this.phase === 'idle' || this.phase === 'loggingOut') return;
    const signalling = this.phase === 'logined' ? this.signalling : null;
    const wasReconnecting = this.phase === 'reconnecting';
    this.phase = 'loggingOut';
    this.wakeReconnect?.();
    this.observer.ended(0);
    if (signalling) await signalling.request('logout', {}, this.timeouts.requestTimeoutMs);
    else if (wasReconnecting) await this.logoutDetached();
    this.leave();
    this.state(RoomStateChangedReason.Logout, 0);
  }

  /** Logging out while reconnecting: one quick try to reach the server, so we do not linger there. */
  private async logoutDetached(): Promise<void> {
    this.signalling?.close();
    const session = this.session;
    if (!session) return;
    const signalling = new SignallingClient(this.platform, this.timeouts);
    this.signalling = signalling;
    try {
      const { nonce } = await signalling.connect(this.credentials.servers.current);
      const proof = await this.platform.hmacSha256Hex(hexKeyBytes(session.resumeToken), resumeProofMessage(nonce, session.sessionID));
      const reply = await signalling.request('resume', {
        appID: this.credentials.appID,
        sessionID: session.sessionID,
        proof,
        lastSeq: this.lastSeq,
      });
      if (reply.code === 0) await signalling.request('logout', {});
    } catch {
      // Unreachable: the server drops the session at its heartbeat timeout.
    }
  }

  /** Connects and logs in on `signalling`. Returns the error code, or what applies the room's current state. */
  private async enter(signalling: SignallingClient): Promise<number | (() => void)> {
    const { servers } = this.credentials;
    let nonce: string | undefined;
    // Each server of the list once, until one answers.
    for (let tried = 0; nonce === undefined; tried++) {
      try {
        nonce = (await signalling.connect(servers.current)).nonce;
      } catch (code) {
        if (tried + 1 >= servers.size || this.signalling !== signalling) return typeof code === 'number' ? code : ErrorCode.ConnectFailed;
        servers.moveOn();
      }
    }
    if (this.signalling !== signalling) return ErrorCode.ConnectFailed;
    this.listen(signalling);
    return this.sendLogin(signalling, nonce);
  }

  private async sendLogin(signalling: SignallingClient, nonce: string, rejoin = false): Promise<number | (() => void)> {
    const reply = await signalling.request('login', {
      appID: this.credentials.appID,
      roomID: this.roomID,
      user: this.user!,
      config: {
        isUserStatusNotify: this.config.isUserStatusNotify ?? false,
        maxMemberCount: this.config.maxMemberCount ?? 0,
        ...(this.multiRoom && { multiRoom: true }),
      },
      auth: await this.loginAuth(nonce),
      ...(rejoin ? { rejoin } : {}),
    });
    if (reply.code !== 0 || !('data' in reply)) return reply.code;
    const { sessionID, resumeToken, seq, iceServers, ...snapshot } = reply.data;
    this.session = { sessionID, resumeToken };
    this.turnServers = iceServers ?? [];
    return () => {
      this.lastSeq = seq;
      this.applySnapshot(snapshot);
    };
  }

  private async loginAuth(nonce: string): Promise<LoginAuth> {
    const { appID, appSign } = this.credentials;
    if (this.config.token) return { token: this.config.token };
    if (appSign)
      return {
        appSignProof: await this.platform.hmacSha256Hex(
          hexKeyBytes(appSign),
          appSignProofMessage(nonce, appID, this.roomID, this.user!.userID),
        ),
      };
    return {};
  }

  private listen(signalling: SignallingClient): void {
    signalling.onPush = (message) => {
      if (this.signalling === signalling) this.onPush(message);
    };
    signalling.onLost = () => {
      if (this.signalling === signalling) this.onLost();
    };
  }

  private onPush(message: Push): void {
    if (this.phase === 'logining' || this.phase === 'reconnecting') {
      this.early.push(message);
      return;
    }
    if (this.phase !== 'logined') return;
    switch (message.type) {
      case 'userUpdate':
      case 'streamUpdate':
      case 'broadcastMessage':
      case 'customCommand':
      case 'roomExtraInfoUpdate':
      case 'streamExtraInfoUpdate':
      case 'streamDevicesUpdate':
        this.applyEvent(message);
        return;
      case 'barrageMessage':
        this.hub.emit('IMRecvBarrageMessage', this.roomID, message.messages);
        return;
      case 'onlineUserCount':
        this.hub.emit('roomOnlineUserCountUpdate', this.roomID, message.count);
        return;
      case 'networkQuality':
        // The local user is '' (the vendor's convention).
        this.hub.emit(
          'networkQuality',
          message.userID === this.user?.userID ? '' : message.userID,
          message.upstream as StreamQualityLevel,
          message.downstream as StreamQualityLevel,
        );
        return;
      case 'playStopped':
        this.observer.playStopped(message.streamID, message.attempt, message.code);
        return;
      case 'publishStopped':
        this.observer.publishStopped(message.streamID, message.code);
        return;
      case 'publishLayers':
        this.observer.publishLayers(message.streamID, message.active);
        return;
      case 'publishBitrates':
        this.observer.publishBitrates(message.streamID, message.maxBitrates);
        return;
      case 'activeSpeakers':
        this.hub.emit('activeSpeakerUpdate', this.roomID, message.speakers);
        return;
      case 'mediaStalled':
      case 'mediaMoved':
        this.observer.mediaNotice(message.streamID, message.role, message.type === 'mediaStalled' ? 'stalled' : 'moved');
        return;
      case 'relayCdnState':
        this.hub.emit('publisherRelayCDNStateUpdate', message.streamID, message.infoList);
        return;
      case 'mixerRelayCdnState':
        this.hub.emit('mixerRelayCDNStateUpdate', message.taskID, message.infoList);
        return;
      case 'kickedOut':
        this.end(RoomStateChangedReason.KickOut, message.code);
        return;
      case 'tokenWillExpire':
        // About the token being replaced (the server re-warns after a resume).
        if (this.renewalWaiters.length > 0 || this.renewalsInFlight > 0) return;
        this.hub.emit('roomTokenWillExpire', this.roomID, message.remainSeconds);
        return;
    }
  }

  private applyEvent(event: RoomEvent): void {
    if (event.seq <= this.lastSeq) return; // already seen (replayed after a resume)
    this.lastSeq = event.seq;
    switch (event.type) {
      case 'userUpdate':
        return this.applyUsers(event.updateType, event.users);
      case 'streamUpdate':
        return this.applyStreams(event.updateType, event.streams);
      case 'broadcastMessage':
        return this.hub.emit('IMRecvBroadcastMessage', this.roomID, [event.message]);
      case 'customCommand':
        return this.hub.emit('IMRecvCustomCommand', this.roomID, event.fromUser, event.command);
      case 'roomExtraInfoUpdate':
        return this.applyExtraInfos(event.extraInfos);
      case 'streamExtraInfoUpdate':
        return this.applyStreamExtraInfos(event.streams);
      case 'streamDevicesUpdate':
        return this.applyStreamDevices(event.streams);
    }
  }

  /** A stream's camera, microphone and speaker as the room knows them (Open unless told otherwise). */
  devicesOf(streamID: string): StreamDevices {
    return (
      this.streamDevices.get(streamID) ?? {
        streamID,
        camera: RemoteDeviceState.Open,
        microphone: RemoteDeviceState.Open,
        speaker: RemoteDeviceState.Open,
      }
    );
  }

  private applyStreamDevices(devices: StreamDevices[]): void {
    for (const device of devices) {
      this.streamDevices.set(device.streamID, device);
      this.observer.streamDevicesChanged(device);
    }
  }

  private applyExtraInfos(infos: RoomExtraInfo[]): void {
    for (const info of infos) this.extraInfos.set(info.key, info);
    if (infos.length > 0) this.hub.emit('roomExtraInfoUpdate', this.roomID, infos);
  }

  private applyStreamExtraInfos(streams: StreamInfo[]): void {
    const known = streams.filter((stream) => this.streams.has(stream.streamID));
    for (const stream of known) this.streams.set(stream.streamID, stream);
    if (known.length > 0) this.hub.emit('roomStreamExtraInfoUpdate', this.roomID, known);
  }

  private applyUsers(type: UpdateType, users: User[]): void {
    for (const user of users) {
      if (type === UpdateType.Add) this.users.set(user.userID, user);
      else this.users.delete(user.userID);
    }
    if (users.length > 0 && this.config.isUserStatusNotify) this.hub.emit('roomUserUpdate', this.roomID, type, users);
  }

  private applyStreams(type: UpdateType, streams: StreamInfo[]): void {
    for (const stream of streams) {
      if (type === UpdateType.Add) this.streams.set(stream.streamID, stream);
      else this.streams.delete(stream.streamID);
    }
    if (streams.length === 0) return;
    this.hub.emit('roomStreamUpdate', this.roomID, type, streams, '');
    if (type === UpdateType.Add) for (const stream of streams) this.observer.streamAdded(stream.streamID);
  }

  /**
   * Makes the app's view equal the room as the server has it, reporting the differences as DELETE
   * then ADD (something that changed, such as a stream now published by someone else, is both), and
   * changed extra info as updates.
   */
  private applySnapshot({
    users,
    streams,
    extraInfos,
    streamDevices,
  }: {
    users: User[];
    streams: StreamInfo[];
    extraInfos: RoomExtraInfo[];
    streamDevices: StreamDevices[];
  }): void {
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    const nextUsers = new Map(users.map((u) => [u.userID, u]));
    const nextStreams = new Map(streams.map((s) => [s.streamID, s]));
    // A stream whose only change is its extra info stays; the change is reported as such.
    const extraInfoChanged = streams.filter((next) => {
      const current = this.streams.get(next.streamID);
      return current && same(current.user, next.user) && current.extraInfo !== next.extraInfo;
    });
    for (const stream of extraInfoChanged) this.streams.set(stream.streamID, stream);
    const gone = <T>(current: Map<string, T>, next: Map<string, T>): T[] =>
      [...current].filter(([id, value]) => !same(next.get(id), value)).map(([, value]) => value);
    const added = <T>(current: Map<string, T>, next: Map<string, T>): T[] =>
      [...next].filter(([id, value]) => !same(current.get(id), value)).map(([, value]) => value);
    const streamsAdded = added(this.streams, nextStreams);
    const usersAdded = added(this.users, nextUsers);
    this.applyStreams(UpdateType.Delete, gone(this.streams, nextStreams));
    this.applyUsers(UpdateType.Delete, gone(this.users, nextUsers));
    this.applyUsers(UpdateType.Add, usersAdded);
    this.applyStreams(UpdateType.Add, streamsAdded);
    if (extraInfoChanged.length > 0) this.hub.emit('roomStreamExtraInfoUpdate', this.roomID, extraInfoChanged);
    this.applyExtraInfos(extraInfos.filter((info) => !same(this.extraInfos.get(info.key), info)));
    // Streams not listed are all Open.
    const listed = new Map(streamDevices.map((d) => [d.streamID, d]));
    const reopened = [...this.streamDevices.keys()]
      .filter((id) => !listed.has(id))
      .map((id) => ({ streamID: id, camera: 0, microphone: 0, speaker: 0 }));
    for (const id of reopened.map((d) => d.streamID)) this.streamDevices.delete(id);
    this.applyStreamDevices([...streamDevices.filter((d) => !same(this.streamDevices.get(d.streamID), d)), ...reopened]);
  }

  private onLost(): void {
    if (this.phase !== 'logined') return;
    this.phase = 'reconnecting';
    // The server may be gone: the session resumes at the next one (any node of a cluster has it).
    this.credentials.servers.moveOn();
    this.signalling?.close();
    this.signalling = null;
    this.requests.disconnected();
    this.state(RoomStateChangedReason.Reconnecting, ErrorCode.ConnectionBroken);
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    const policy = new ReconnectPolicy({ windowMs: this.credentials.reconnectWindowMs });
    const brokenAt = Date.now();
    for (let attempt = 0; this.phase === 'reconnecting'; attempt++) {
      const delay = policy.nextDelay(attempt, Date.now() - brokenAt);
      if (delay === null) return this.end(RoomStateChangedReason.ReconnectFailed, ErrorCode.ReconnectWindowExceeded);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeReconnect = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeReconnect = undefined;
      if (this.phase !== 'reconnecting') return;
      const outcome = await this.tryResume();
      if (this.phase !== 'reconnecting') return;
      if (typeof outcome === 'object' && 'kicked' in outcome) return this.end(RoomStateChangedReason.KickOut, outcome.kicked);
      if (typeof outcome === 'number') {
        if (FINAL_LOGIN_CODES.has(outcome)) return this.end(RoomStateChangedReason.ReconnectFailed, outcome);
        continue;
      }
      this.phase = 'logined';
      this.sendRenewal();
      this.requests.connected(this.signalling!);
      // Publishers and players that were running pick up first, so that anything the app starts
      // from the callbacks below is new and left alone.
      this.observer.resumed(outcome);
      this.state(RoomStateChangedReason.Reconnected, 0);
      outcome.catchUp(); // what was missed arrives after Reconnected
      this.flushEarly();
      return;
    }
  }

  /**
   * One reconnect attempt: resume the session, or, if the server no longer has it, log in again
   * (then nothing of ours is published or played there any more).
   */
  private async tryResume(): Promise<(ResumedState & { catchUp(): void }) | { kicked: number } | number> {
    const signalling = new SignallingClient(this.platform, this.timeouts);
    this.signalling = signalling;
    this.early = [];
    const fail = (code: number): number => {
      signalling.close();
      if (this.signalling === signalling) this.signalling = null;
      return code;
    };
    let nonce: string;
    try {
      nonce = (await signalling.connect(this.credentials.servers.current)).nonce;
    } catch {
      this.credentials.servers.moveOn();
      return fail(ErrorCode.ConnectFailed);
    }
    if (this.signalling !== signalling) return fail(ErrorCode.ConnectFailed);
    this.listen(signalling);
    const { sessionID, resumeToken } = this.session!;
    const proof = await this.platform.hmacSha256Hex(hexKeyBytes(resumeToken), resumeProofMessage(nonce, sessionID));
    const reply = await signalling.request('resume', { appID: this.credentials.appID, sessionID, proof, lastSeq: this.lastSeq });
    if (reply.code === 0 && 'data' in reply) {
      const { data } = reply;
      this.turnServers = data.iceServers ?? this.turnServers;
      return { publishing: data.publishing, playing: data.playing, catchUp: () => this.applyResume(data) };
    }
    if (reply.code === ErrorCode.KickedOut || reply.code === ErrorCode.KickedByServer) {
      fail(reply.code);
      return { kicked: reply.code };
    }
    if (reply.code !== ErrorCode.SessionNotFound) return fail(reply.code);
    // The server forgot us (restarted, or we were away past its heartbeat timeout): log in anew,
    // unless someone has logged in with our userID since.
    const entered = await this.sendLogin(signalling, nonce, true);
    if (entered === ErrorCode.KickedOut) {
      fail(entered);
      return { kicked: entered };
    }
    if (typeof entered === 'number') return fail(entered);
    return { publishing: [], playing: [], catchUp: entered };
  }

  private applyResume(data: ReplyData<'resume'>): void {
    if (data.events) for (const event of data.events) this.applyEvent(event);
    else if (data.snapshot) this.applySnapshot(data.snapshot);
    this.lastSeq = Math.max(this.lastSeq, data.seq);
  }

  private flushEarly(): void {
    for (const message of this.early.splice(0)) this.onPush(message);
  }

  private end(reason: RoomStateChangedReason, code: number): void {
    this.observer.ended(code);
    this.leave(code);
    this.state(reason, code);
  }

  private leave(code: number = ErrorCode.NotLoggedIn): void {
    this.stopWatchingPage?.();
    this.stopWatchingPage = undefined;
    this.requests.ended(code);
    this.signalling?.close();
    this.signalling = null;
    this.session = undefined;
    this.users.clear();
    this.streams.clear();
    this.extraInfos.clear();
    this.streamDevices.clear();
    this.lastSeq = 0;
    this.early = [];
    this.phase = 'idle';
    this.wakeReconnect?.();
    for (const resolve of this.renewalWaiters.splice(0)) resolve(ErrorCode.NotLoggedIn);
  }

  private state(reason: RoomStateChangedReason, errorCode: number): void {
    this.hub.emit('roomStateChanged', this.roomID, reason, errorCode, '');
  }
}
