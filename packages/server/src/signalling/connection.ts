/**
 * One client's WebSocket: validates every frame at the edge, answers each request with a reply
 * carrying its id, and keeps the client's session bound to this link. Bad frames get an error
 * code and change nothing else.
 */
import type { Socket } from 'node:net';
import type { WebSocket, RawData } from 'ws';
import { CloseCode, ErrorCode, PROTOCOL_VERSION, parseClientMessage, type ClientMessage, type ServerMessage } from '@parley/protocol';
import type { Logger } from 'pino';
import type { RoomService, SessionRef } from '../rooms/roomService.js';
import type { Outcome } from '../outcome.js';
import type { ClientLink } from '../rooms/liveHandles.js';
import type { Limits } from '../config.js';
import { TokenBucket, type KeyedRateLimiter } from '../rateLimit.js';
import { randomHex } from '../random.js';
import type { WriteBatch } from './writeBatch.js';
import type { RequestMemos } from './requestMemo.js';
import { sessionRequests, type SessionRequest, type SessionRequestType } from './sessionRequests.js';
import type { CdnRelays } from '../egress/cdnRelays.js';
import type { Mixing } from '../egress/mixing.js';

/** How long a connection the server closes may take over the close handshake before it is cut. */
const CLOSE_GRACE_MS = 5000;

export interface ConnectionOptions {
  rooms: RoomService;
  cdn: CdnRelays;
  mixing: Mixing;
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
  memos: RequestMemos;
  /** Told of every non-zero code sent in a reply or an error (for metrics). */
  onErrorCode?: (code: number) => void;
}

export class Connection implements ClientLink {
  private readonly nonce = randomHex(16);
  private session: SessionRef | null = null;
  private readonly silenceTimer: NodeJS.Timeout;
  private readonly frames: TokenBucket;
  private rateLimited = 0;
  /** What is sent while a login or resume is under way waits for its reply (request `id`), which the client must see first. */
  private held: { id: number; messages: Array<[ServerMessage, boolean]> } | undefined;
  /** The login or resume being handled, with the requests that came after it waiting. */
  private loginUnderWay: Promise<void> | undefined;
  /** Set once the WebSocket closed. */
  private closeCode: number | undefined;
  lastHeardMs = Date.now();

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
    if (this.held && message.type !== 'reply') {
      this.held.messages.push([message, droppable]);
      return;
    }
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
    this.lastHeardMs = Date.now();
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
    const run = (): Promise<void> =>
      this.handle(message).then(
        (outcome) => this.reply(message.id, outcome),
        (err: unknown) => {
          this.options.log.error({ err, type: message.type }, 'request failed');
          this.reply(message.id, { code: ErrorCode.RoomInternalError, message: 'internal error' });
        },
      );
    // What comes after a login or resume is for the session it makes: it waits for it, in order.
    const started = this.loginUnderWay ? this.loginUnderWay.then(run) : run();
    if (message.type === 'login' || message.type === 'resume') {
      const underWay = started.finally(() => {
        if (this.loginUnderWay === underWay) this.loginUnderWay = undefined;
      });
      this.loginUnderWay = underWay;
    }
  }

  private reply(id: number, outcome: Outcome<unknown>): void {
    this.send(
      outcome.code === 0
        ? { type: 'reply', id, code: 0, data: outcome.data }
        : { type: 'reply', id, code: outcome.code, message: outcome.message },
    );
    if (this.held?.id !== id) return;
    const { messages } = this.held;
    this.held = undefined;
    for (const [message, droppable] of messages) this.send(message, droppable);
  }

  private async handle(message: ClientMessage): Promise<Outcome<unknown>> {
    const { rooms } = this.options;
    if (message.type === 'heartbeat') return { code: 0, data: {} };
    if (message.type === 'login' || message.type === 'resume') {
      if (!this.options.logins.take(this.options.remoteAddress)) {
        return { code: ErrorCode.RateLimited, message: 'too many logins from this address' };
      }
      if (this.session && rooms.speaksFor(this.session, this)) {
        return { code: ErrorCode.RoomCountExceeded, message: 'already in a room' };
      }
      this.held = { id: message.id, messages: [] };
      let outcome: Outcome<unknown>;
      let sessionID: string | undefined;
      if (message.type === 'login') {
        const login = await rooms.login(this, this.nonce, message);
        if (login.code === 0) sessionID = login.data.sessionID;
        outcome = login;
      } else {
        outcome = await rooms.resume(this, this.nonce, message);
        if (outcome.code === 0) sessionID = message.sessionID;
      }
      if (sessionID !== undefined) {
        this.session = { appID: message.appID, sessionID };
        // Closed while it was under way: the session is left as a close would have left it.
        if (this.closeCode !== undefined) this.sessionClosed(this.closeCode);
      }
      return outcome;
    }
    const session = this.session;
    // A connection whose session resumed on another one speaks for it no more.
    if (!session || !rooms.speaksFor(session, this)) return { code: ErrorCode.NotLoggedIn, message: 'not logged in' };
    const request = sessionRequests[message.type] as SessionRequest<SessionRequestType>;
    const { cdn, mixing } = this.options;
    const context = { rooms, cdn, mixing, session, loggedOut: () => (this.session = null) };
    const run = (): Promise<Outcome<unknown>> =>
      (request.handle as (c: typeof context, m: ClientMessage) => Promise<Outcome<unknown>>)(context, message);
    if (!request.reliable || !('clientSeq' in message)) return run();
    const { clientSeq } = message;
    return this.options.memos.of(session.sessionID).once(clientSeq, () => rooms.once(session, clientSeq, run));
  }

  private onClose(code: number): void {
    clearTimeout(this.silenceTimer);
    this.closeCode = code;
    this.sessionClosed(code);
  }

  private sessionClosed(code: number): void {
    const { rooms } = this.options;
    // Nothing to do if the session has moved on to another connection (resumed) or ended.
    if (!this.session || !rooms.speaksFor(this.session, this)) return;
    // A normal closure is the client leaving on purpose (e.g. logging out before its login
    // completed); anything else may be a network drop that the client recovers from.
    if (code === CloseCode.Normal) void rooms.logout(this.session);
    else rooms.linkLost(this.session, this);
  }
}
