/**
 * The room state machine of one engine: Logining → Logined (or LoginFailed), then Logout,
 * KickOut or a lost connection. It owns the signalling connection while in a room and turns
 * server pushes into callbacks.
 */
import {
  ErrorCode,
  RoomStateChangedReason,
  UpdateType,
  appSignKeyBytes,
  appSignProofMessage,
  type ClientRequest,
  type ServerMessage,
  type User,
} from '@parley/protocol';
import type { EventHub } from './events.js';
import type { Timeouts } from './context.js';
import type { Platform } from './platform.js';
import { SignallingClient } from './signalling.js';

export interface RoomConfig {
  isUserStatusNotify?: boolean;
  maxMemberCount?: number;
  token?: string;
}

export interface RoomCredentials {
  appID: number;
  appSign?: string;
  server: string;
}

/** What the room tells the engine beyond callbacks. */
export interface RoomObserver {
  streamAdded(streamID: string): void;
  playStopped(streamID: string, attempt: number, code: number): void;
  /** The room ended (logout, kick-out, lost): publishers and players must stop. */
  ended(errorCode: number): void;
}

type LoginAuth = ClientRequest<'login'>['auth'];
type Phase = 'idle' | 'logining' | 'logined' | 'loggingOut';

async function hmacHex(key: Uint8Array, message: string): Promise<string> {
  const subtle = globalThis.crypto.subtle;
  const cryptoKey = await subtle.importKey('raw', key as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await subtle.sign('HMAC', cryptoKey, new TextEncoder().encode(message)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Room {
  private phase: Phase = 'idle';
  private roomID = '';
  private signalling: SignallingClient | null = null;
  private notifyUsers = false;

  constructor(
    private readonly platform: Platform,
    private readonly credentials: RoomCredentials,
    private readonly timeouts: Timeouts,
    private readonly hub: EventHub,
    private readonly observer: RoomObserver,
  ) {}

  get id(): string {
    return this.roomID;
  }

  /** The signalling client while logged in. */
  get activeSignalling(): SignallingClient | null {
    return this.phase === 'logined' ? this.signalling : null;
  }

  async login(roomID: string, user: User, config: RoomConfig): Promise<number> {
    if (this.phase !== 'idle') return ErrorCode.RoomCountExceeded;
    this.phase = 'logining';
    this.roomID = roomID;
    this.notifyUsers = config.isUserStatusNotify ?? false;
    this.state(RoomStateChangedReason.Logining, 0);

    const signalling = new SignallingClient(this.platform, this.timeouts);
    this.signalling = signalling;
    let nonce: string;
    try {
      nonce = (await signalling.connect(this.credentials.server)).nonce;
    } catch (code) {
      if (this.signalling !== signalling) return ErrorCode.ConnectFailed; // logged out meanwhile
      return this.loginFailed(typeof code === 'number' ? code : ErrorCode.ConnectFailed);
    }
    if (this.signalling !== signalling) return ErrorCode.ConnectFailed;

    const { appID, appSign } = this.credentials;
    let auth: LoginAuth = {};
    if (config.token) auth = { token: config.token };
    else if (appSign)
      auth = { appSignProof: await hmacHex(appSignKeyBytes(appSign), appSignProofMessage(nonce, appID, roomID, user.userID)) };
    signalling.onPush = (message) => this.onPush(message);
    signalling.onLost = () => this.onLost();
    const reply = await signalling.request('login', {
      appID,
      roomID,
      user,
      config: { isUserStatusNotify: this.notifyUsers, maxMemberCount: config.maxMemberCount ?? 0 },
      auth,
    });
    if (this.signalling !== signalling) return ErrorCode.ConnectFailed;
    if (reply.code !== 0 || !('data' in reply)) return this.loginFailed(reply.code);

    this.phase = 'logined';
    this.state(RoomStateChangedReason.Logined, 0);
    if (this.notifyUsers && reply.data.users.length > 0) {
      this.hub.emit('roomUserUpdate', roomID, UpdateType.Add, reply.data.users);
    }
    if (reply.data.streams.length > 0) {
      this.hub.emit('roomStreamUpdate', roomID, UpdateType.Add, reply.data.streams, '');
    }
    return 0;
  }

  async logout(): Promise<void> {
    if (this.phase === 'idle' || this.phase === 'loggingOut') return;
    const signalling = this.signalling;
    const wasLogined = this.phase === 'logined';
    this.phase = 'loggingOut';
    this.observer.ended(0);
    if (wasLogined && signalling) await signalling.request('logout', {}, this.timeouts.requestTimeoutMs);
    this.leave();
    this.state(RoomStateChangedReason.Logout, 0);
  }

  private loginFailed(code: number): number {
    this.leave();
    this.state(RoomStateChangedReason.LoginFailed, code);
    return code;
  }

  private onPush(message: Exclude<ServerMessage, { type: 'hello' | 'reply' | 'error' }>): void {
    if (this.phase !== 'logined') return;
    switch (message.type) {
      case 'userUpdate': // only sent to sessions that asked (isUserStatusNotify)
        this.hub.emit('roomUserUpdate', this.roomID, message.updateType, message.users);
        return;
      case 'streamUpdate':
        this.hub.emit('roomStreamUpdate', this.roomID, message.updateType, message.streams, '');
        if (message.updateType === UpdateType.Add) for (const s of message.streams) this.observer.streamAdded(s.streamID);
        return;
      case 'playStopped':
        this.observer.playStopped(message.streamID, message.attempt, message.code);
        return;
      case 'kickedOut':
        this.end(RoomStateChangedReason.KickOut, message.code);
        return;
    }
  }

  private onLost(): void {
    if (this.phase === 'logined') this.end(RoomStateChangedReason.ReconnectFailed, ErrorCode.Disconnected);
  }

  private end(reason: RoomStateChangedReason, code: number): void {
    this.observer.ended(code);
    this.leave();
    this.state(reason, code);
  }

  private leave(): void {
    this.signalling?.close();
    this.signalling = null;
    this.phase = 'idle';
  }

  private state(reason: RoomStateChangedReason, errorCode: number): void {
    this.hub.emit('roomStateChanged', this.roomID, reason, errorCode, '');
  }
}
