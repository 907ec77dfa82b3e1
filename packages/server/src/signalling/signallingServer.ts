import type { Server as HttpServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { MAX_FRAME_BYTES } from '@parley/protocol';
import type { Logger } from 'pino';
import type { RoomService } from '../rooms/roomService.js';
import { Connection } from './connection.js';
import { KeyedRateLimiter } from './rateLimit.js';
import type { Limits } from '../config.js';

export const SIGNALLING_PATH = '/ws';

/** Accepts signalling WebSockets on the HTTP server's upgrade path. */
export class SignallingServer {
  private readonly wss: WebSocketServer;

  constructor(http: HttpServer, options: { rooms: RoomService; heartbeatTimeoutMs: number; log: Logger; limits: Limits }) {
    // Frames over the limit close the connection with 1009 (message too big) before any parsing.
    this.wss = new WebSocketServer({ server: http, path: SIGNALLING_PATH, maxPayload: MAX_FRAME_BYTES });
    const logins = new KeyedRateLimiter(options.limits.loginsPerSecondPerIp, options.limits.loginBurstPerIp);
    this.wss.on('connection', (ws, req) => new Connection(ws, { ...options, logins, remoteAddress: req.socket.remoteAddress ?? '' }));
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.close(1001, 'server shutting down');
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}
