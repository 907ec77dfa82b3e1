/** A hand-driven signalling connection that can send anything, for tests of the server's edge. */
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { appSignProofMessage, hexKeyBytes, resumeProofMessage } from '@parley/protocol';
import type { AppConfig } from '@parley/server';
import { sleep } from './helpers.js';

export type Frame = Record<string, unknown>;

export class RawClient {
  readonly messages: Frame[] = [];
  closeCode: number | undefined;
  private nextId = 1000;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(data.toString()) as Frame));
    ws.on('close', (code) => (this.closeCode = code));
  }

  /** Opens a connection and waits for the server's hello. `localAddress` picks the source IP (127.x.y.z). */
  static async open(url: string, localAddress?: string): Promise<RawClient> {
    const ws = new WebSocket(url, localAddress ? { localAddress } : {});
    const client = new RawClient(ws);
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    await client.next((m) => m.type === 'hello');
    return client;
  }

  get nonce(): string {
    return this.messages.find((m) => m.type === 'hello')!.nonce as string;
  }

  async next(match: (m: Frame) => boolean, from = 0, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(this.messages.slice(-20))}`);
      await sleep(10);
    }
  }

  async closed(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined && Date.now() < deadline) await sleep(10);
    if (this.closeCode === undefined) throw new Error('the connection was not closed');
    return this.closeCode;
  }

  /** Sends a frame and returns the server's answer to it (the reply with `id`, or else the next error). */
  async exchange(frame: string | Buffer, id?: number): Promise<Frame> {
    const from = this.messages.length;
    this.ws.send(frame);
    return this.next((m) => (id === undefined ? m.type === 'error' : m.type === 'reply' && m.id === id), from);
  }

  /** Sends a request of `type` with a fresh id and returns its reply. */
  request(type: string, body: Frame = {}): Promise<Frame> {
    const id = this.nextId++;
    return this.exchange(JSON.stringify({ type, id, ...body }), id);
  }

  /** The login request for `userID` in `roomID`, proven with the app's AppSign. */
  loginFrame(app: AppConfig, roomID: string, user: { userID: string; userName?: string }, isUserStatusNotify = false): Frame {
    const proof = createHmac('sha256', hexKeyBytes(app.appSign))
      .update(appSignProofMessage(this.nonce, app.appID, roomID, user.userID))
      .digest('hex');
    return {
      appID: app.appID,
      roomID,
      user: { userID: user.userID, userName: user.userName ?? user.userID },
      config: { isUserStatusNotify, maxMemberCount: 0 },
      auth: { appSignProof: proof },
    };
  }

  login(app: AppConfig, roomID: string, user: { userID: string; userName?: string }, isUserStatusNotify = false): Promise<Frame> {
    return this.request('login', this.loginFrame(app, roomID, user, isUserStatusNotify));
  }

  resume(appID: number, session: { sessionID: string; resumeToken: string }, lastSeq: number): Promise<Frame> {
    const proof = createHmac('sha256', hexKeyBytes(session.resumeToken))
      .update(resumeProofMessage(this.nonce, session.sessionID))
      .digest('hex');
    return this.request('resume', { appID, sessionID: session.sessionID, proof, lastSeq });
  }
}
