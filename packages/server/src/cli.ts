#!/usr/bin/env -S node --no-memory-reducer
/**
 * parley dev                        the dev app on 127.0.0.1:7800 with the web demo
 * parley start --config parley.yaml production, configured by a file (see the README)
 * parley config check parley.yaml   validates a configuration file
 * parley token generate ...       mint a token04 (see --help)
 * parley token inspect TOKEN --secret S
 * parley doctor URL --app-id N (--app-sign S | --token T)   what of a server a client can reach
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DEV_APP, DEFAULT_PORT } from './config.js';
import { loadConfig, type LoadedConfig } from './configFile.js';
import { signallingUrlOf, startServer, type ParleyServer } from './server.js';
import { decodeToken04, generateToken04, type TokenPrivileges } from './auth/token04.js';
import { diagnose } from './doctor.js';
import { setServerHeapPolicy } from './heapPolicy.js';

const USAGE = `usage:
  parley dev [--port P] [--heartbeat-timeout-ms MS]
  parley start --config parley.yaml [--host H] [--port P] [--heartbeat-timeout-ms MS] [--drain-ms MS]
  parley config check parley.yaml
  parley token generate --app-id N --user-id U --secret S [--expire SECONDS] [--mode gcm|cbc]
                        [--room R [--no-publish] [--streams a,b]]
  parley token inspect TOKEN --secret S
  parley doctor wss://parley.example.com/ws --app-id N (--app-sign S | --token T)
  parley doctor --config parley.yaml     (its publicUrl, with its first app's credentials)
`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    config: { type: 'string' },
    'heartbeat-timeout-ms': { type: 'string' },
    'drain-ms': { type: 'string' },
    'app-id': { type: 'string' },
    'user-id': { type: 'string' },
    secret: { type: 'string' },
    expire: { type: 'string', default: '3600' },
    mode: { type: 'string', default: 'gcm' },
    room: { type: 'string' },
    'no-publish': { type: 'boolean', default: false },
    streams: { type: 'string' },
    'app-sign': { type: 'string' },
    token: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

function required(name: keyof typeof values): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new Error(`--${name} is required\n${USAGE}`);
  return value;
}

async function serve(mode: 'dev' | 'start'): Promise<void> {
  setServerHeapPolicy();
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
  if (!file) throw new Error('production mode needs --config <parley.yaml> (or PARLEY_CONFIG)');
  const { options, tls, drainMs } = await readConfig(file);
  const server = await startServer({
    ...options,
    host: values.host ?? options.host,
    port: values.port ? port : options.port,
    heartbeatTimeoutMs: heartbeatTimeoutMs ?? options.heartbeatTimeoutMs,
    tls,
  });
  onShutdown(server, values['drain-ms'] ? Number(values['drain-ms']) : drainMs);
  // SIGHUP (systemctl reload) re-reads the apps and limits; a file with errors changes nothing.
  // One reload at a time, in the order the signals came: the last signal's file wins.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(() =>
      readConfig(file)
        .then(({ options: reloaded }) => server.reload(reloaded))
        .catch((err: Error) => void process.stderr.write(`parley: configuration not reloaded: ${err.message}\n`)),
    );
  });
}

/** A configuration file, validated, with its TLS files read; throws one line per problem. */
async function readConfig(file: string): Promise<Omit<LoadedConfig, 'tls'> & { tls?: { cert: Buffer; key: Buffer } }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const loaded = loadConfig(text, file, process.env);
  if (loaded.code !== 0) throw new Error(loaded.message);
  const { apps } = loaded.data.options;
  const dev = apps.findIndex((a) => a.appSign === DEV_APP.appSign || a.serverSecret === DEV_APP.serverSecret);
  if (dev >= 0) throw new Error(`${file}: apps[${dev}]: the well-known dev credentials are not allowed in production mode`);
  const { tls } = loaded.data;
  if (!tls) return { ...loaded.data, tls: undefined };
  const read = (key: 'cert' | 'key'): Promise<Buffer> =>
    readFile(tls[key]).catch((err: Error) => Promise.reject(new Error(`${file}: tls.${key}: ${err.message}`)));
  return { ...loaded.data, tls: { cert: await read('cert'), key: await read('key') } };
}

async function config(action: string | undefined, file: string | undefined): Promise<void> {
  if (action !== 'check' || !file) throw new Error(USAGE);
  const { options, tls } = await readConfig(file);
  const scheme = tls ? 'https' : 'http';
  process.stdout.write(`${file}: ok (${options.apps.length} app(s), ${scheme} on ${options.host}:${options.port})\n`);
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

/** Prints what of the server at `url` works from here; fails unless signalling and at least one media path do. */
async function doctor(url: string | undefined): Promise<void> {
  let target = url ? { url, appID: Number(required('app-id')), appSign: values['app-sign'], token: values.token } : undefined;
  if (!target && values.config) {
    const { options } = await readConfig(values.config);
    if (!options.publicUrl) throw new Error(`${values.config}: publicUrl: is needed to know where clients connect`);
    const [app] = options.apps;
    target = { url: signallingUrlOf(options.publicUrl), appID: app!.appID, appSign: app!.appSign, token: undefined };
  }
  if (!target) throw new Error(USAGE);
  const checks = await diagnose(target);
  for (const { name, ok, detail } of checks) process.stdout.write(`${name.padEnd(10)} ${ok ? 'ok  ' : 'FAIL'}  ${detail}\n`);
  const works = (name: string): boolean => checks.some((c) => c.name === name && c.ok);
  if (!works('signalling') || !['udp', 'tcp', 'turn'].some(works)) process.exitCode = 1;
}

async function main(): Promise<void> {
  const [command = 'dev', action, subject] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'dev' || command === 'start') return serve(command);
  if (command === 'token') return token(action, subject);
  if (command === 'config') return config(action, subject);
  if (command === 'doctor') {
    await doctor(action);
    process.exit(); // werift's timers would keep the process waiting
  }
  throw new Error(`unknown command "${command}"\n${USAGE}`);
}

main().catch((err: unknown) => {
  // One line per problem, each naming what it is about.
  process.stderr.write(`${(err as Error).message.replace(/^/gm, 'parley: ')}\n`);
  process.exit(1);
});
