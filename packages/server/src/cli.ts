#!/usr/bin/env node
/**
 * parley dev                      the dev app on 127.0.0.1:7800 with the web demo
 * parley start --config apps.json production: apps from a file, real secrets required
 * parley token generate ...       mint a token04 (see --help)
 * parley token inspect TOKEN --secret S
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DEV_APP, DEFAULT_PORT, type AppConfig } from './config.js';
import { startServer, type ParleyServer } from './server.js';
import { decodeToken04, generateToken04, type TokenPrivileges } from './auth/token04.js';

const USAGE = `usage:
  parley dev [--port P] [--heartbeat-timeout-ms MS]
  parley start --config apps.json [--host H] [--port P] [--heartbeat-timeout-ms MS] [--drain-ms MS]
  parley token generate --app-id N --user-id U --secret S [--expire SECONDS] [--mode gcm|cbc]
                        [--room R [--no-publish] [--streams a,b]]
  parley token inspect TOKEN --secret S
`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    config: { type: 'string' },
    'heartbeat-timeout-ms': { type: 'string' },
    'drain-ms': { type: 'string', default: '30000' },
    'app-id': { type: 'string' },
    'user-id': { type: 'string' },
    secret: { type: 'string' },
    expire: { type: 'string', default: '3600' },
    mode: { type: 'string', default: 'gcm' },
    room: { type: 'string' },
    'no-publish': { type: 'boolean', default: false },
    streams: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

function required(name: keyof typeof values): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new Error(`--${name} is required\n${USAGE}`);
  return value;
}

async function serve(mode: 'dev' | 'start'): Promise<void> {
  const port = values.port ? Number(values.port) : DEFAULT_PORT;
  const heartbeatTimeoutMs = values['heartbeat-timeout-ms'] ? Number(values['heartbeat-timeout-ms']) : undefined;
  if (mode === 'dev') {
    const server = await startServer({ host: '127.0.0.1', port, apps: [DEV_APP], devMode: true, heartbeatTimeoutMs });
    process.stdout.write(
      `\nParley dev server\n  demo:      ${server.httpUrl}/\n  signalling: ${server.url}\n` +
        `  appID:     ${DEV_APP.appID}\n  appSign:   ${DEV_APP.appSign}\n  serverSecret: ${DEV_APP.serverSecret}\n\n`,
    );
    onShutdown(server, 0);
    return;
  }
  const file = values.config ?? process.env.PARLEY_CONFIG;
  if (!file) throw new Error('production mode needs --config <apps.json> (or PARLEY_CONFIG)');
  const apps = JSON.parse(await readFile(file, 'utf8')) as AppConfig[];
  if (apps.some((a) => a.appSign === DEV_APP.appSign || a.serverSecret === DEV_APP.serverSecret)) {
    throw new Error('refusing to start: the well-known dev credentials are not allowed in production mode');
  }
  const server = await startServer({ host: values.host ?? '0.0.0.0', port, apps, heartbeatTimeoutMs, staticDir: false });
  onShutdown(server, Number(values['drain-ms']));
}

function token(action: string | undefined, subject: string | undefined): void {
  if (action === 'generate') {
    const room = values.room;
    const payload: TokenPrivileges | undefined = room
      ? {
          room_id: room,
          privilege: { '1': 1, '2': values['no-publish'] ? 0 : 1 },
          stream_id_list: values.streams ? values.streams.split(',') : null,
        }
      : undefined;
    const mode = values.mode === 'cbc' ? 'cbc' : 'gcm';
    process.stdout.write(
      `${generateToken04({
        appID: Number(required('app-id')),
        userID: required('user-id'),
        serverSecret: required('secret'),
        effectiveTimeInSeconds: Number(values.expire),
        mode,
        payload,
      })}\n`,
    );
    return;
  }
  if (action === 'inspect' && subject) {
    const decoded = decodeToken04(subject, required('secret'));
    if (!decoded.ok) throw new Error(`invalid token (${decoded.code}): ${decoded.message}`);
    const { claims } = decoded;
    const summary = {
      ...claims,
      payload: claims.payload ? (JSON.parse(claims.payload) as unknown) : '',
      expiresAt: new Date(claims.expire * 1000).toISOString(),
      expired: claims.expire <= Date.now() / 1000,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  throw new Error(USAGE);
}

/** SIGTERM or SIGINT drains for up to `drainMs` (see ParleyServer.close); a second one stops at once. */
function onShutdown(server: ParleyServer, drainMs: number): void {
  const stop = (): void => {
    const now = (): void => void server.close().then(() => process.exit(0));
    process.once('SIGINT', now);
    process.once('SIGTERM', now);
    void server.close({ drainMs }).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function main(): Promise<void> {
  const [command = 'dev', action, subject] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'dev' || command === 'start') return serve(command);
  if (command === 'token') return token(action, subject);
  throw new Error(`unknown command "${command}"\n${USAGE}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`parley: ${(err as Error).message}\n`);
  process.exit(1);
});
