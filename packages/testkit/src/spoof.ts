/**
 * Datagrams with another socket's source address and port, sent from this namespace (needs root
 * and iptables): what an attacker on a peer's network, or one that spoofs its source, can send.
 * The spoofing socket's datagrams are put in a connection-tracking zone of their own (raw table,
 * CT --zone) and their source rewritten there (nat table, SNAT): in the default zone the victim's
 * own flow has that very address pair, and SNAT would pick another port to keep flows apart.
 * Replies go to the victim, as they would to a spoofer.
 *
 * Rules carry a comment with this process's pid, so a crashed run's are swept by the next one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { processAlive } from './network.js';

const TAG = `plspoof${process.pid.toString(36)}`;
/** A zone no other rule uses. */
const ZONE = '7301';
const ACCOUNTING = '/proc/sys/net/netfilter/nf_conntrack_acct';

function iptables(...args: string[]): string {
  return execFileSync('iptables', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Deletes the rules of spoofing processes that no longer run. */
function sweepStale(): void {
  for (const [table, chain] of [
    ['raw', 'OUTPUT'],
    ['nat', 'POSTROUTING'],
    ['mangle', 'PREROUTING'],
  ] as const) {
    for (const rule of iptables('-t', table, '-S', chain).split('\n')) {
      const match = /--comment (plspoof([0-9a-z]+))/.exec(rule);
      if (!match) continue;
      const pid = parseInt(match[2]!, 36);
      if (pid === process.pid || processAlive(pid)) continue;
      // A tracking rule also names the flow accounting setting it found (see trackConnections).
      const accountingBefore = /--comment plspoof[0-9a-z]+-acct(\d)/.exec(rule)?.[1];
      if (accountingBefore !== undefined) writeFileSync(ACCOUNTING, accountingBefore);
      try {
        iptables('-t', table, ...rule.replace(/^-A /, '-D ').split(' '));
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Tracks connections in this namespace from now on until `close` (the kernel tracks them only
 * while some rule needs it), counting each flow's packets: flows that start meanwhile are listed
 * by `udpFlowsTo`.
 */
export function trackConnections(): { close(): void } {
  sweepStale();
  // Packet counts tell a peer connection's flow in use from its other candidates' checks. The
  // setting found (0 while connection tracking is not loaded yet) is noted in the rule, for the
  // next run to restore should this one crash.
  const accountingBefore = existsSync(ACCOUNTING) ? readFileSync(ACCOUNTING, 'utf8').trim() : '0';
  // A rule that only reads the connection state, and changes nothing.
  const rule = [
    'PREROUTING',
    '-m',
    'conntrack',
    '--ctstate',
    'INVALID',
    '-m',
    'comment',
    '--comment',
    `${TAG}-acct${accountingBefore}`,
    '-j',
    'RETURN',
  ];
  iptables('-t', 'mangle', '-A', ...rule);
  writeFileSync(ACCOUNTING, '1');
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      writeFileSync(ACCOUNTING, accountingBefore);
      try {
        iptables('-t', 'mangle', '-D', ...rule);
      } catch {
        // already gone
      }
    },
  };
}

/** The UDP flows from `host` to `host:port` that connection tracking knows: their source ports, and the packets each carried that way. */
export function udpFlowsTo(host: string, port: number): Array<{ port: number; packets: number }> {
  const ip = host.replaceAll('.', '\\.');
  const flow = new RegExp(`udp .*? src=${ip} dst=${ip} sport=(\\d+) dport=${port} (?:packets=(\\d+))?.* zone=0 `);
  const flows: Array<{ port: number; packets: number }> = [];
  for (const line of readFileSync('/proc/net/nf_conntrack', 'utf8').split('\n')) {
    const match = flow.exec(line);
    if (match) flows.push({ port: Number(match[1]), packets: Number(match[2] ?? 0) });
  }
  return flows;
}

export class SpoofingSocket {
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly rules: string[][],
  ) {}

  /** A socket on `source.host` whose datagrams leave with `source.host:source.port` as their source. */
  static async open(source: { host: string; port: number }): Promise<SpoofingSocket> {
    sweepStale();
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, source.host, resolve));
    const own = ['-p', 'udp', '-s', source.host, '--sport', String(socket.address().port), '-m', 'comment', '--comment', TAG];
    const rules = [
      ['-t', 'raw', 'OUTPUT', ...own, '-j', 'CT', '--zone', ZONE],
      ['-t', 'nat', 'POSTROUTING', ...own, '-j', 'SNAT', '--to-source', `${source.host}:${source.port}`],
    ];
    for (const [, table, chain, ...rule] of rules) iptables('-t', table!, '-A', chain!, ...rule);
    return new SpoofingSocket(socket, rules);
  }

  /** Sends `datagram` to `host:port`; resolves once the system took it. */
  send(datagram: Buffer, port: number, host: string): Promise<void> {
    return new Promise((resolve) => this.socket.send(datagram, port, host, () => resolve()));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    for (const [, table, chain, ...rule] of this.rules) {
      try {
        iptables('-t', table!, '-D', chain!, ...rule);
      } catch {
        // already gone
      }
    }
  }
}
