/**
 * The SDK end of the signalling WebSocket: waits for the server's hello, matches replies to
 * requests by id, validates every frame it receives, and heartbeats at the interval the server
 * asks for.
 */
import {
  CloseCode,
  ErrorCode,
  PROTOCOL_VERSION,
  parseServerMessage,
  replyDataSchemas,
  type ClientMessage,
  type ClientMessageType,
  type ReplyData,
  type ServerMessage,
  type ServerMessageOf,
} from '@parley/protocol';
import type { Platform, SocketLike } from './platform.js';

type Push = Exclude<ServerMessage, { type: 'hello' | 'reply' | 'error' }>;
export type RequestBody<T extends ClientMessageType> = Omit<Extract<ClientMessage, { type: T }>, 'type' | 'id'>;
export type Reply<T extends ClientMessageType> = { code: 0; data: ReplyData<T> } | { code: number; message: string };

interface Pending {
  type: ClientMessageType;
  resolve(reply: Reply<ClientMessageType>): void;
  timer: ReturnType<typeof setTimeout>;
}

export interface SignallingOptions {
  connectTimeoutMs: number;
  requestTimeoutMs: number;
}

export class SignallingClient {
  private socket: SocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private closedByUs = false;
  /** Fails a pending connect() when close() is called before the hello. */
  private abortConnect: (() => void) | undefined;
  /** Server pushes (room updates, kick-outs, stopped plays). */
  onPush: (message: Push) => void = () => undefined;
  /** The connection ended without close() being called. */
  onLost: () => void = () => undefined;

  constructor(
    private readonly platform: Platform,
    private readonly options: SignallingOptions,
  ) {}

  /** Opens the socket and resolves with the server's hello; rejects with ConnectFailed. */
  connect(url: string): Promise<ServerMessageOf<'hello'>> {
    return new Promise((resolve, reject) => {
      let socket: SocketLike;
      try {
        socket = this.platform.createSocket(url);
      } catch {
        reject(ErrorCode.ConnectFailed);
        return;
      }
      this.socket = socket;
      const fail = (): void => {
        clearTimeout(timer);
        this.abortConnect = undefined;
        reject(ErrorCode.ConnectFailed);
      };
      const timer = setTimeout(() => {
        socket.close();
        this.teardown();
        fail();
      }, this.options.connectTimeoutMs);
      this.abortConnect = fail;
      let hello: ServerMessageOf<'hello'> | undefined;
      socket.onmessage = (ev) => {
        const parsed = typeof ev.data === 'string' ? parseServerMessage(ev.data) : undefined;
        if (!parsed?.ok) return; // a server we cannot understand is ignored, not trusted
        const message = parsed.value;
        if (message.type === 'hello' && !hello) {
          if (message.protocolVersion !== PROTOCOL_VERSION) {
            socket.close();
            return fail();
          }
          hello = message;
          clearTimeout(timer);
          this.abortConnect = undefined;
          this.startHeartbeat(message.heartbeatIntervalMs);
          resolve(message);
        } else if (hello) {
          this.onMessage(message);
        }
      };
      socket.onclose = () => {
        const wasUp = hello !== undefined;
        this.teardown();
        if (!wasUp) fail();
        else if (!this.closedByUs) this.onLost();
      };
      socket.onerror = () => undefined; // onclose follows
    });
  }

  request<T extends ClientMessageType>(type: T, body: RequestBody<T>, timeoutMs = this.options.requestTimeoutMs): Promise<Reply<T>> {
    return new Promise((resolve) => {
      const socket = this.socket;
      if (!socket || socket.readyState !== 1) {
        resolve({ code: ErrorCode.Disconnected, message: 'not connected' });
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ code: type === 'login' ? ErrorCode.LoginTimeout : ErrorCode.Disconnected, message: 'request timed out' });
      }, timeoutMs);
      this.pending.set(id, { type, resolve: resolve as Pending['resolve'], timer });
      socket.send(JSON.stringify({ ...body, type, id }));
    });
  }

  close(): void {
    this.closedByUs = true;
    this.socket?.close(CloseCode.Normal, 'bye');
    this.teardown();
    this.abortConnect?.();
  }

  private onMessage(message: ServerMessage): void {
    if (message.type === 'reply') {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.code !== 0) {
        pending.resolve({ code: message.code, message: message.message ?? '' });
        return;
      }
      const data = replyDataSchemas[pending.type].safeParse(message.data ?? {});
      pending.resolve(data.success ? { code: 0, data: data.data } : { code: ErrorCode.MalformedMessage, message: 'malformed reply' });
    } else if (message.type !== 'hello' && message.type !== 'error') {
      this.onPush(message);
    }
  }

  /**
   * Heartbeats at the server's interval. A heartbeat unanswered within two intervals means the
   * connection is dead even if TCP has not noticed (a server gone silent, a blackholed route).
   */
  private startHeartbeat(intervalMs: number): void {
    this.heartbeat = setInterval(() => {
      void this.request('heartbeat', {}, 2 * intervalMs).then((reply) => {
        if (reply.code !== 0 && this.socket && !this.closedByUs) this.drop();
      });
    }, intervalMs);
  }

  /** Gives up on a connection that is dead but not closed, and reports it lost. */
  private drop(): void {
    this.socket?.close(CloseCode.HeartbeatTimeout, 'heartbeat timeout');
    this.teardown();
    this.onLost();
  }

  private teardown(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onmessage = socket.onclose = null;
      // Closing a socket that is still connecting reports an error later; it must have a listener.
      socket.onerror = () => undefined;
    }
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.resolve({ code: ErrorCode.Disconnected, message: 'connection closed' });
      this.pending.delete(id);
    }
  }
}
