/**
 * The production configuration file of `parley start --config parley.yaml` (YAML or JSON),
 * validated key by key: each problem is one line that names the key. Secrets may come from the
 * environment instead of the file (see SECRET_ENV), and the environment wins.
 */
import { APP_SIGN_PATTERN, ErrorCode } from '@parley/protocol';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_LIMITS, DEFAULT_PORT, SERVER_SECRET_PATTERN, type Limits, type ServerOptions } from './config.js';
import { fail, ok, type Outcome } from './outcome.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A key's type error: "is missing" when absent, else what it must be. */
const expected = (what: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is missing' : what) });

const ipv4 = z.ipv4(expected('must be an IPv4 address'));
const port = z.number(expected('must be a port number')).int('must be a port number').min(0).max(65535, 'must be a port number');
const positiveMs = z.number(expected('must be a number of milliseconds')).int('must be a whole number').positive('must be positive');

const appSchema = z
  .object({
    appID: z.number(expected('must be a number')).int('must be a whole number').positive('must be positive'),
    appSign: z.string(expected('must be 64 hex characters')).regex(APP_SIGN_PATTERN, 'must be 64 hex characters'),
    serverSecret: z.string(expected('must be 32 characters')).regex(SERVER_SECRET_PATTERN, 'must be 32 printable characters'),
    callbackUrl: z.url({ protocol: /^https?$/, ...expected('must be an http(s) URL') }).optional(),
    callbackSecret: z.string().min(1, 'must not be empty').optional(),
  })
  .strict()
  .refine((app) => !app.callbackUrl || app.callbackSecret, {
    path: ['callbackSecret'],
    message: 'is needed to sign the callbackUrl webhooks',
  });

const limitsSchema = z
  .object(
    Object.fromEntries(
      (Object.keys(DEFAULT_LIMITS) as Array<keyof Limits>).map((key) => [
        key,
        z.number(expected('must be a number')).positive('must be positive').optional(),
      ]),
    ) as Record<keyof Limits, z.ZodOptional<z.ZodNumber>>,
  )
  .strict();

const webhooksSchema = z
  .object({
    retryDelaysMs: z.array(positiveMs).max(20, 'at most 20 retries').optional(),
    timeoutMs: positiveMs.optional(),
    maxBacklog: z.number().int().positive('must be positive').optional(),
    maxConcurrency: z.number().int().positive('must be positive').optional(),
  })
  .strict();

const mediaSchema = z
  .object({
    listenIp: ipv4.optional(),
    announcedIp: z.union([z.ipv4(), z.hostname()], { error: 'must be an IPv4 address or a host name' }).optional(),
    udpPort: port.optional(),
    portRange: z
      .tuple([port, port], { error: 'must be [first, last]' })
      .refine(([first, last]) => first > 0 && first <= last, 'must be [first, last] with 0 < first ≤ last')
      .optional(),
    tcpPort: z.union([port, z.literal(false)], { error: 'must be a port number or false' }).optional(),
    mediaStallMs: positiveMs.optional(),
    connectTimeoutMs: positiveMs.optional(),
    fastPath: z.enum(['native', 'typescript'], { error: 'must be native or typescript' }).optional(),
    workers: z
      .number(expected('must be a number of threads'))
      .int('must be a whole number')
      .nonnegative('must not be negative')
      .max(64, 'at most 64')
      .optional(),
  })
  .strict()
  .refine((media) => media.udpPort === undefined || media.portRange === undefined, {
    path: ['udpPort'],
    message: 'cannot be given with portRange (one port for all, or a port per connection)',
  });

/** turn:host:port?transport=udp|tcp, turns:host:port?transport=tcp (host a name or an IPv4 address). */
const TURN_URL = /^(turn:[A-Za-z0-9.-]+(:\d{1,5})?(\?transport=(udp|tcp))?|turns:[A-Za-z0-9.-]+(:\d{1,5})?(\?transport=tcp)?)$/;

const turnSchema = z
  .object({
    urls: z
      .array(
        z.string().regex(TURN_URL, 'must be turn:host:port?transport=udp|tcp or turns:host:port?transport=tcp'),
        expected('must be a list of TURN URLs'),
      )
      .min(1, 'must list at least one URL')
      .max(8, 'at most 8 URLs'),
    secret: z.string(expected('must be the TURN server’s shared secret')).min(16, 'must be at least 16 characters'),
    ttlSeconds: z.number(expected('must be a number of seconds')).int('must be a whole number').positive('must be positive').optional(),
  })
  .strict();

const clusterSchema = z
  .object({
    redisUrl: z.url({ protocol: /^rediss?$/, ...expected('must be a redis:// or rediss:// URL') }),
    nodeId: z.string(expected('must be a name')).min(1, 'must not be empty').max(128, 'at most 128 characters').optional(),
    leaseMs: positiveMs.optional(),
    internalAddress: ipv4.optional(),
    relayPort: port.optional(),
  })
  .strict();

const recordingSchema = z
  .object({
    dir: z.string(expected('must be a folder')).min(1, 'must be a folder'),
    onFileReady: z.string(expected('must be a shell command')).min(1, 'must be a shell command').optional(),
  })
  .strict();

const configFileSchema = z
  .object({
    listen: z.object({ host: ipv4.optional(), port: port.optional() }).strict().optional(),
    publicUrl: z
      .url({ protocol: /^https?$/, ...expected('must be the http(s) URL clients use, e.g. https://parley.example.com') })
      .optional(),
    behindProxy: z
      .array(
        z.union([z.ipv4(), z.cidrv4()], { error: 'must be an IPv4 address or CIDR range' }),
        expected('must be a list of proxy addresses'),
      )
      .optional(),
    tls: z
      .object({
        cert: z.string(expected('must be a file name')).min(1, 'must be a file name'),
        key: z.string(expected('must be a file name')).min(1, 'must be a file name'),
      })
      .strict()
      .optional(),
    apps: z.array(appSchema, expected('must be a list of apps')).min(1, 'must list at least one app'),
    heartbeatTimeoutMs: positiveMs.optional(),
    drainMs: z
      .number(expected('must be a number of milliseconds'))
      .int('must be a whole number')
      .nonnegative('must not be negative')
      .optional(),
    limits: limitsSchema.optional(),
    webhooks: webhooksSchema.optional(),
    media: mediaSchema.optional(),
    turn: turnSchema.optional(),
    cluster: clusterSchema.optional(),
    recording: recordingSchema.optional(),
    log: z
      .object({ level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).optional() })
      .strict()
      .optional(),
    demo: z.boolean(expected('must be true or false')).optional(),
  })
  .strict()
  .refine((config) => !config.cluster || !config.media?.workers, {
    path: ['media', 'workers'],
    message: 'cannot be given on a node of a cluster (its relay serves the streams of one media thread)',
  })
  .refine((config) => !config.publicUrl?.startsWith('https:') || config.tls || config.behindProxy, {
    path: ['publicUrl'],
    message: 'is https, so the server needs tls or a proxy in front (behindProxy)',
  });

/** What `parley start` runs: the server's options, TLS files to read, and how long shutdown drains. */
export interface LoadedConfig {
  options: ServerOptions;
  tls?: { cert: string; key: string };
  drainMs: number;
}

/** The environment variable that replaces `turn.secret`. */
const TURN_SECRET_ENV = 'PARLEY_TURN_SECRET';
/** The environment variable that replaces `cluster.redisUrl` (which may hold a password). */
const REDIS_URL_ENV = 'PARLEY_REDIS_URL';

/** Environment variables that replace an app's secrets: PARLEY_APP_<appID>_APP_SIGN and so on. */
const SECRET_ENV = {
  appSign: 'APP_SIGN',
  serverSecret: 'SERVER_SECRET',
  callbackSecret: 'CALLBACK_SECRET',
} as const;

/**
 * Parses and validates a configuration file's text. A failure's message has one line per problem,
 * `<file>: <key>: <problem>`.
 */
export function loadConfig(text: string, fileName: string, env: Record<string, string | undefined> = {}): Outcome<LoadedConfig> {
  let raw: unknown;
  try {
    raw = fileName.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    // Not the parser's whole message: it may quote the file, secrets included.
    const where = /position \d+|line \d+(, column \d+)?/.exec((err as Error).message)?.[0];
    return fail(
      ErrorCode.InvalidParameter,
      `${fileName}: not valid ${fileName.endsWith('.json') ? 'JSON' : 'YAML'}${where ? ` (at ${where})` : ''}`,
    );
  }
  const parsed = configFileSchema.safeParse(withSecretsFromEnv(raw, env));
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `${fileName}: ${keyOf(issue)}: ${issue.code === 'unrecognized_keys' ? 'is not a known key' : issue.message}`,
    );
    return fail(ErrorCode.InvalidParameter, lines.join('\n'));
  }
  const config = parsed.data;
  const ids = config.apps.map((app) => app.appID);
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
  if (repeated !== undefined) return fail(ErrorCode.InvalidParameter, `${fileName}: apps: appID ${repeated} is listed twice`);
  return ok({
    options: {
      host: config.listen?.host ?? '0.0.0.0',
      port: config.listen?.port ?? DEFAULT_PORT,
      apps: config.apps,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      behindProxy: config.behindProxy,
      publicUrl: config.publicUrl,
      limits: config.limits,
      webhooks: config.webhooks,
      media: withMediaPorts(config.media ?? {}),
      turn: config.turn,
      cluster: config.cluster,
      recording: config.recording,
      logLevel: config.log?.level,
      staticDir: config.demo ? undefined : false,
    },
    tls: config.tls,
    drainMs: config.drainMs ?? 30_000,
  });
}

/** The key an issue is about, as written in the file: `apps[0].appSign`, `media.portRange`. */
function keyOf(issue: z.core.$ZodIssue): string {
  const path = issue.path.reduce<string>(
    (key, part) => (typeof part === 'number' ? `${key}[${part}]` : key ? `${key}.${String(part)}` : String(part)),
    '',
  );
  // An unknown key is reported on the object that holds it.
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => (path ? `${path}.${k}` : k)).join(', ');
  return path || '(top level)';
}

/** Production defaults: media on UDP port 7882 (all clients) and ICE-TCP on 7881, as LiveKit's. */
const DEFAULT_UDP_PORT = 7882;
const DEFAULT_TCP_PORT = 7881;

function withMediaPorts({ udpPort, tcpPort, ...media }: z.infer<typeof mediaSchema>): ServerOptions['media'] {
  return {
    ...media,
    ...(media.portRange ? {} : { udpPort: udpPort ?? DEFAULT_UDP_PORT }),
    ...(tcpPort === false ? {} : { tcpPort: tcpPort ?? DEFAULT_TCP_PORT }),
  };
}

function withSecretsFromEnv(raw: unknown, env: Record<string, string | undefined>): unknown {
  if (!raw || typeof raw !== 'object') return raw;
  const config = raw as { apps?: unknown; turn?: unknown; cluster?: unknown };
  const redisUrl = env[REDIS_URL_ENV];
  const cluster =
    redisUrl !== undefined && config.cluster && typeof config.cluster === 'object' ? { ...config.cluster, redisUrl } : config.cluster;
  const turnSecret = env[TURN_SECRET_ENV];
  const turn =
    turnSecret !== undefined && config.turn && typeof config.turn === 'object' ? { ...config.turn, secret: turnSecret } : config.turn;
  const apps = Array.isArray(config.apps)
    ? config.apps.map((app: unknown) => {
        if (!app || typeof app !== 'object') return app;
        const appID = (app as { appID?: unknown }).appID;
        const secrets = Object.entries(SECRET_ENV).flatMap(([key, suffix]) => {
          const value = env[`PARLEY_APP_${String(appID)}_${suffix}`];
          return value === undefined ? [] : [[key, value]];
        });
        return { ...app, ...Object.fromEntries(secrets) };
      })
    : config.apps;
  return { ...config, apps, turn, ...(cluster !== undefined && { cluster }) };
}
