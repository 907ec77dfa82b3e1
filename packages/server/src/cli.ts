#!/usr/bin/env node
/**
 * `parley-server dev`: the dev app on 127.0.0.1:7800 with the web demo.
 * `parley-server start --config apps.json [--host H] [--port P]`: production, real secrets required.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DEV_APP, DEFAULT_PORT, type AppConfig } from './config.js';
import { startServer } from './server.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    config: { type: 'string' },
    'heartbeat-timeout-ms': { type: 'string' },
  },
});
const mode = positionals[0] ?? 'dev';
const port = values.port ? Number(values.port) : DEFAULT_PORT;
const heartbeatTimeoutMs = values['heartbeat-timeout-ms'] ? Number(values['heartbeat-timeout-ms']) : undefined;

async function main(): Promise<void> {
  if (mode === 'dev') {
    const server = await startServer({ host: '127.0.0.1', port, apps: [DEV_APP], devMode: true, heartbeatTimeoutMs });
    process.stdout.write(
      `\nParley dev server\n  demo:      ${server.httpUrl}/\n  signalling: ${server.url}\n` +
        `  appID:     ${DEV_APP.appID}\n  appSign:   ${DEV_APP.appSign}\n  serverSecret: ${DEV_APP.serverSecret}\n\n`,
    );
    onShutdown(() => server.close());
    return;
  }
  if (mode === 'start') {
    const file = values.config ?? process.env.PARLEY_CONFIG;
    if (!file) throw new Error('production mode needs --config <apps.json> (or PARLEY_CONFIG)');
    const apps = JSON.parse(await readFile(file, 'utf8')) as AppConfig[];
    if (apps.some((a) => a.appSign === DEV_APP.appSign || a.serverSecret === DEV_APP.serverSecret)) {
      throw new Error('refusing to start: the well-known dev credentials are not allowed in production mode');
    }
    const server = await startServer({ host: values.host ?? '0.0.0.0', port, apps, heartbeatTimeoutMs, staticDir: false });
    onShutdown(() => server.close());
    return;
  }
  throw new Error(`unknown mode "${mode}" (use "dev" or "start")`);
}

function onShutdown(close: () => Promise<void>): void {
  const stop = (): void => void close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`parley-server: ${(err as Error).message}\n`);
  process.exit(1);
});
