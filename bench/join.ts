/** Join: loginRoom → Logined with the Node SDK (no media), one user at a time and many at once. */
import { DEV_APP } from '@parley/server';
import { ParleyEngine } from '@parley/sdk';
import { cpuPerLogin, row, type Row, type ServerUnderTest } from './lib.js';

function loginTime(engine: ParleyEngine, roomID: string, userID: string): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) =>
    engine.loginRoom(roomID, { userID, userName: userID }, { isUserStatusNotify: true }, (code) =>
      code === 0 ? resolve(performance.now() - start) : reject(new Error(`login ${userID} failed: ${code}`)),
    ),
  );
}

const destroy = (engines: ParleyEngine[]): Promise<void[]> =>
  Promise.all(engines.map((engine) => new Promise<void>((resolve) => ParleyEngine.destroyEngine(engine, resolve))));

export async function benchJoin(server: ServerUnderTest, { runs, concurrent }: { runs: number; concurrent: number }): Promise<Row[]> {
  const profile = { appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url };
  const one: number[] = [];
  for (let i = 0; i < runs; i++) {
    const engine = ParleyEngine.createEngine(profile);
    one.push(await loginTime(engine, 'join-one', `one${i}`));
    await destroy([engine]);
  }

  // Everyone at once, ten to a room (each login is also told to the others in its room).
  const engines = Array.from({ length: concurrent }, () => ParleyEngine.createEngine(profile));
  const before = await server.stats();
  const generatorBefore = process.cpuUsage();
  const started = performance.now();
  const many = await Promise.all(engines.map((engine, i) => loginTime(engine, `join-${Math.floor(i / 10)}`, `many${i}`)));
  const wallMs = performance.now() - started;
  const generator = process.cpuUsage(generatorBefore);
  const after = await server.stats();
  await destroy(engines);
  return [
    row('join, 1 user at a time', 'ms', one),
    row(
      `join, ${concurrent} users at once (10 per room)`,
      'ms',
      many,
      `all in ${wallMs.toFixed(0)} ms (${((concurrent / wallMs) * 1000).toFixed(0)} logins/s); ${cpuPerLogin(before, after, concurrent)}; load generator CPU ${((generator.user + generator.system) / 1000 / concurrent).toFixed(2)} ms per login`,
    ),
  ];
}
