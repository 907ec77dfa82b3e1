/**
 * A cluster for a test: a redis-server of its own and three `parley start` processes (nodes a, b
 * and c) sharing it, serving one random app. Everything is stopped when the test ends, also nodes
 * the test paused (SIGSTOP) or killed.
 */
import { randomApp, type AppConfig } from '@parley/server';
import { startRedis, type RedisServer } from './redis.js';
import { startServerProcess, type ServerProcess } from './serverProcess.js';
import { teardown } from './teardown.js';

export interface TestClusterOptions {
  heartbeatTimeoutMs?: number;
  leaseMs?: number;
  /** Added to each node's configuration. */
  config?: Record<string, unknown>;
  /** Node IDs; a, b and c by default. */
  nodeIds?: string[];
  /** Redis keeps its data across `halt()` and `resume()` (see startRedis). */
  persistent?: boolean;
}

export interface TestCluster {
  app: AppConfig;
  nodes: ServerProcess[];
  redis: RedisServer;
}

export async function startCluster(
  t: { after(fn: () => unknown): void },
  { heartbeatTimeoutMs, leaseMs, config = {}, nodeIds = ['a', 'b', 'c'], persistent = false }: TestClusterOptions = {},
): Promise<TestCluster> {
  const closeLater = teardown(t);
  const redis = await startRedis({ persistent });
  closeLater(() => redis.stop());
  const app = randomApp(8_000_001);
  const nodes = await Promise.all(
    nodeIds.map((nodeId) =>
      startServerProcess({
        listen: { host: '127.0.0.1', port: 0 },
        apps: [app],
        media: { listenIp: '127.0.0.1', udpPort: 0, tcpPort: false },
        cluster: { redisUrl: redis.url, nodeId, ...(leaseMs && { leaseMs }) },
        ...(heartbeatTimeoutMs && { heartbeatTimeoutMs }),
        ...config,
      }),
    ),
  );
  for (const node of nodes) {
    closeLater(async () => {
      // A test that stopped a node may have failed before continuing it (a killed one is gone: ESRCH).
      try {
        process.kill(node.pid, 'SIGCONT');
      } catch {}
      await node.stop();
    });
  }
  return { app, nodes, redis };
}
