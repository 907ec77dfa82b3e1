/**
 * What a business server does beside Parley, in one small Node.js server:
 * - `GET /token?userID=…&roomID=…` mints a token04 for the app's clients (the demo page's
 *   `tokenUrl`), after whatever checks the business wants (here: none but the IDs' shapes);
 * - `POST /parley/callback` receives Parley's webhooks and verifies their signatures;
 * - `GET /rooms/<roomID>/users` asks Parley's server API who is in a room (a signed call);
 * - `POST /rooms/<roomID>/recording` starts recording the room (StartRecord), `POST
 *   /recordings/<taskID>/stop` stops it, `GET /recordings/<taskID>` describes it (its files);
 * - `POST /rooms/<roomID>/mix` with `{"streamIDs": […]}` mixes those streams side by side into the
 *   room's stream `mix_<roomID>` (StartMix; again to change them), `POST /rooms/<roomID>/mix/stop` ends it.
 * The app's serverSecret and callbackSecret stay here; clients never see them.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { apiSignature, generateToken04, verifyWebhook, WEBHOOK_BODY_SIGNATURE_HEADER, type WebhookEvent } from '@parley/server';

export interface BusinessServerOptions {
  appID: number;
  serverSecret: string;
  callbackSecret: string;
  /** Parley's HTTP URL, for the server API (http://127.0.0.1:7800). */
  parleyHttpUrl: string;
  /** How long minted tokens are valid (default an hour). */
  tokenSeconds?: number;
  /** Origins whose pages may fetch tokens (CORS); the demo page is served by Parley, on another origin. */
  allowedOrigins?: string[];
}

export class BusinessServer {
  /** The webhooks received and verified, oldest first. */
  readonly events: WebhookEvent[] = [];
  /** Webhooks refused, and why. */
  readonly refused: string[] = [];
  private readonly http: Server;

  constructor(private readonly options: BusinessServerOptions) {
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
    });
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve) => this.http.listen(port, host, resolve));
    const address = this.http.address() as AddressInfo;
    return `http://${host}:${address.port}`;
  }

  close(): Promise<void> {
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://business');
    const origin = req.headers.origin;
    if (origin && this.options.allowedOrigins?.includes(origin)) res.setHeader('access-control-allow-origin', origin);
    if (req.method === 'GET' && url.pathname === '/token') return this.token(url, res);
    if (req.method === 'POST' && url.pathname === '/parley/callback') return this.callback(req, res);
    const [, collection, id, action, more] = url.pathname.split('/').map(decodeURIComponent);
    const route = `${req.method} /${collection}/:id/${action ?? ''}${more ? `/${more}` : ''}`;
    switch (route) {
      case 'GET /rooms/:id/users':
        return send(res, 200, await this.callParley('DescribeUsers', { RoomId: id! }));
      case 'POST /rooms/:id/recording':
        return send(res, 200, await this.callParley('StartRecord', { RoomId: id!, RecordInputParams: { RecordMode: 1 } }));
      case 'POST /recordings/:id/stop':
        return send(res, 200, await this.callParley('StopRecord', { TaskId: id! }));
      case 'GET /recordings/:id/':
        return send(res, 200, await this.callParley('DescribeRecordStatus', { TaskId: id! }));
      case 'POST /rooms/:id/mix':
        return send(res, 200, await this.mix(id!, (await readBody(req)).toString()));
      case 'POST /rooms/:id/mix/stop':
        return send(res, 200, await this.callParley('StopMix', { TaskId: `mix_${id!}` }));
    }
    send(res, 404, { error: 'not found' });
  }

  private token(url: URL, res: ServerResponse): void {
    const userID = url.searchParams.get('userID') ?? '';
    const roomID = url.searchParams.get('roomID') ?? '';
    if (!/^[\w.-]{1,64}$/.test(userID) || !/^[\w.-]{1,128}$/.test(roomID)) return send(res, 400, { error: 'userID and roomID are needed' });
    const { appID, serverSecret, tokenSeconds = 3600 } = this.options;
    // A strict token: this user may log in to `roomID` and publish there (privileges 1 and 2).
    const payload = { room_id: roomID, privilege: { 1: 1, 2: 1 }, stream_id_list: null };
    const token = generateToken04({ appID, userID, serverSecret, effectiveTimeInSeconds: tokenSeconds, payload });
    send(res, 200, { appID, token });
  }

  private async callback(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const header = req.headers[WEBHOOK_BODY_SIGNATURE_HEADER];
    const verified = verifyWebhook(body, this.options.callbackSecret, { bodySignature: typeof header === 'string' ? header : undefined });
    if (!verified.ok) {
      this.refused.push(verified.reason);
      return send(res, 401, { error: verified.reason });
    }
    this.events.push(verified.event);
    send(res, 200, {});
  }

  /** The streams side by side, 320×180 each, as the room's stream `mix_<roomID>`. */
  private mix(roomID: string, body: string): Promise<unknown> {
    let streamIDs: unknown;
    try {
      streamIDs = (JSON.parse(body) as { streamIDs?: unknown }).streamIDs;
    } catch {
      return Promise.resolve({ error: 'the body must be JSON' });
    }
    if (!Array.isArray(streamIDs) || streamIDs.length === 0 || streamIDs.length > 4) return Promise.resolve({ error: '1 to 4 streamIDs' });
    return this.callParley('StartMix', {
      TaskId: `mix_${roomID}`,
      MixInput: streamIDs.map((StreamId: unknown, i) => ({
        StreamId,
        RectInfo: { Top: 0, Left: 320 * i, Bottom: 180, Right: 320 * (i + 1) },
      })),
      MixOutput: [{ StreamId: `mix_${roomID}`, Width: 320 * streamIDs.length, Height: 180, Fps: 15 }],
    });
  }

  /** A server API call, signed with the app's serverSecret (SignatureVersion 2.0): a GET, or a POST of JSON when a parameter is an object. */
  async callParley(action: string, params: Record<string, unknown>): Promise<unknown> {
    const { appID, serverSecret, parleyHttpUrl } = this.options;
    const nonce = randomBytes(8).toString('hex');
    const timestamp = Math.floor(Date.now() / 1000);
    const query = new URLSearchParams({
      Action: action,
      AppId: String(appID),
      SignatureNonce: nonce,
      Timestamp: String(timestamp),
      Signature: apiSignature(appID, nonce, serverSecret, timestamp),
      SignatureVersion: '2.0',
    });
    if (Object.values(params).every((v) => typeof v === 'string')) {
      for (const [key, value] of Object.entries(params)) query.set(key, value as string);
      return (await fetch(`${parleyHttpUrl}/api?${query}`)).json();
    }
    const body = JSON.stringify(params);
    return (await fetch(`${parleyHttpUrl}/api?${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json();
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
