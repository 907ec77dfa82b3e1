/** Users of a test cluster's nodes: a hand-driven client logged in on a node, heartbeating as the SDK does. */
import assert from 'node:assert/strict';
import type { AppConfig } from '@parley/server';
import type { ServerProcess } from '@parley/testkit';
import { RawClient } from './rawClient.js';

export async function loggedIn(node: ServerProcess, app: AppConfig, roomID: string, userID: string): Promise<RawClient> {
  const client = await RawClient.open(node.url);
  const login = await client.login(app, roomID, { userID }, true);
  assert.equal(login.code, 0, `${userID} logs in: ${JSON.stringify(login)}`);
  // Heartbeats at the interval the server asks for, as the SDK sends them, until the connection ends.
  const { heartbeatIntervalMs } = client.messages.find((m) => m.type === 'hello') as { heartbeatIntervalMs: number };
  const heartbeats = setInterval(
    () => client.ws.readyState === client.ws.OPEN && client.ws.send(JSON.stringify({ type: 'heartbeat', id: 1 })),
    heartbeatIntervalMs,
  );
  client.ws.once('close', () => clearInterval(heartbeats));
  return client;
}
