import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { WebSocketServer } from 'ws';
import { CloseCode, MAX_FRAME_BYTES } from '@parley/protocol';
import type { Logger } from 'pino';
import type { CdnRelays } from '../egress/cdnRelays.js';
import type { Mixing } from '../egress/mixing.js';
import type { RoomService } from '../rooms/roomService.js';
import { Connection } from './connection.js';
import { KeyedRateLimiter } from '../rateLimit.js';
import { WriteBatch } from './writeBatch.js';
import { RequestMemos } from './requestMemo.js';
import type { Limits } from '../config.js';
import type { TrustedProxies } from '../http/clientAddress.js';

export const SIGNALLING_PATH = '/ws';

/** Accepts signalling WebSockets on the HTTP server's upgrade path. */
export class SignallingServer {
  private readonly wss: WebSocketServer;
  private accepting = true;

  constructor(
    http: HttpServer | HttpsServer,
    options: {
      rooms: RoomService;
      /** The CDN relays that sessions add and remove. */
      cdn: CdnRelays;
      mixing: Mixing;
      heartbeatTimeoutMs: number;
      log: Logger;
      limits: Limits;
      /** Proxies whose X-Forwarded-For names the client (limits and logs then apply to it). */
      proxies: TrustedProxies;
      onErrorCode?: (code: number) => void;
    },
  ) {
    const { limits } = options;
    // `limits` is the server's, which a reload updates in place.
    const connections = new KeyedRateLimiter(() => ({ perSecond: limits.connectionsPerSecondPerIp, burst: limits.connectionBurstPerIp }));
    const framesByIp = new KeyedRateLimiter(() => ({ perSecond: limits.framesPerSecondPerIp, burst: limits.frameBurstPerIp }));
    const logins = new KeyedRateLimiter(() => ({ perSecond: limits.loginsPerSecondPerIp, burst: limits.loginBurstPerIp }));
    const writes = new WriteBatch();
    const memos = new RequestMemos(options.rooms.observer);
    this.wss = new WebSocketServer({
      server: http,
      path: SIGNALLING_PATH,
      // Frames over the limit close the connection with 1009 (message too big) before any parsing.
      maxPayload: MAX_FRAME_BYTES,
      // Refused before the upgrade, so a reconnecting flooder costs no more than an HTTP reply.
      verifyClient: ({ req }, accept) => {
        if (!this.accepting) accept(false, 503, 'Shutting Down');
        else if (connections.take(options.proxies.clientAddress(req))) accept(true);
        else accept(false, 429, 'Too Many Requests', { 'Retry-After': '1' });
      },
    });
    // The handshake's answer waits for the hello the connection sends next: both leave in one write.
    this.wss.on('headers', (_headers, req) => writes.hold(req.socket));
    // The HTTP server's errors (a port in use) reach whoever starts it; ws repeats them here, where they would crash the process.
    this.wss.on('error', () => undefined);
    this.wss.on('connection', (ws, req) => {
      const { socket } = req;
      new Connection(ws, { ...options, logins, framesByIp, socket, writes, memos, remoteAddress: options.proxies.clientAddress(req) });
    });
  }

  /** From now on new connections are refused (503); those open carry on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** A draining node of a cluster: every client is told to resume its session on another node. */
  moveClients(): void {
    for (const ws of this.wss.clients) ws.close(CloseCode.ServiceRestart, 'resume on another node');
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.close(CloseCode.GoingAway, 'server shutting down');
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}
