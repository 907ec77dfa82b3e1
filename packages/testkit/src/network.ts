/**
 * Impaired networks for tests: each host is a network namespace joined to this one by a veth
 * pair, with private addresses that exist only inside this machine. The server listens in this
 * namespace on an address of its own (on loopback); a host's link to it can be capped (tbf) and
 * made to lose packets (iptables statistic, dropped where the packets arrive as real loss would
 * be: a drop on OUTPUT makes sendto() fail instead) and delayed (NFQUEUE to our delay program,
 * see delay.ts: the kernel has no netem). Hosts can also reach one another through
 * this namespace (`routeBetweenHosts`), for calls that do not go through the server.
 *
 * Everything is named after this process's pid, so a run that crashed is swept by the next one,
 * and `close()` (also called on exit) removes what was made even when a test fails.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketDelay } from './delay.js';

const NETNS_PREFIX = 'parley-';
/** Interface names are at most 15 characters: "pl" + pid in base 36 (≤ 5) + "h"/"c" + host index. */
const tag = (pid: number): string => `pl${pid.toString(36)}`;

function run(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryRun(command: string, ...args: string[]): void {
  try {
    run(command, ...args);
  } catch {
    // already gone
  }
}

/** Whether process `pid` runs (a crashed run's leftovers are swept by the next). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Where loss rules go in this namespace: the raw table's PREROUTING, which packets to this
 * namespace and packets it forwards from one host to another both cross.
 */
const LOSS_CHAIN = ['-t', 'raw', 'PREROUTING'] as const;

/** Where counters of what this machine sends go: the raw table's OUTPUT, which every packet made here crosses. */
const SENT_CHAIN = ['-t', 'raw', 'OUTPUT'] as const;

type Chain = typeof LOSS_CHAIN | typeof SENT_CHAIN;

/** The iptables rules of one of this namespace's chains, as `-A` lines. */
const rulesIn = (chain: Chain): string[] => run('iptables', chain[0], chain[1], '-S', chain[2]).split('\n');

/** Deletes a rule listed by `rulesIn` (whose quoted arguments, such as a u32 match, are one argument each). */
const deleteRule = (chain: Chain, rule: string): void =>
  tryRun(
    'iptables',
    chain[0],
    chain[1],
    ...(rule.replace(/^-A /, '-D ').match(/"[^"]*"|\S+/g) ?? []).map((arg) => arg.replace(/^"(.*)"$/, '$1')),
  );

/** Deletes the rules a process's networks added to this namespace. */
function deleteOwnRules(pid: number): void {
  for (const chain of [LOSS_CHAIN, SENT_CHAIN]) {
    for (const rule of rulesIn(chain).filter((line) => line.includes(`--comment ${tag(pid)}-`))) deleteRule(chain, rule);
  }
}

/** Removes what a process made: its namespaces (their veth pairs go with them), rules and server addresses. */
function sweep(pid: number): void {
  for (const ns of run('ip', 'netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => name.startsWith(`${NETNS_PREFIX}${pid}-`))) {
    tryRun('ip', 'netns', 'delete', ns);
  }
  deleteOwnRules(pid);
  for (const line of run('ip', '-o', '-4', 'addr', 'show', 'dev', 'lo').split('\n')) {
    // `ip -o` ends the label with a backslash: take only the label's characters.
    const match = / inet (\S+) .* lo:(pl[0-9a-z]+)/.exec(line);
    if (match && match[2] === tag(pid)) tryRun('ip', 'addr', 'del', match[1]!, 'dev', 'lo');
  }
}

/** Sweeps what crashed runs left behind. */
function sweepStale(): void {
  const pids = new Set<number>();
  for (const line of run('ip', 'netns', 'list').split('\n')) {
    const match = new RegExp(`^${NETNS_PREFIX}(\\d+)-`).exec(line);
    if (match) pids.add(Number(match[1]));
  }
  for (const line of [...rulesIn(LOSS_CHAIN), ...rulesIn(SENT_CHAIN)]) {
    const match = /--comment pl([0-9a-z]+)-/.exec(line);
    if (match) pids.add(parseInt(match[1]!, 36));
  }
  for (const line of run('ip', '-o', '-4', 'addr', 'show', 'dev', 'lo').split('\n')) {
    const match = / lo:pl([0-9a-z]+)/.exec(line);
    if (match) pids.add(parseInt(match[1]!, 36));
  }
  for (const pid of pids) if (pid !== process.pid && !processAlive(pid)) sweep(pid);
}

export interface LinkShape {
  /** Rate cap in kbit/s (tbf); undefined for none. */
  rateKbit?: number;
  /** Random loss, 0..1 (iptables statistic); 0 or undefined for none. */
  loss?: number;
}

type Direction = 'down' | 'up';

/** How a host is linked to its upstream: the server's namespace, or a router host's LAN. */
interface Link {
  /** The upstream namespace; undefined for the server's. */
  upstream?: string;
  /** The interface on the upstream side, and inside the host's namespace. */
  upstreamLink: string;
  hostLink: string;
  upstreamIp: string;
  ip: string;
  prefixLength: number;
}

/** The LAN behind a router host: 192.168.1.0/24 in every home, as most home routers hand out. */
const LAN = { router: '192.168.1.1', host: '192.168.1.2', prefixLength: 24 };

/** One namespace on the far side of a link to the server's namespace (or to a router host's LAN). */
export class TestHost {
  readonly ip: string;
  private readonly rootIp: string;
  private readonly upstream: string | undefined;
  private readonly rootLink: string;
  private readonly hostLink: string;
  private readonly shapes: Record<Direction, LinkShape> = { down: {}, up: {} };
  private udpCut = false;
  private lanHost: TestHost | undefined;
  private readonly delays: Partial<Record<Direction, { ms: number; delay: PacketDelay }>> = {};

  constructor(
    readonly namespace: string,
    link: Link,
    private readonly rulesTag: string,
  ) {
    ({ upstream: this.upstream, upstreamLink: this.rootLink, hostLink: this.hostLink, upstreamIp: this.rootIp, ip: this.ip } = link);
    const up = this.upstream ? ['-n', this.upstream] : [];
    run('ip', ...up, 'link', 'add', this.rootLink, 'type', 'veth', 'peer', 'name', this.hostLink, 'netns', namespace);
    run('ip', ...up, 'addr', 'add', `${this.rootIp}/${link.prefixLength}`, 'dev', this.rootLink);
    run('ip', ...up, 'link', 'set', this.rootLink, 'up');
    run('ip', '-n', namespace, 'link', 'set', 'lo', 'up');
    run('ip', '-n', namespace, 'addr', 'add', `${this.ip}/${link.prefixLength}`, 'dev', this.hostLink);
    run('ip', '-n', namespace, 'link', 'set', this.hostLink, 'up');
    run('ip', '-n', namespace, 'route', 'add', 'default', 'via', this.rootIp);
  }

  /**
   * Makes this host a router with a LAN of its own (192.168.1.0/24) and one host on it, which
   * reaches everything through this one. Without `masquerade` or `forwardAllTo`, nothing outside
   * has a route to the LAN.
   */
  addLanHost(): TestHost {
    if (this.lanHost) throw new Error('a router host has one LAN host');
    const namespace = `${this.namespace}l`;
    run('ip', 'netns', 'add', namespace);
    const suffix = this.namespace.split('-').pop()!;
    this.lanHost = new TestHost(
      namespace,
      {
        upstream: this.namespace,
        upstreamLink: `${this.rulesTag.split('-')[0]}r${suffix}`,
        hostLink: `${this.rulesTag.split('-')[0]}l${suffix}`,
        upstreamIp: LAN.router,
        ip: LAN.host,
        prefixLength: LAN.prefixLength,
      },
      `${this.rulesTag}l`,
    );
    run('ip', 'netns', 'exec', this.namespace, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    return this.lanHost;
  }

  /** A home router: what the LAN sends out leaves from this host's address, from ports of its choosing (NAPT). */
  masquerade(): void {
    run(...iptablesIn(this.namespace), '-t', 'nat', '-A', 'POSTROUTING', '-o', this.hostLink, '-j', 'MASQUERADE');
  }

  /**
   * The router's NAT maps what the LAN sends out to `address` from now on (one of this host's),
   * UDP and TCP from `ports` (a range, "20000-29999") when given, and forgets the flows it had
   * mapped (its connection tracking flushed): what a router does when its ISP hands it another
   * address, or when it restarts. Replaces `masquerade` and an earlier `snat`.
   */
  snat(address: string, ports?: string): void {
    const iptables = [...iptablesIn(this.namespace), '-t', 'nat'] as const;
    run(...iptables, '-F', 'POSTROUTING');
    if (ports) {
      for (const protocol of ['udp', 'tcp']) {
        run(...iptables, '-A', 'POSTROUTING', '-o', this.hostLink, '-p', protocol, '-j', 'SNAT', '--to-source', `${address}:${ports}`);
      }
    }
    run(...iptables, '-A', 'POSTROUTING', '-o', this.hostLink, '-j', 'SNAT', '--to-source', address);
    run('ip', 'netns', 'exec', this.namespace, 'conntrack', '-F');
  }

  /** A second address of this host (a router's second WAN address), routed to it from upstream. */
  addWanAddress(): string {
    // Hosts use .4-.15 of the network's /24 and servers .1-.3: .200 + this host's own last octet is free.
    const octets = this.ip.split('.');
    const ip = [...octets.slice(0, 3), 200 + Number(octets[3])].join('.');
    run('ip', '-n', this.namespace, 'addr', 'add', `${ip}/32`, 'dev', this.hostLink);
    run('ip', ...(this.upstream ? ['-n', this.upstream] : []), 'route', 'add', `${ip}/32`, 'via', this.ip, 'dev', this.rootLink);
    return ip;
  }

  /** A 1:1 NAT: this host's address stands for the LAN host, all ports, both ways. */
  forwardAllTo(lanHost: TestHost): void {
    run(...iptablesIn(this.namespace), '-t', 'nat', '-A', 'PREROUTING', '-i', this.hostLink, '-j', 'DNAT', '--to-destination', lanHost.ip);
    run(
      ...iptablesIn(this.namespace),
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-o',
      this.hostLink,
      '-s',
      lanHost.ip,
      '-j',
      'SNAT',
      '--to-source',
      this.ip,
    );
  }

  /**
   * A firewall between the LAN and the outside: `no-udp` forwards no UDP either way; `tcp-443`
   * lets the LAN open TCP connections to port 443 only (and their replies back), nothing else.
   */
  firewall(policy: 'no-udp' | 'tcp-443'): void {
    const iptables = iptablesIn(this.namespace);
    if (policy === 'no-udp') {
      run(...iptables, '-A', 'FORWARD', '-p', 'udp', '-j', 'DROP');
      return;
    }
    run(...iptables, '-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
    run(...iptables, '-A', 'FORWARD', '-i', this.lanSide(), '-p', 'tcp', '--dport', '443', '-j', 'ACCEPT');
    run(...iptables, '-A', 'FORWARD', '-j', 'DROP');
  }

  private lanSide(): string {
    if (!this.lanHost) throw new Error('not a router: add a LAN host first');
    return this.lanHost.rootLink;
  }

  /** Server → host: the rate cap on our side's egress, the loss on the host's INPUT. */
  shapeDownlink(shape: LinkShape): void {
    this.shape('down', shape);
  }

  /** Host → server: the rate cap on the host's egress, the loss on our INPUT from its link. */
  shapeUplink(shape: LinkShape): void {
    this.shape('up', shape);
  }

  private shape(direction: Direction, shape: LinkShape): void {
    const old = this.shapes[direction];
    if (old.rateKbit !== shape.rateKbit) {
      const link = direction === 'down' ? this.rootLink : this.hostLink;
      const egressNetns = direction === 'down' ? (this.upstream ? ['-n', this.upstream] : []) : ['-n', this.namespace];
      if (old.rateKbit !== undefined) run('tc', ...egressNetns, 'qdisc', 'del', 'dev', link, 'root');
      if (shape.rateKbit !== undefined) run('tc', ...egressNetns, 'qdisc', 'add', 'dev', link, 'root', ...tbf(shape.rateKbit));
    }
    if ((old.loss ?? 0) !== (shape.loss ?? 0)) {
      const rule = (loss: number): string[] =>
        this.dropping(direction === 'down' ? this.hostLink : this.rootLink, [
          '-m',
          'statistic',
          '--mode',
          'random',
          '--probability',
          String(loss),
        ]);
      // Loss is dropped where the packets arrive: the host's namespace downlink (all of it is for
      // the host), ours uplink (for the server, or forwarded to another host).
      const [flag, table, chain] = direction === 'down' ? ['-t', 'filter', 'INPUT'] : LOSS_CHAIN;
      const iptables = iptablesIn(direction === 'down' ? this.namespace : this.upstream);
      if (old.loss) run(...iptables, flag, table, '-D', chain, ...rule(old.loss));
      if (shape.loss) run(...iptables, flag, table, '-I', chain, ...rule(shape.loss));
    }
    this.shapes[direction] = { ...shape };
  }

  /** Server → host: every packet arrives `ms` later (0: none), in order. */
  delayDownlink(ms: number): Promise<void> {
    return this.delay('down', ms);
  }

  /** Host → server: every packet leaves `ms` later (0: none), in order. */
  delayUplink(ms: number): Promise<void> {
    return this.delay('up', ms);
  }

  /**
   * Queues the direction's packets, in the host's namespace, to a delay program there: those that
   * arrive on its link (down) or leave on it (up), its own and those it routes for a LAN host.
   */
  private async delay(direction: Direction, ms: number): Promise<void> {
    const current = this.delays[direction];
    if ((current?.ms ?? 0) === ms) return;
    const queue = direction === 'down' ? 0 : 1;
    const chain = direction === 'down' ? 'PREROUTING' : 'POSTROUTING';
    const rule = [direction === 'down' ? '-i' : '-o', this.hostLink, '-m', 'comment', '--comment', this.rulesTag];
    // Without the program (between two delays) packets pass rather than wait.
    const target = ['-j', 'NFQUEUE', '--queue-num', String(queue), '--queue-bypass'];
    const insert = (action: '-A' | '-D'): void =>
      void run(...iptablesIn(this.namespace), '-t', 'mangle', action, chain, ...rule, ...target);
    if (current) {
      insert('-D');
      await current.delay.stop();
      delete this.delays[direction];
    }
    if (ms > 0) {
      this.delays[direction] = { ms, delay: await PacketDelay.start(this.namespace, queue, ms) };
      insert('-A');
    }
  }

  /**
   * Drops the STUN binding success responses the host sends to the server (type 0x0101 and the
   * magic cookie, first in the UDP payload): the server's own ICE checks go unanswered while the
   * host's checks, their answers and all media pass. Undone when the network closes.
   */
  dropStunResponsesToServer(): void {
    const stunResponse = ['-p', 'udp', '-m', 'u32', '--u32', '0>>22&0x3C@8>>16=0x0101&&0>>22&0x3C@12=0x2112A442'];
    run(...iptablesIn(this.upstream), LOSS_CHAIN[0], LOSS_CHAIN[1], '-I', LOSS_CHAIN[2], ...this.dropping(this.rootLink, stunResponse));
  }

  /**
   * Cuts (or restores) all UDP between the host and the server, both ways, each dropped where it
   * arrives: media and ICE checks stop while signalling (TCP) goes on.
   */
  cutUdp(cut: boolean): void {
    if (cut === this.udpCut) return;
    this.udpCut = cut;
    const action = cut ? '-I' : '-D';
    run(...iptablesIn(this.namespace), '-t', 'filter', action, 'INPUT', ...this.dropping(this.hostLink, ['-p', 'udp']));
    run(...iptablesIn(this.upstream), LOSS_CHAIN[0], LOSS_CHAIN[1], action, LOSS_CHAIN[2], ...this.dropping(this.rootLink, ['-p', 'udp']));
  }

  /** An iptables rule that drops what arrives on `link` and `match`es, tagged as this host's (close() deletes it). */
  private dropping(link: string, match: string[]): string[] {
    return ['-i', link, ...match, '-m', 'comment', '--comment', this.rulesTag, '-j', 'DROP'];
  }

  /** Packets the loss rule of one direction has dropped so far. */
  dropped(direction: Direction): number {
    const listing =
      direction === 'down'
        ? run(...iptablesIn(this.namespace), '-L', 'INPUT', '-v', '-n', '-x')
        : run(...iptablesIn(this.upstream), LOSS_CHAIN[0], LOSS_CHAIN[1], '-L', LOSS_CHAIN[2], '-v', '-n', '-x');
    return listing
      .split('\n')
      .filter((line) => line.includes('statistic') && line.includes(this.rulesTag))
      .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
  }

  /** Lets packets from this host be forwarded to the other hosts (the interface's own setting, not the machine's). */
  enableForwarding(): void {
    const setting = `net.ipv4.conf.${this.rootLink}.forwarding=1`;
    if (this.upstream) run('ip', 'netns', 'exec', this.upstream, 'sysctl', '-qw', setting);
    else run('sysctl', '-qw', setting);
  }

  /** Removes the host's namespace, and its LAN host's (their links and rules go with them). */
  close(): void {
    this.lanHost?.close();
    for (const { delay } of Object.values(this.delays)) void delay.stop();
    tryRun('ip', 'netns', 'delete', this.namespace);
  }

  /** Runs `argv` inside the host's namespace (e.g. as a browser's executable: see `executable`). */
  command(argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.namespace, ...argv];
  }
}

function iptablesIn(namespace: string | undefined): [string, ...string[]] {
  return namespace ? ['ip', 'netns', 'exec', namespace, 'iptables'] : ['iptables'];
}

/** A token bucket at `rateKbit` holding at most ~150 ms of queue, as a home router's uplink would. */
function tbf(rateKbit: number): string[] {
  const burstBytes = Math.max(4_000, Math.round((rateKbit * 1000) / 8 / 50)); // 20 ms at the rate, at least a few packets
  return ['tbf', 'rate', `${rateKbit}kbit`, 'burst', String(burstBytes), 'latency', '150ms'];
}

let networks = 0;
const open = new Set<TestNetwork>();
process.once('exit', () => {
  for (const network of open) network.close();
});

/** A server address plus hosts linked to it; needs root. */
export class TestNetwork {
  /** Where the server must listen: reachable from every host of this network. */
  readonly serverIp: string;
  private readonly id: number;
  private readonly hosts: TestHost[] = [];
  private readonly subnetBase: string;
  private readonly scratch = mkdtempSync(join(tmpdir(), 'parley-net-'));
  private closed = false;
  private counters = 0;
  private readonly extraAddresses: string[] = [];

  constructor() {
    sweepStale();
    this.id = networks++;
    // 10.<200..249>.<network>.x, chosen per process so parallel runs on one machine do not collide.
    this.subnetBase = `10.${200 + (process.pid % 50)}.${this.id % 256}`;
    this.serverIp = `${this.subnetBase}.1`;
    run('ip', 'addr', 'add', `${this.serverIp}/32`, 'dev', 'lo', 'label', `lo:${tag(process.pid)}`);
    open.add(this);
  }

  /** One more address on this namespace's loopback, reachable from every host (for a second server, a TURN server). */
  addServerAddress(): string {
    const ip = `${this.subnetBase}.${2 + this.extraAddresses.length}`;
    if (this.extraAddresses.length >= 2) throw new Error('a test network has at most 3 server addresses');
    run('ip', 'addr', 'add', `${ip}/32`, 'dev', 'lo', 'label', `lo:${tag(process.pid)}`);
    this.extraAddresses.push(ip);
    return ip;
  }

  /** A new namespace linked to the server's address. */
  addHost(): TestHost {
    const index = this.hosts.length;
    if (index >= 3) throw new Error('a test network has at most 3 hosts');
    const name = `${this.id}${index}`;
    const namespace = `${NETNS_PREFIX}${process.pid}-${name}`;
    run('ip', 'netns', 'add', namespace);
    // Host links follow the server's address (.1): .4/30, .8/30, .12/30.
    const first = 4 * (index + 1);
    const host = new TestHost(
      namespace,
      {
        upstreamLink: `${tag(process.pid)}h${name}`,
        hostLink: `${tag(process.pid)}c${name}`,
        upstreamIp: `${this.subnetBase}.${first + 1}`,
        ip: `${this.subnetBase}.${first + 2}`,
        prefixLength: 30,
      },
      `${tag(process.pid)}-${name}`,
    );
    this.hosts.push(host);
    return host;
  }

  /**
   * Lets the hosts reach one another through this namespace, each host's link shaped as for the
   * server (a call between two hosts crosses the sender's uplink and the receiver's downlink).
   */
  routeBetweenHosts(): void {
    for (const host of this.hosts) host.enableForwarding();
  }

  /**
   * Counts the packets this machine sends that match `match` (iptables match arguments), from now
   * until the network closes: a capture of traffic that must not happen. Returns the count so far.
   */
  countSent(match: string[]): () => number {
    const comment = `${tag(process.pid)}-sent${this.counters++}`;
    run('iptables', SENT_CHAIN[0], SENT_CHAIN[1], '-I', SENT_CHAIN[2], ...match, '-m', 'comment', '--comment', comment);
    return () =>
      run('iptables', SENT_CHAIN[0], SENT_CHAIN[1], '-L', SENT_CHAIN[2], '-v', '-n', '-x')
        .split('\n')
        .filter((line) => line.includes(`/* ${comment} */`))
        .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
  }

  /** An executable that runs `target` inside `host`'s namespace (for launchers that want one path). */
  executable(host: TestHost, target: string): string {
    const path = join(this.scratch, `${host.namespace}-${target.split('/').pop()}`);
    writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${host.namespace} ${target} "$@"\n`);
    chmodSync(path, 0o755);
    return path;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    for (const host of this.hosts) host.close();
    deleteOwnRules(process.pid);
    for (const ip of [this.serverIp, ...this.extraAddresses]) tryRun('ip', 'addr', 'del', `${ip}/32`, 'dev', 'lo');
    rmSync(this.scratch, { recursive: true, force: true });
  }
}
