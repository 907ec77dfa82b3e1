/**
 * This server as a node of a cluster on Redis: its connections, the room store and room bus the
 * nodes share. Without Redis at start there is no node: one clear error.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { createClient } from 'redis';
import type { ClusterOptions } from '../config.js';
import { RedisRoomStore, type RedisClient } from '../rooms/store/redisRoomStore.js';
import { RedisRoomBus } from './redisRoomBus.js';
import { NodeLease, type NodeLeaseHandlers, type NodeLoad } from './nodeLease.js';
import type { MediaStats } from '../media/index.js';

/** How long a node waits between attempts to reach Redis again, at most. */
const MAX_RECONNECT_DELAY_MS = 1_000;
/** How long a node's lease lasts unless renewed. */
export const DEFAULT_LEASE_MS = 3_000;
const RELAY_KEY = 'parley:relay-key';

export interface ClusterNode {
  readonly nodeId: string;
  /** The node's command connection, for the other state kept in Redis (the webhook queue). */
  readonly redis: RedisClient;
  readonly store: RedisRoomStore;
  readonly bus: RedisRoomBus;
  /** Tell it which sessions this node holds (RoomService's `holder`). */
  readonly lease: NodeLease;
  /** Takes the node's lease (from then on the store's writes are fenced by it) and keeps it. */
  start(handlers: NodeLeaseHandlers): Promise<void>;
  /** Signs the control messages of the node-to-node relay: shared by the cluster's nodes through Redis. */
  readonly relayKey: Buffer;
  /** Whether Redis can be reached now (both connections are up). */
  reachable(): boolean;
  close(): Promise<void>;
}

/** The URL without its password, for messages. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return 'an unparsable URL';
  }
}

async function connect(url: string, log: Logger): Promise<RedisClient> {
  let connected = false;
  const client: RedisClient = createClient({
    url,
    // While Redis is out of reach a command fails at once (the client is told to retry) rather than waiting.
    disableOfflineQueue: true,
    socket: {
      // Once connected, a lost connection is retried for as long as it takes; at start, it is an error.
      reconnectStrategy: (retries, cause) => (connected ? Math.min(retries * 100, MAX_RECONNECT_DELAY_MS) : cause),
    },
  });
  client.on('error', (err: unknown) => {
    if (connected) log.warn({ err }, 'redis connection error');
  });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cluster.redisUrl: Redis at ${redacted(url)} is unreachable: ${(err as Error).message}`);
  }
  connected = true;
  return client;
}

export async function joinCluster(options: ClusterOptions, heartbeatTimeoutMs: number, log: Logger): Promise<ClusterNode> {
  const nodeId = options.nodeId ?? `${hostname()}-${process.pid}`;
  const commands = await connect(options.redisUrl, log);
  const subscriber = await connect(options.redisUrl, log).catch(async (err: unknown) => {
    await commands.quit();
    throw err;
  });
  const store = new RedisRoomStore(commands);
  const bus = new RedisRoomBus(commands, subscriber, nodeId, log);
  const lease = new NodeLease(commands, subscriber, { nodeId, leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS, heartbeatTimeoutMs }, log);
  store.fenceWith({ key: lease.key, epoch: () => lease.epoch() });
  // The first node makes the key; the others take it.
  await commands.set(RELAY_KEY, randomBytes(32).toString('hex'), { NX: true });
  const relayKey = Buffer.from((await commands.get(RELAY_KEY)) ?? '', 'hex');
  log.info({ nodeId, redis: redacted(options.redisUrl) }, 'joined the cluster');
  return {
    nodeId,
    redis: commands,
    store,
    bus,
    lease,
    relayKey,
    start: (handlers) => lease.start(handlers),
    reachable: () => commands.isReady && subscriber.isReady,
    close: async () => {
      lease.stop();
      await Promise.allSettled([subscriber.quit(), commands.quit()]);
    },
  };
}

/** A node's load since the previous reading: its sessions, media packets per second and event-loop delay. */
export function nodeLoadMeter(sessions: () => number, media: Readonly<MediaStats>): () => NodeLoad {
  const loopDelay = monitorEventLoopDelay();
  loopDelay.enable();
  const packets = (): number => media.packetsReceived + media.packetsSent;
  let [count, at] = [packets(), performance.now()];
  return () => {
    const [nowCount, now] = [packets(), performance.now()];
    const load = {
      sessions: sessions(),
      packetsPerSecond: Math.round(((nowCount - count) * 1000) / Math.max(1, now - at)),
      eventLoopDelayMs: Math.round(loopDelay.mean / 1e4) / 100,
    };
    [count, at] = [nowCount, now];
    loopDelay.reset();
    return load;
  };
}
