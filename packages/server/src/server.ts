import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_LIMITS,
  DEFAULT_NETWORK_QUALITY_INTERVAL_MS,
  DEFAULT_ACTIVE_SPEAKER_INTERVAL_MS,
  DEFAULT_ONLINE_COUNT_INTERVAL_MS,
  DEFAULT_PORT,
  type ServerOptions,
} from './config.js';
import type { IceServer } from '@parley/protocol';
import type { Logger } from 'pino';
import { createLogger } from './log.js';
import { WeriftMediaPlane, WorkerMediaPlane, type MediaPlane, type WorkerPlaneOptions } from './media/index.js';
import { RoomService } from './rooms/roomService.js';
import { SignallingServer, SIGNALLING_PATH } from './signalling/signallingServer.js';
import { serveStatic } from './http/staticFiles.js';
import { HttpRoutes, sendJson } from './http/routes.js';
import { ServerApi } from './api/serverApi.js';
import { announcedAddress, localIPv4 } from './net.js';
import { Health, ServerMetrics } from './metrics/index.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { RedisWebhookQueue } from './webhooks/redisWebhookQueue.js';
import { turnCredentials } from './auth/turnCredentials.js';
import { TrustedProxies } from './http/clientAddress.js';
import { AppRegistry } from './apps.js';
import { WhipEndpoints } from './whip/whipEndpoints.js';
import { Recordings } from './egress/recordings.js';
import { StreamFeeds } from './egress/streamFeeds.js';
import { CdnRelays } from './egress/cdnRelays.js';
import { Mixing } from './egress/mixing.js';
import { DEFAULT_LEASE_MS, joinCluster, nodeLoadMeter } from './cluster/cluster.js';

export interface ParleyServer {
  /** The `ws://` (`wss://` with TLS) URL for the SDK profile's `server` field. */
  readonly url: string;
  /** The `http://` (`https://`) URL of the web demo and HTTP endpoints. */
  readonly httpUrl: string;
  readonly port: number;
  /** Where clients' media arrives: the one UDP port (unless `media.portRange`), and ICE-TCP's port if any. */
  readonly media: {
    readonly listenIp: string;
    readonly udpPort?: number;
    readonly tcpPort?: number;
    /**
     * With `media.workers`: the endpoints open on each worker, and ending one at once as a crash
     * would (its peer connections move to the others by ICE restart, and a new one takes its place).
     */
    readonly workers?: { endpoints(): number[]; stop(slot: number): void };
  };
  readonly rooms: RoomService;
  /** Readiness as `/readyz` reports it: not ready from the start of `close()`; `setReady(false)` drains earlier. */
  readonly health: Health;
  /**
   * Applies a reloaded configuration's apps and limits without dropping anyone (see
   * AppRegistry.replace): apps are checked first and nothing changes if one is invalid (it throws).
   */
  reload(config: Pick<ServerOptions, 'apps' | 'limits'>): void;
  /**
   * Stops the server. With `drainMs`, it first stops taking new connections and lets the users in
   * its rooms carry on until they have all left or `drainMs` has passed; the rest are then
   * disconnected (1001) and reconnect wherever the server's address leads them. A node of a
   * cluster tells its clients at once to resume on another node (1012), waits (up to `drainMs`)
   * until they have, and ends no session: the cluster ends those that do not come back.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

const LISTEN_BACKLOG = 4096;

function defaultStaticDir(): string | false {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@parley/demo/package.json')), 'dist');
  } catch {
    return false;
  }
}

/** How often a drain checks whether the server's sessions are gone. */
const DRAIN_CHECK_MS = 100;

/** Resolves once this server holds no session (they left, or resumed on another node), after `timeoutMs`, or when `cut` is aborted. */
function sessionsGone(rooms: RoomService, timeoutMs: number, cut: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      clearInterval(check);
      cut.removeEventListener('abort', done);
      resolve();
    };
    const check = setInterval(() => rooms.heldSessions === 0 && done(), DRAIN_CHECK_MS);
    const timer = setTimeout(done, timeoutMs);
    cut.addEventListener('abort', done);
    if (rooms.heldSessions === 0) done();
  });
}

/** The signalling URL under an http(s) URL: ws(s), the same host and path, then `/ws`. */
export function signallingUrlOf(httpUrl: string): string {
  const base = httpUrl.endsWith('/') ? httpUrl : `${httpUrl}/`;
  const url = new URL(SIGNALLING_PATH.slice(1), base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/** Media on worker threads; the log says when one dies and when it runs again. */
async function openWorkerPlane(options: WorkerPlaneOptions, log: Logger): Promise<WorkerMediaPlane> {
  const plane = await WorkerMediaPlane.open(options);
  plane.observer.on('workerExit', (slot, reason) =>
    log.error({ slot, reason }, 'media worker died; its peer connections move to the others'),
  );
  plane.observer.on('workerRestarted', (slot) => log.info({ slot }, 'media worker started again'));
  plane.observer.on('workerRestartFailed', (slot, reason) => log.error({ slot, reason }, 'media worker could not be started again'));
  return plane;
}

export async function startServer(options: ServerOptions): Promise<ParleyServer> {
  const apps = new AppRegistry(options.apps);
  const host = options.host ?? '127.0.0.1';
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
  const log = createLogger(options.logLevel);
  const listenIp = options.media?.listenIp ?? (host === '0.0.0.0' || host === '::' ? localIPv4() : host);
  const announcedIp = options.media?.announcedIp === undefined ? undefined : await announcedAddress(options.media.announcedIp);
  // A node of a cluster shares its room state and room events through Redis; alone, they stay in memory.
  const { workers, ...mediaOptions } = options.media ?? {};
  if (options.cluster && workers) {
    throw new Error('media.workers cannot be given on a node of a cluster (its relay serves the streams of one media thread)');
  }
  const cluster = options.cluster ? await joinCluster(options.cluster, heartbeatTimeoutMs, log) : undefined;
  const workerPlane = workers ? await openWorkerPlane({ ...mediaOptions, listenIp, announcedIp, workers }, log) : undefined;
  const media: MediaPlane & Pick<WeriftMediaPlane, 'ports' | 'fastPathNote'> =
    workerPlane ??
    (await WeriftMediaPlane.open({
      ...mediaOptions,
      listenIp,
      announcedIp,
      onSocketError: (err) => log.debug({ err }, 'media socket error'),
      // A node relays its streams to the other nodes' players, and theirs to its own.
      ...(cluster && {
        relay: { host: options.cluster?.internalAddress ?? listenIp, port: options.cluster?.relayPort ?? 0, key: cluster.relayKey },
      }),
    }));
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const { turn } = options;
  const onlineCountIntervalMs = options.onlineCountIntervalMs ?? DEFAULT_ONLINE_COUNT_INTERVAL_MS;
  const networkQualityIntervalMs = options.networkQualityIntervalMs ?? DEFAULT_NETWORK_QUALITY_INTERVAL_MS;
  const iceServers = (userID: string): IceServer[] | undefined => (turn ? [turnCredentials(turn, userID)] : undefined);
  const rooms = new RoomService({
    apps,
    ...(cluster && {
      store: cluster.store,
      bus: cluster.bus,
      holder: cluster.lease,
      nodes: { nodeId: cluster.nodeId, relayAddressOf: (nodeId: string) => cluster.lease.relayAddressOf(nodeId) },
    }),
    media,
    heartbeatTimeoutMs,
    log,
    limits,
    onlineCountIntervalMs,
    networkQualityIntervalMs,
    activeSpeakerIntervalMs: options.activeSpeakerIntervalMs ?? DEFAULT_ACTIVE_SPEAKER_INTERVAL_MS,
    iceServers,
  });
  const feeds = new StreamFeeds((appID, streamID) => rooms.tap(appID, streamID));
  const cdn = new CdnRelays(
    {
      publisherOf: (appID, streamID) => rooms.publisherOf(appID, streamID),
      tell: (_appID, sessionID, message) => rooms.tell(sessionID, message),
    },
    feeds,
    log,
  );
  rooms.observer.on('streamClosed', ({ appID, stream }) => cdn.streamEnded(appID, stream.streamID));
  let signallingUrl = '';
  const mixing = new Mixing(
    {
      roomOfStream: (appID, streamID) => rooms.roomOfStream(appID, streamID),
      appSignOf: (appID) => apps.get(appID)?.appSign,
      signallingUrl: () => signallingUrl,
      tell: (sessionID, message) => rooms.tell(sessionID, message),
    },
    feeds,
    log,
    options.mixing,
  );
  const recordings =
    options.recording &&
    new Recordings(
      {
        streamsOf: async (appID, roomID) => (await rooms.describeRoom(appID, roomID))?.streams ?? [],
        onStreamCreated: (listener) => rooms.observer.on('streamCreated', ({ appID, roomID }) => listener(appID, roomID)),
      },
      feeds,
      mixing,
      options.recording,
      log,
    );
  const webhooks = new WebhookDispatcher({
    apps,
    observer: rooms.observer,
    recordings: recordings?.observer,
    mixing: mixing.observer,
    log,
    options: options.webhooks,
    // A node's webhooks wait in Redis, delivered by whichever node holds their partition: they outlive the node.
    ...(cluster && {
      queue: RedisWebhookQueue.factory({
        redis: cluster.redis,
        nodeId: cluster.nodeId,
        leaseMs: options.cluster?.leaseMs ?? DEFAULT_LEASE_MS,
      }),
    }),
  });
  const serverApi = new ServerApi(apps, { rooms, recordings, mixing }, log);
  const staticDir = options.staticDir ?? defaultStaticDir();
  const devApp = options.devMode ? options.apps[0] : undefined;

  const routes = new HttpRoutes();
  serverApi.addRoutes(routes);
  const metrics = new ServerMetrics({ rooms, media: media.stats });
  const health = new Health(cluster ? () => cluster.reachable() : undefined);
  metrics.addRoutes(routes);
  health.addRoutes(routes);
  const proxies = new TrustedProxies(options.behindProxy ?? []);
  new WhipEndpoints({ rooms, apps, log, limits, proxies, iceServers, accepting: () => health.ready }).addRoutes(routes);
  if (devApp) {
    routes.add('/dev-config.json', (_req, res) =>
      sendJson(res, 200, { appID: devApp.appID, appSign: devApp.appSign, signallingPath: SIGNALLING_PATH }),
    );
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      if (await routes.handle(req, res)) return;
      if (staticDir && (await serveStatic(staticDir, req, res))) return;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    })().catch((err: unknown) => {
      log.error({ err }, 'http request failed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
  // With a certificate the server speaks https and wss itself; without, http and ws (behind a proxy that terminates TLS, or in dev).
  const http = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handle) : createHttpServer(handle);
  const scheme = options.tls ? { http: 'https', ws: 'wss' } : { http: 'http', ws: 'ws' };
  const signalling = new SignallingServer(http, {
    rooms,
    cdn,
    mixing,
    heartbeatTimeoutMs,
    log,
    limits,
    proxies,
    onErrorCode: (code) => metrics.signallingError(code),
  });
  try {
    await cluster?.start({
      sweep: (session) => rooms.sweep(session),
      moved: (session) => void rooms.letGoOfMoved(session),
      renewed: () => void rooms.letGoOfEnded(),
      load: nodeLoadMeter(() => rooms.heldSessions, media.stats),
      apps: () => apps.list(),
      relay: media.relay?.address,
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      // A room's worth of users may connect in the same instant; Node's default backlog (511) would
      // drop the excess SYNs, which clients then retry only after a second.
      http.listen({ port: options.port ?? DEFAULT_PORT, host, backlog: LISTEN_BACKLOG }, () => resolve());
    });
  } catch (err) {
    await recordings?.close();
    await webhooks.close();
    await media.close();
    await cluster?.close();
    throw err;
  }
  const { port } = http.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `${scheme.ws}://${urlHost}:${port}${SIGNALLING_PATH}`;
  signallingUrl = url;
  const httpUrl = `${scheme.http}://${urlHost}:${port}`;
  const { udp, tcp } = media.ports;
  const [udpPort, tcpPort] = [udp[0], tcp[0]];
  const publicUrl = options.publicUrl && { publicUrl: options.publicUrl, publicSignallingUrl: signallingUrlOf(options.publicUrl) };
  log.info(
    {
      url,
      httpUrl,
      ...publicUrl,
      apps: options.apps.map((a) => a.appID),
      media: { listenIp, udpPort, tcpPort, ...(workers && { workers: media.ports }) },
    },
    'server listening',
  );
  log.info({ fastPath: media.fastPathNote }, 'media fast path');
  health.setReady(true);

  let closing: Promise<void> | undefined;
  const drain = new AbortController();
  return {
    url,
    httpUrl,
    port,
    media: {
      listenIp,
      udpPort,
      tcpPort,
      ...(workerPlane && { workers: { endpoints: () => workerPlane.endpointCounts, stop: (slot) => workerPlane.stopWorker(slot) } }),
    },
    rooms,
    health,
    reload: (config) => {
      apps.replace(config.apps); // throws on an invalid app or callback before anything changed
      // Everything holds this one object: readers see the new values from their next use on.
      Object.assign(limits, DEFAULT_LIMITS, config.limits);
      log.info({ apps: config.apps.map((a) => a.appID) }, 'configuration reloaded');
    },
    close: ({ drainMs = 0 } = {}) => {
      if (closing && drainMs === 0) drain.abort(); // closing again without a drain cuts it short
      return (closing ??= (async () => {
        health.setReady(false);
        signalling.stopAccepting();
        // A node of a cluster moves its clients to the other nodes at once; a server alone lets its users finish.
        if (cluster) signalling.moveClients();
        if (drainMs > 0) {
          log.info({ drainMs, sessions: rooms.heldSessions }, 'draining');
          await sessionsGone(rooms, drainMs, drain.signal);
        }
        // Recordings finish their files before the streams go (their ends would begin new segments).
        await recordings?.close();
        await mixing.close();
        cdn.close();
        if (cluster) await rooms.releaseAll();
        else await rooms.closeAll();
        // The webhooks of the shutdown (and those still queued) get a bounded grace meanwhile.
        const webhooksClosed = webhooks.close();
        await signalling.close();
        await media.close();
        if (cluster) {
          // The webhook queue hands its partitions over through the node's Redis connection.
          await webhooksClosed;
          await cluster.close();
        }
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        await webhooksClosed;
      })());
    },
  };
}
