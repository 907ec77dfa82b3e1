/**
 * A node's lease on its place in the cluster, and what follows from the leases of all: the node
 * registry with each node's load, and the sweep of the sessions of nodes whose lease lapsed.
 *
 * The lease is a key holding the node's epoch (a number that grows each time the node takes a
 * lease), renewed at a third of its length. The store's writes are fenced by it: a node that was
 * paused past its lease changes nothing when it wakes; it takes a new lease and lets go of what it
 * held that the cluster ended meanwhile. A node whose lease has lapsed for a heartbeat timeout is
 * dead: its sessions, unless resumed on another node meanwhile, are ended once, by whichever node
 * pops each from the dead node's set.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import type { RelayAddress } from '../media/index.js';
import type { RedisClient } from '../rooms/store/redisRoomStore.js';
import { LuaScript } from '../rooms/store/redisScripts.js';

/** A session as the cluster's ownership index names it: `<appID>/<sessionID>`. */
export interface HeldSession {
  appID: number;
  sessionID: string;
}

export interface NodeLoad {
  sessions: number;
  /** RTP packets received and sent per second, over the last renewal period. */
  packetsPerSecond: number;
  /** The event loop's mean delay over the last renewal period (ms). */
  eventLoopDelayMs: number;
}

export interface NodeLeaseOptions {
  nodeId: string;
  leaseMs: number;
  heartbeatTimeoutMs: number;
  prefix?: string;
}

export interface NodeLeaseHandlers {
  /** The lease lapsed while the node was away: it holds a new one now; what it held may be gone. */
  renewed(): void;
  /** A dead node's session this node is to end, unless it resumed here meanwhile: false then. */
  sweep(session: HeldSession): Promise<boolean>;
  /** A session of this node resumed on another node: this node lets go of it (its session goes on there). */
  moved(session: HeldSession): void;
  load(): NodeLoad;
  /** The apps this node serves now: the nodes of a cluster must agree on their secrets. */
  apps(): AppConfig[];
  /** Where this node takes relays of its streams. */
  relay: RelayAddress | undefined;
}

/** What the registry shows of a node: its epoch, when it last renewed, its load, a digest of each app's secrets, and where it takes relays. */
interface RegistryEntry extends NodeLoad {
  epoch: number;
  renewedAt: number;
  apps: Record<string, string>;
  relay?: RelayAddress;
}

/** A digest of an app's secrets: nodes compare them without showing them. */
const secretsDigest = (app: AppConfig): string =>
  createHash('sha256')
    .update(`${app.appSign}\n${app.serverSecret}\n${app.callbackSecret ?? ''}`)
    .digest('hex')
    .slice(0, 32);

/** KEYS: lease. ARGV: epoch, lease ms. 1 when renewed, 0 when the lease holds another epoch or none. */
const RENEW = new LuaScript(
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`,
  false,
);

/**
 * KEYS: the dead node's sessions, session owners, this node's sessions. ARGV: the dead node, this
 * node. Takes one of the dead node's sessions over (this node is its owner until it has ended
 * it: if this node dies meanwhile, the next sweep ends it); false when none is left, an empty
 * string for one that resumed on another node.
 */
const TAKE_OVER = new LuaScript(
  `
local key = redis.call('SPOP', KEYS[1])
if not key then return false end
if redis.call('HGET', KEYS[2], key) ~= ARGV[1] then return '' end
redis.call('HSET', KEYS[2], key, ARGV[2])
redis.call('SADD', KEYS[3], key)
return key
`,
  false,
);

/** KEYS: session owners, this node's sessions. ARGV: session, node. Sets the owner; returns the one before, if any. */
const HOLD = new LuaScript(
  `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return previous
`,
  false,
);

/** KEYS: session owners, the node's sessions. ARGV: session, node. Forgets the owner only if it is still that node. */
const RELEASE = new LuaScript(
  `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`,
  false,
);

const sessionKey = ({ appID, sessionID }: HeldSession): string => `${appID}/${sessionID}`;

export class NodeLease {
  private epochValue = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly keys;
  private handlers: NodeLeaseHandlers = {
    renewed: () => {},
    sweep: () => Promise.resolve(true),
    moved: () => {},
    load: () => ({ sessions: 0, packetsPerSecond: 0, eventLoopDelayMs: 0 }),
    apps: () => [],
    relay: undefined,
  };

  constructor(
    private readonly redis: RedisClient,
    /** A connection of its own for this node's inbox (a subscribed connection sends nothing else). */
    private readonly subscriber: RedisClient,
    private readonly options: NodeLeaseOptions,
    private readonly log: Logger,
  ) {
    const prefix = options.prefix ?? 'parley';
    this.keys = {
      lease: (nodeId: string) => `${prefix}:node:${nodeId}`,
      epochs: `${prefix}:node-epochs`,
      nodes: `${prefix}:nodes`,
      deadSince: `${prefix}:nodes-dead-since`,
      sessions: (nodeId: string) => `${prefix}:node-sessions:${nodeId}`,
      owners: `${prefix}:session-owners`,
      inbox: (nodeId: string) => `${prefix}:node-inbox:${nodeId}`,
    };
  }

  /** This node's lease key, which fences the store's writes. */
  get key(): string {
    return this.keys.lease(this.options.nodeId);
  }

  epoch(): string {
    return this.epochValue;
  }

  /** Takes a lease with a new epoch and renews it until `stop()`; refuses (throws) if a live node serves an app with other secrets. */
  async start(handlers: NodeLeaseHandlers): Promise<void> {
    this.handlers = handlers;
    await this.checkSecrets();
    await this.subscriber.subscribe(this.keys.inbox(this.options.nodeId), (text) => this.onInbox(text));
    await this.acquire();
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.options.leaseMs / 3)));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** This node holds the session now; a node that held it before is told to let go (the session resumed here). */
  held(session: HeldSession): void {
    const { nodeId } = this.options;
    const key = sessionKey(session);
    void this.runScript(HOLD, [this.keys.owners, this.keys.sessions(nodeId)], [key, nodeId])
      .then(async (previous) => {
        if (typeof previous === 'string' && previous !== nodeId)
          await this.redis.publish(this.keys.inbox(previous), JSON.stringify({ moved: key }));
      })
      .catch((err: unknown) => this.log.warn({ err, ...session }, 'session ownership not recorded'));
  }

  private runScript(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    const call = { keys, arguments: args };
    return this.redis.evalSha(script.sha1, call).catch(() => this.redis.eval(script.source, call));
  }

  private onInbox(text: string): void {
    let key: unknown;
    try {
      key = (JSON.parse(text) as { moved?: unknown }).moved;
    } catch {}
    const [appID, sessionID] = typeof key === 'string' ? key.split('/') : [];
    if (appID && /^\d+$/.test(appID) && sessionID) this.handlers.moved({ appID: Number(appID), sessionID });
    else this.log.warn({ text: text.slice(0, 200) }, 'unreadable node message skipped');
  }

  released(session: HeldSession): void {
    this.release(sessionKey(session));
  }

  private release(key: string): void {
    const { nodeId } = this.options;
    void this.runScript(RELEASE, [this.keys.owners, this.keys.sessions(nodeId)], [key, nodeId]).catch((err: unknown) =>
      this.log.warn({ err, key }, 'session ownership not released'),
    );
  }

  private async acquire(): Promise<void> {
    const { nodeId, leaseMs } = this.options;
    this.epochValue = String(await this.redis.hIncrBy(this.keys.epochs, nodeId, 1));
    await this.redis.set(this.keys.lease(nodeId), this.epochValue, { PX: leaseMs });
    await this.redis.hDel(this.keys.deadSince, nodeId);
    await this.register();
  }

  private async register(): Promise<void> {
    const apps = Object.fromEntries(this.handlers.apps().map((app) => [app.appID, secretsDigest(app)]));
    const entry: RegistryEntry = {
      epoch: Number(this.epochValue),
      renewedAt: Date.now(),
      ...this.handlers.load(),
      apps,
      ...(this.handlers.relay && { relay: this.handlers.relay }),
    };
    await this.redis.hSet(this.keys.nodes, this.options.nodeId, JSON.stringify(entry));
  }

  /** Where a live node takes relays; undefined for a node whose lease lapsed, or that the registry does not show. */
  async relayAddressOf(nodeId: string): Promise<RelayAddress | undefined> {
    const [live, json] = await Promise.all([this.redis.exists(this.keys.lease(nodeId)), this.redis.hGet(this.keys.nodes, nodeId)]);
    if (!live || !json) return undefined;
    const relay = this.readEntry(nodeId, json)?.relay;
    return relay && typeof relay.host === 'string' && Number.isInteger(relay.port) ? relay : undefined;
  }

  /** A registry entry, or undefined (logged) when it cannot be read. */
  private readEntry(nodeId: string, json: string): Partial<RegistryEntry> | undefined {
    try {
      const entry = JSON.parse(json) as unknown;
      if (typeof entry === 'object' && entry !== null) return entry as Partial<RegistryEntry>;
    } catch {}
    this.log.warn({ nodeId }, 'unreadable node registry entry skipped');
    return undefined;
  }

  /** Tokens, resume proofs and API signatures must verify on every node: a node with other secrets for an app does not join. */
  private async checkSecrets(): Promise<void> {
    const mine = new Map(this.handlers.apps().map((app) => [String(app.appID), secretsDigest(app)]));
    for (const [nodeId, json] of Object.entries(await this.redis.hGetAll(this.keys.nodes))) {
      if (nodeId === this.options.nodeId || !(await this.redis.exists(this.keys.lease(nodeId)))) continue;
      const entry = this.readEntry(nodeId, json);
      for (const [appID, digest] of Object.entries(entry?.apps ?? {})) {
        if (mine.has(appID) && mine.get(appID) !== digest) {
          throw new Error(`apps: app ${appID} has other secrets than on node ${nodeId} of the cluster; give every node the same apps`);
        }
      }
    }
  }

  private async tick(): Promise<void> {
    try {
      const renewed = await this.runScript(RENEW, [this.key], [this.epochValue, String(this.options.leaseMs)]);
      if (renewed !== 1) {
        this.log.error({ nodeId: this.options.nodeId, epoch: this.epochValue }, 'lease lapsed: taking a new one');
        await this.acquire();
        this.handlers.renewed();
        return;
      }
      await this.register();
      await this.sweepDeadNodes();
    } catch (err) {
      this.log.debug({ err }, 'lease renewal failed');
    }
  }

  private async sweepDeadNodes(): Promise<void> {
    const now = Date.now();
    for (const nodeId of await this.redis.hKeys(this.keys.nodes)) {
      if (nodeId === this.options.nodeId || (await this.redis.exists(this.keys.lease(nodeId)))) continue;
      await this.redis.hSetNX(this.keys.deadSince, nodeId, String(now));
      const since = Number(await this.redis.hGet(this.keys.deadSince, nodeId));
      if (now - since < this.options.heartbeatTimeoutMs) continue;
      // Each session is taken over by one node only: one end, one logout event.
      const take = (): Promise<unknown> =>
        this.runScript(
          TAKE_OVER,
          [this.keys.sessions(nodeId), this.keys.owners, this.keys.sessions(this.options.nodeId)],
          [nodeId, this.options.nodeId],
        );
      for (let key = await take(); typeof key === 'string'; key = await take()) {
        if (key === '') continue; // resumed elsewhere
        const [appID, sessionID] = key.split('/') as [string, string];
        const readable = /^\d+$/.test(appID) && sessionID;
        if (!readable) this.log.warn({ key }, 'unreadable session of a dead node skipped');
        if (!readable || (await this.handlers.sweep({ appID: Number(appID), sessionID }))) this.release(key);
      }
      this.log.info({ nodeId, deadForMs: now - since }, 'dead node swept');
      await this.redis.hDel(this.keys.nodes, nodeId);
      await this.redis.hDel(this.keys.deadSince, nodeId);
    }
  }
}
