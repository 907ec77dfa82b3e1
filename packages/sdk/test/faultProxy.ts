/**
 * A TCP proxy on loopback in front of the server, for fault injection: it can cut connections
 * (and refuse new ones), blackhole them (accept, forward nothing, close nothing), delay them,
 * and restore normal service.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

type Mode = { kind: 'pass' } | { kind: 'cut' } | { kind: 'blackhole' } | { kind: 'delay'; ms: number };
interface Pair {
  client: Socket;
  upstream: Socket;
  /** Lost data while blackholed. */
  dead: boolean;
}

export class TcpFaultProxy {
  private mode: Mode = { kind: 'pass' };
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpFaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new TcpFaultProxy(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => proxy.accept(client, targetPort));
    return proxy;
  }

  /** The ws:// URL of a server at `url`, reached through this proxy. */
  url(serverUrl: string): string {
    const u = new URL(serverUrl);
    u.port = String(this.port);
    return u.toString();
  }

  /** Resets every connection and refuses new ones, as if the network went away. */
  cut(): void {
    this.mode = { kind: 'cut' };
    for (const pair of this.pairs) this.kill(pair);
  }

  /** Silently drops everything in both directions; connections stay open. */
  blackhole(): void {
    this.mode = { kind: 'blackhole' };
  }

  delay(ms: number): void {
    this.mode = { kind: 'delay', ms };
  }

  /** Back to normal. Connections that lost data while blackholed are dead: they are reset. */
  restore(): void {
    if (this.mode.kind === 'blackhole') for (const pair of this.pairs) this.kill(pair);
    this.mode = { kind: 'pass' };
  }

  get connections(): number {
    return this.pairs.size;
  }

  close(): Promise<void> {
    for (const pair of this.pairs) this.kill(pair);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    if (this.mode.kind === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, dead: this.mode.kind === 'blackhole' };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk) => {
        if (pair.dead || this.mode.kind === 'blackhole') {
          pair.dead = true; // once data is lost the byte stream can never be whole again
          return;
        }
        if (this.mode.kind === 'delay') setTimeout(() => to.write(chunk), this.mode.ms);
        else to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = (): void => this.kill(pair);
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }

  private kill(pair: Pair): void {
    this.pairs.delete(pair);
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }
}
