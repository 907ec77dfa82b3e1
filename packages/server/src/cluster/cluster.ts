/**
 * This server as a node of a cluster on Redis: its connections, the room store and room bus the
 * nodes share. Without Redis at start there is no node: one clear error.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { createClient } from 'redis';
import type { ClusterOptions } from '../config.js';
import { RedisRoomStore, type RedisClient } from '../rooms/store/redisRoomStore.js';
import { RedisRoomBus } from './redisRoomBus.js';

/** How long a node waits between attempts to reach Redis again, at most. */
const MAX_RECONNECT_DELAY_MS = 1_000;

export interface ClusterNode {
  readonly nodeId: string;
  readonly store: RedisRoomStore;
  readonly bus: RedisRoomBus;
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

export async function joinCluster(options: ClusterOptions, log: Logger): Promise<ClusterNode> {
  const nodeId = options.nodeId ?? `${hostname()}-${process.pid}`;
  const commands = await connect(options.redisUrl, log);
  const subscriber = await connect(options.redisUrl, log).catch(async (err: unknown) => {
    await commands.quit();
    throw err;
  });
  const store = new RedisRoomStore(commands);
  const bus = new RedisRoomBus(commands, subscriber, nodeId, log);
  log.info({ nodeId, redis: redacted(options.redisUrl) }, 'joined the cluster');
  return {
    nodeId,
    store,
    bus,
    reachable: () => commands.isReady && subscriber.isReady,
    close: async () => {
      await Promise.allSettled([subscriber.quit(), commands.quit()]);
    },
  };
}
