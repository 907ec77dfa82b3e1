/**
 * Capacity: many idle users (raw signalling clients, ten to a room, no media), the server's memory
 * per session, and the login rate sustained with a fixed number of logins in flight.
 */
import { DEV_APP } from '@parley/server';
import { RawClient } from '../packages/sdk/test/rawClient.js';
import { cpuPerLogin, type Row, type ServerUnderTest } from './lib.js';

export async function benchCapacity(
  server: ServerUnderTest,
  { sessions, inFlight }: { sessions: number; inFlight: number },
): Promise<Row[]> {
  const clients: RawClient[] = [];
  const before = await server.stats();
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < sessions) {
      const i = next++;
      const client = await RawClient.open(server.url);
      const reply = await client.login(DEV_APP, `cap-${Math.floor(i / 10)}`, { userID: `idle${i}` });
      if (reply.code !== 0) throw new Error(`login ${i} failed: ${JSON.stringify(reply)}`);
      clients.push(client);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  const after = await server.stats();
  for (const client of clients) client.ws.terminate();
  const perSession = (bytes: number): string => `${(bytes / sessions / 1024).toFixed(1)} KB`;
  return [
    {
      measure: `${sessions} idle sessions in ${sessions / 10} rooms: server memory per session`,
      unit: 'KB',
      n: sessions,
      p50: (after.heapUsed - before.heapUsed) / sessions / 1024,
      note: `heap ${perSession(after.heapUsed - before.heapUsed)}, RSS ${perSession(after.rss - before.rss)} per session; server has ${after.sessions} sessions, ${after.rooms} rooms`,
    },
    {
      measure: `logins sustained (connect + login, ${inFlight} in flight)`,
      unit: 'logins/s',
      n: sessions,
      p50: sessions / seconds,
      note: cpuPerLogin(before, after, sessions),
    },
  ];
}
