/**
 * WHIP (RFC 9725) and WHEP: publishing into a room, and playing a stream, over plain HTTP, for
 * clients without the SDK (OBS, GStreamer, players). Each resource is a session like any other,
 * logged in with the request's Bearer token04, whose user and privileges apply: a WHIP publisher is
 * a user of the room with one stream, a WHEP player a user of the stream's room playing it. The
 * session lasts as long as its resource: a DELETE, its media closing, or its session or stream
 * ending (kicked, forbidden, the stream gone) ends both.
 *
 *   POST   /whip/<appID>/<roomID>/<streamID>              201, the answer; Location is the resource
 *   POST   /whep/<appID>/<streamID>
 *   PATCH  <resource>   trickle ICE (If-Match: its ETag) or an ICE restart (new credentials; If-Match: *)
 *   DELETE <resource>
 *   OPTIONS on either: CORS and Accept-Post / Accept-Patch
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, MAX_SDP_BYTES, type IceServer, type MediaRole, type ServerMessage } from '@parley/protocol';
import type { Logger } from 'pino';
import type { AppRegistry } from '../apps.js';
import { decodeToken04, verifyToken04 } from '../auth/token04.js';
import type { Limits } from '../config.js';
import type { TrustedProxies } from '../http/clientAddress.js';
import type { HttpRoutes } from '../http/routes.js';
import { fail, type Failure, type FailureCode } from '../outcome.js';
import { KeyedRateLimiter } from '../rateLimit.js';
import type { ClientLink } from '../rooms/liveHandles.js';
import type { RoomService, SessionRef } from '../rooms/roomService.js';
import { answerFragmentOf, iceCredentialsOf, parseIceFragment, restartOfferOf } from './iceFragment.js';
import { httpStatusOf } from './httpStatus.js';

const SDP = 'application/sdp';
const ICE_FRAGMENT = 'application/trickle-ice-sdpfrag';

type Kind = 'whip' | 'whep';

/** What a resource of each kind is, and the path segments of its endpoint. */
const KINDS: Record<Kind, { role: MediaRole; endpointSegments: number; interrupted: FailureCode }> = {
  whip: { role: 'publish', endpointSegments: 3, interrupted: ErrorCode.PublishInterrupted },
  whep: { role: 'play', endpointSegments: 2, interrupted: ErrorCode.PlayInterrupted },
};

/** The room's messages that end a resource's session: it was kicked out, or its stream ended. */
const ENDING: Record<Kind, ReadonlySet<ServerMessage['type']>> = {
  whip: new Set(['kickedOut', 'publishStopped']),
  whep: new Set(['kickedOut', 'playStopped']),
};

interface Resource {
  readonly id: string;
  readonly kind: Kind;
  /** Its PATCH and DELETE must carry a valid token of this user (the one it was made with, or a newer one). */
  readonly userID: string;
  readonly session: SessionRef;
  readonly streamID: string;
  /** Its endpoint's path segments (its own path adds its ID). */
  readonly endpoint: readonly string[];
  /** Names its ICE session: a new one after each restart. */
  etag: string;
  /** The client's current ICE credentials: a fragment with others is a restart. */
  remoteIce: { ufrag: string; pwd: string };
}

export interface WhipOptions {
  rooms: RoomService;
  apps: AppRegistry;
  log: Logger;
  /** The server's limits, read at each request (a reload changes them in place). */
  limits: Limits;
  proxies: TrustedProxies;
  /** TURN servers with credentials for a user (none without TURN); the login reply has the same. */
  iceServers(userID: string): IceServer[] | undefined;
  /** False while the server drains or is not ready: new resources are refused (503). */
  accepting(): boolean;
}

const newEtag = (): string => `"${randomBytes(8).toString('hex')}"`;

/** CORS for browsers on other origins (RFC 9725 §4.1), on every response. */
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Location, ETag, Link, Accept-Patch, Accept-Post',
};

export class WhipEndpoints {
  private readonly resources = new Map<string, Resource>();
  private readonly logins: KeyedRateLimiter;

  constructor(private readonly options: WhipOptions) {
    const { limits } = options;
    this.logins = new KeyedRateLimiter(() => ({ perSecond: limits.loginsPerSecondPerIp, burst: limits.loginBurstPerIp }));
  }

  addRoutes(routes: HttpRoutes): void {
    routes.addPrefix('/whip/', (req, res, url) => this.handle('whip', req, res, url));
    routes.addPrefix('/whep/', (req, res, url) => this.handle('whep', req, res, url));
  }

  private async handle(kind: Kind, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let segments: string[];
    try {
      segments = url.pathname.split('/').slice(2).map(decodeURIComponent);
    } catch {
      return reply(res, 400, fail(ErrorCode.MalformedMessage, 'the path is not valid percent-encoding'));
    }
    const { endpointSegments } = KINDS[kind];
    if (segments.length === endpointSegments) {
      const allow = 'OPTIONS, POST';
      if (req.method === 'OPTIONS') return preflight(res, allow, { 'accept-post': SDP, ...this.iceServersFor(segments[0]!, req) });
      if (req.method !== 'POST') return reply(res, 405, fail(ErrorCode.UnsupportedRequest, `${req.method} is not allowed here`), { allow });
      return this.create(kind, segments, req, res);
    }
    const resource = segments.length === endpointSegments + 1 ? this.resources.get(segments.at(-1)!) : undefined;
    if (!resource || resource.kind !== kind || !sameSegments(segments.slice(0, -1), resource.endpoint)) {
      return reply(res, 404, fail(ErrorCode.SessionNotFound, 'no such resource'));
    }
    const allow = 'OPTIONS, PATCH, DELETE';
    if (req.method === 'OPTIONS') return preflight(res, allow, { 'accept-patch': ICE_FRAGMENT });
    if (req.method !== 'PATCH' && req.method !== 'DELETE') {
      return reply(res, 405, fail(ErrorCode.UnsupportedRequest, `${req.method} is not allowed here`), { allow });
    }
    const denied = this.tokenDenied(bearerOf(req), resource);
    if (denied) return reply(res, 401, denied, BEARER);
    if (req.method === 'DELETE') {
      this.end(resource.id, 'deleted');
      return reply(res, 200);
    }
    return this.patch(resource, req, res);
  }

  private async create(kind: Kind, segments: string[], req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { rooms, apps, log, proxies } = this.options;
    if (!this.options.accepting()) return reply(res, 503, fail(ErrorCode.ConnectFailed, 'the server is not taking new sessions'));
    if (!hasContentType(req, SDP)) return reply(res, 415, fail(ErrorCode.InvalidSdp, `the offer must be ${SDP}`));
    const token = bearerOf(req);
    if (!token) return reply(res, 401, fail(ErrorCode.NoTokenNorAppSign, 'Authorization: Bearer <token04> is required'), BEARER);
    const address = proxies.clientAddress(req);
    if (!this.logins.take(address)) return reply(res, 429, fail(ErrorCode.RateLimited, 'too many logins from this address'), RETRY);
    const offer = await readBody(req, MAX_SDP_BYTES);
    if (offer === undefined) return reply(res, 413, fail(ErrorCode.InvalidSdp, `the offer is over ${MAX_SDP_BYTES} bytes`), CLOSE);
    if (!offer.startsWith('v=0')) return reply(res, 400, fail(ErrorCode.InvalidSdp, 'the body is not an SDP offer'));

    const [appText = '', ...rest] = segments;
    const appID = /^\d{1,10}$/.test(appText) ? Number(appText) : NaN;
    const app = apps.get(appID);
    if (!app) return reply(res, 404, fail(ErrorCode.AppIDUnknown, `unknown appID ${appText}`));
    const decoded = decodeToken04(token, app.serverSecret);
    if (!decoded.ok) return reply(res, 401, fail(decoded.code as FailureCode, decoded.message), BEARER);
    const userID = decoded.claims.user_id;
    const streamID = rest.at(-1)!;
    const roomID = kind === 'whip' ? rest[0]! : await this.roomToPlayIn(appID, streamID, decoded.claims.payload);
    if (roomID === undefined) return reply(res, 404, fail(ErrorCode.StreamNotFound, `stream ${streamID} does not exist`));

    const id = randomUUID();
    const link = new ResourceLink(address, kind, () => this.end(id, 'its session or media ended'));
    const login = await rooms.login(link, '', {
      type: 'login',
      id: 0,
      appID,
      roomID,
      user: { userID, userName: userID },
      config: { isUserStatusNotify: false, maxMemberCount: 0 },
      auth: { token },
    });
    if (login.code !== 0) return reply(res, httpStatusOf(login.code), login);
    const session = { appID, sessionID: login.data.sessionID };
    const negotiated =
      kind === 'whip'
        ? await rooms.publish(session, { type: 'publish', id: 0, streamID, sdp: offer, extraInfo: '' })
        : await rooms.play(session, { type: 'play', id: 0, streamID, sdp: offer, attempt: 0 });
    if (negotiated.code !== 0) {
      await rooms.logout(session);
      return reply(res, httpStatusOf(negotiated.code), negotiated);
    }
    const resource: Resource = {
      id,
      kind,
      userID,
      session,
      streamID,
      endpoint: segments,
      etag: newEtag(),
      remoteIce: iceCredentialsOf(offer),
    };
    this.resources.set(id, resource);
    if (link.ended) {
      this.end(id, 'its session ended while it was made');
      return reply(res, 503, fail(KINDS[kind].interrupted, 'the session ended'));
    }
    log.info({ appID, roomID, userID, streamID, kind, address }, 'http media resource created');
    const location = `/${kind}/${[...segments, id].map(encodeURIComponent).join('/')}`;
    res.writeHead(201, {
      ...CORS,
      'content-type': SDP,
      location,
      etag: resource.etag,
      'accept-patch': ICE_FRAGMENT,
      ...(login.data.iceServers && { link: iceServerLinks(login.data.iceServers) }),
    });
    res.end(negotiated.data.sdp);
  }

  /**
   * The ICE servers of an OPTIONS request's user, as Link headers: clients of earlier WHIP drafts
   * (GStreamer's among them) ask there rather than read the 201's. Only with a valid token (a
   * browser's CORS preflight carries none), as the TURN credentials are the user's.
   */
  private iceServersFor(appText: string, req: IncomingMessage): { link?: string[] } {
    const app = this.options.apps.get(Number(appText));
    const token = bearerOf(req);
    if (!app || !token) return {};
    const decoded = decodeToken04(token, app.serverSecret);
    if (!decoded.ok || !verifyToken04(token, app.serverSecret, { appID: app.appID, userID: decoded.claims.user_id }).ok) return {};
    const servers = this.options.iceServers(decoded.claims.user_id);
    return servers ? { link: iceServerLinks(servers) } : {};
  }

  /** Why `token` does not speak for the resource's user, if it does not: a token of its app and user, not expired. */
  private tokenDenied(token: string | undefined, resource: Resource): Failure | undefined {
    const app = this.options.apps.get(resource.session.appID);
    if (!token || !app) return fail(ErrorCode.NoTokenNorAppSign, 'Authorization: Bearer <token04> is required');
    const verified = verifyToken04(token, app.serverSecret, { appID: app.appID, userID: resource.userID });
    return verified.ok ? undefined : fail(verified.code as FailureCode, verified.message);
  }

  /** A WHEP player's room: the one its token is for, else the stream's. */
  private async roomToPlayIn(appID: number, streamID: string, payload: string): Promise<string | undefined> {
    try {
      const roomID = (JSON.parse(payload) as { room_id?: unknown } | null)?.room_id;
      if (typeof roomID === 'string' && roomID !== '') return roomID;
    } catch {
      // No strict payload (or one the login refuses with its own code): the stream's room.
    }
    return this.options.rooms.roomOfStream(appID, streamID);
  }

  private async patch(resource: Resource, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { rooms } = this.options;
    if (!hasContentType(req, ICE_FRAGMENT)) return reply(res, 415, fail(ErrorCode.InvalidSdp, `a PATCH must be ${ICE_FRAGMENT}`));
    const ifMatch = req.headers['if-match'];
    if (ifMatch === undefined) return reply(res, 428, fail(ErrorCode.InvalidParameter, 'If-Match with the resource ETag is required'));
    if (ifMatch !== '*' && ifMatch !== resource.etag) {
      return reply(res, 412, fail(ErrorCode.InvalidParameter, 'If-Match names another ICE session'));
    }
    const body = await readBody(req, MAX_SDP_BYTES);
    if (body === undefined) return reply(res, 413, fail(ErrorCode.InvalidSdp, `the fragment is over ${MAX_SDP_BYTES} bytes`), CLOSE);
    const parsed = parseIceFragment(body);
    if (parsed.code !== 0) return reply(res, 400, parsed);
    const fragment = parsed.data;
    const { role } = KINDS[resource.kind];
    const { ufrag, pwd } = resource.remoteIce;
    if (fragment.ufrag === ufrag && fragment.pwd === pwd) {
      const added = await rooms.addRemoteCandidates(resource.session, role, resource.streamID, fragment.candidates);
      return added.code === 0 ? reply(res, 204) : reply(res, httpStatusOf(added.code), added);
    }
    const restarted = await rooms.restartIce(resource.session, {
      type: 'restartIce',
      id: 0,
      role,
      streamID: resource.streamID,
      sdp: restartOfferOf(fragment),
    });
    if (restarted.code !== 0) return reply(res, httpStatusOf(restarted.code), restarted);
    resource.remoteIce = { ufrag: fragment.ufrag, pwd: fragment.pwd };
    resource.etag = newEtag();
    res.writeHead(200, { ...CORS, 'content-type': ICE_FRAGMENT, etag: resource.etag });
    res.end(answerFragmentOf(restarted.data.sdp));
  }

  /** Ends a resource and its session (once). */
  private end(id: string, why: string): void {
    const resource = this.resources.get(id);
    if (!resource) return;
    this.resources.delete(id);
    this.options.log.info(
      { appID: resource.session.appID, streamID: resource.streamID, kind: resource.kind, why },
      'http media resource ended',
    );
    void this.options.rooms.logout(resource.session);
  }
}

/**
 * A resource's session's link: it is never lost (the session lives as long as the resource), it
 * has nobody to tell the room's events, and the events that end the session end the resource.
 */
class ResourceLink implements ClientLink {
  readonly lastHeardMs = Date.now();
  ended = false;

  constructor(
    readonly remoteAddress: string,
    private readonly kind: Kind,
    private readonly onEnd: () => void,
  ) {}

  send(message: ServerMessage): void {
    if (ENDING[this.kind].has(message.type)) this.close();
  }

  mediaClosed(): void {
    this.close();
  }

  close(): void {
    this.ended = true;
    this.onEnd();
  }
}

const BEARER = { 'www-authenticate': 'Bearer' };
const RETRY = { 'retry-after': '1' };
/** The rest of an over-long body is not read: the connection cannot carry another request. */
const CLOSE = { connection: 'close' };

const sameSegments = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((s, i) => s === b[i]);

function bearerOf(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

function hasContentType(req: IncomingMessage, type: string): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === type;
}

/** The body as text, or undefined past `maxBytes` (the rest is not read). */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** RFC 9725 §4.6: one Link per ICE server URL, with its credentials. */
function iceServerLinks(servers: IceServer[]): string[] {
  const quoted = (value: string): string => `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  return servers.flatMap((server) =>
    server.urls.map((url) => `<${url}>; rel="ice-server"; username=${quoted(server.username)}; credential=${quoted(server.credential)}`),
  );
}

function preflight(res: ServerResponse, allow: string, headers: Record<string, string | string[]>): void {
  res.writeHead(204, {
    ...CORS,
    ...headers,
    allow,
    'access-control-allow-methods': allow,
    'access-control-allow-headers': 'Authorization, Content-Type, If-Match',
    'access-control-max-age': '86400',
  });
  res.end();
}

/** An empty success, or a failure: its HTTP status with the spec's code and why, as JSON. */
function reply(res: ServerResponse, status: number, failure?: Failure, headers: Record<string, string> = {}): void {
  const body = failure ? JSON.stringify({ code: failure.code, message: failure.message }) : '';
  res.writeHead(status, {
    ...CORS,
    ...headers,
    ...(failure && { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
