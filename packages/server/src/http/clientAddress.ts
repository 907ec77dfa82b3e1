/**
 * The address a request really came from. Behind a reverse proxy (nginx, Caddy) the socket's peer
 * is the proxy; the proxy appends the client's address to X-Forwarded-For. That header is
 * believed only from the listed proxies, and read from the right: the first address not itself a
 * trusted proxy is the client (anything further left was written by the client and proves nothing).
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Addresses and CIDR ranges of trusted proxies, as `behindProxy` lists them. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address, bits] = entry.split('/') as [string, string | undefined];
      const family = isIPv6(address) ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(bits), family);
    }
    this.empty = entries.length === 0;
  }

  has(address: string): boolean {
    const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    if (isIPv4(plain)) return this.list.check(plain, 'ipv4');
    return isIPv6(plain) && this.list.check(plain, 'ipv6');
  }

  /** The client's address for `req`: the socket's peer, or what a trusted proxy says it forwarded for. */
  clientAddress(req: IncomingMessage): string {
    const peer = req.socket.remoteAddress ?? '';
    if (this.empty || !this.has(peer)) return peer;
    const header = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== '');
    // From the right: the first hop not a trusted proxy is the client. One that is not an address
    // (a port appended, "unknown") ends the walk at the last trusted hop: nothing left of it counts.
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (!isIPv4(hop) && !isIPv6(hop)) return client;
      client = hop;
      if (!this.has(hop)) return hop;
    }
    return client;
  }
}
