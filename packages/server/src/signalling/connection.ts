/**
 * One client's WebSocket: validates every frame at the edge, answers each request with a reply
 * carrying its id, and keeps the client's session bound to this link. Bad frames get an error
 * code and change nothing else.
 */
import type { Socket } from 'node:net';
import type { WebSocket, RawData } from 'ws';
import { CloseCode, ErrorCode, PROTOCOL_VERSION, parseClientMessage, type ClientMessage, type ServerMessage } from '@parley/protocol';
import type { Logger } from 'pino';
import type { RoomService } from '../rooms/roomService.js';
import type { Outcome } from '../outcome.js';
import type { ClientLink, Session } from '../rooms/model.js';
import type { Limits } from '../config.js';
import { TokenBucket, type KeyedRateLimiter } from '../rateLimit.js';
import { randomHex } from '../random.js';
import type { WriteBatch } from './writeBatch.js';

/** How long a connection the server closes may take over the close handshake before it is cut. */
const CLOSE_GRACE_MS = 5000;

export interface ConnectionOptions {
  rooms: RoomService;
  heartbeatTimeoutMs: number;
  log: Logger;
  limits: Limits;
  /** Shared by all connections: logins and frames per IP address. */
  logins: KeyedRateLimiter;
  framesByIp: KeyedRateLimiter;
  /** The WebSocket's TCP socket, whose writes `writes` batches per event-loop turn. */
  socket: Socket;
  writes: WriteBatch;
  remoteAddress: string;
  /** Told of every non-zero code sent in a reply or an error (for metrics). */
  onErrorCode?: (code: number) => void;
}

export class Connection implements ClientLink {
  private readonly nonce = randomHex(16);
  private session: Session | null = null;
  private readonly silenceTimer: NodeJS.Timeout;
  private readonly frames: TokenBucket;
  private rateLimited = 0;

  get remoteAddress(): string {
    return this.options.remoteAddress;
  }

  constructor(
    private readonly ws: WebSocket,
    private readonly options: ConnectionOptions,
  ) {
    this.frames = new TokenBucket(options.limits.framesPerSecond, options.limits.frameBurst);
    ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    ws.on('close', (code) => this.onClose(code));
    ws.on('error', () => ws.terminate());
    // The client heartbeats at a third of the timeout, so two lost heartbeats are tolerated.
    this.silenceTimer = setTimeout(() => ws.terminate(), options.heartbeatTimeoutMs);
    this.send({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      nonce: this.nonce,
      heartbeatIntervalMs: Math.max(1, Math.floor(options.heartbeatTimeoutMs / 3)),
    });
  }

  send(message: ServerMessage, droppable = false): void {
    if ((message.type === 'reply' || message.type === 'error') && message.code !== 0) this.options.onErrorCode?.(message.code);
    if (this.ws.readyState !== this.ws.OPEN) return;
    const { socket, writes, limits } = this.options;
    const unsentBytes = writes.backlog(socket);
    if (droppable && unsentBytes > limits.maxUnsentBytes / 16) return;
    if (unsentBytes > limits.maxUnsentBytes) {
      // Buffering on would let one stalled reader take the server's memory. Its session stays for
      // the heartbeat timeout, so the client can resume and catch up on a new connection.
      this.options.log.warn({ unsentBytes }, 'client too slow, disconnecting');
      this.closeWith(CloseCode.SlowReader, 'client too slow');
      return;
    }
    writes.hold(socket);
    this.ws.send(JSON.stringify(message));
  }

  close(): void {
    this.closeWith(CloseCode.Normal, 'session ended');
  }

  /** The close frame waits behind anything unsent; a client that does not read it is cut off. */
  private closeWith(code: CloseCode, reason: string): void {
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    this.silenceTimer.refresh();
    if (this.session) this.session.lastSeen = Date.now();
    if (!this.frames.take() || !this.options.framesByIp.take(this.options.remoteAddress)) {
      // Refused unread; a client that keeps flooding is cut off.
      if (++this.rateLimited >= this.options.limits.maxRateLimitedFrames) this.closeWith(CloseCode.PolicyViolation, 'rate limit');
      else this.send({ type: 'error', code: ErrorCode.RateLimited, message: 'too many frames; slow down' });
      return;
    }
    if (isBinary) {
      this.send({ type: 'error', code: ErrorCode.MalformedMessage, message: 'binary frames are not accepted' });
      return;
    }
    const parsed = parseClientMessage(data.toString());
    if (!parsed.ok) {
      this.send(
        parsed.id === undefined
          ? { type: 'error', code: ErrorCode.MalformedMessage, message: parsed.message }
          : { type: 'reply', id: parsed.id, code: ErrorCode.MalformedMessage, message: parsed.message },
      );
      return;
    }
    const message = parsed.value;
    void this.handle(message).then(
      (outcome) => this.reply(message.id, outcome),
      (err: unknown) => {
        this.options.log.error({ err, type: message.type }, 'request failed');
        this.reply(message.id, { code: ErrorCode.RoomInternalError, message: 'internal error' });
      },
    );
  }

  private reply(id: number, outcome: Outcome<unknown>): void {
    this.send(
      outcome.code === 0
        ? { type: 'reply', id, code: 0, data: outcome.data }
        : { type: 'reply', id, code: outcome.code, message: outcome.message },
    );
  }

  private async handle(message: ClientMessage): Promise<Outcome<unknown>> {
    const { rooms } = this.options;
    if (message.type === 'heartbeat') return { code: 0, data: {} };
    if ((message.type === 'login' || message.type === 'resume') && !this.options.logins.take(this.options.remoteAddress)) {
      return { code: ErrorCode.RateLimited, message: 'too many logins from this address' };
    }
    if (message.type === 'login' || message.type === 'resume') {
      if (this.session?.active) return { code: ErrorCode.RoomCountExceeded, message: 'already in a room' };
      const outcome = message.type === 'login' ? rooms.login(this, this.nonce, message) : rooms.resume(this, this.nonce, message);
      if (outcome.code !== 0) return outcome;
      const { session, ...data } = outcome.data;
      this.session = session;
      return { code: 0, data };
    }
    const session = this.session;
    // A connection whose session resumed on another one speaks for it no more.
    if (!session?.active || session.link !== this) return { code: ErrorCode.NotLoggedIn, message: 'not logged in' };
    switch (message.type) {
      case 'logout':
        rooms.logout(session);
        this.session = null;
        return { code: 0, data: {} };
      case 'publish':
        return rooms.publish(session, message);
      case 'unpublish':
        return rooms.unpublish(session, message.streamID);
      case 'play':
        return rooms.play(session, message);
      case 'unplay':
        return rooms.unplay(session, message.streamID);
      case 'playVideo':
        return rooms.playVideo(session, message);
      case 'mutePlay':
        return rooms.mutePlay(session, message);
      case 'restartIce':
        return rooms.restartIce(session, message);
      case 'renewToken':
        return rooms.renewToken(session, message.token);
      case 'barrageMessage':
        return rooms.messaging.barrage(session.room, session, message.message);
      default:
        return session.once(message.clientSeq, () => this.reliable(session, message));
    }
  }

  /** Requests the client re-sends after a reconnect until answered: done once per clientSeq. */
  private reliable(session: Session, message: Extract<ClientMessage, { clientSeq: number }>): Outcome<unknown> {
    const { messaging } = this.options.rooms;
    switch (message.type) {
      case 'broadcastMessage':
        return messaging.broadcast(session.room, session, message.message);
      case 'customCommand':
        return messaging.customCommand(session.room, session, message.command, message.toUserIDs);
      case 'setRoomExtraInfo':
        return messaging.setRoomExtraInfo(session, message.key, message.value);
      case 'setStreamExtraInfo':
        return messaging.setStreamExtraInfo(session, message.streamID, message.extraInfo);
      case 'setStreamDevices':
        return messaging.setStreamDevices(session, message);
    }
  }

  private onClose(code: number): void {
    clearTimeout(this.silenceTimer);
    // Nothing to do if the session has moved on to another connection (resumed) or ended.
    if (!this.session?.active || this.session.link !== this) return;
    // A normal closure is the client leaving on purpose (e.g. logging out before its login
    // completed); anything else may be a network drop that the client recovers from.
    if (code === CloseCode.Normal) this.options.rooms.logout(this.session);
    else this.options.rooms.linkLost(this.session, this);
  }
}
