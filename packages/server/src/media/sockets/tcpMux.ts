/**
 * One TCP port for ICE over TCP (RFC 6544 passive candidates) for every peer connection, for
 * clients whose networks block UDP. A client opens a connection and sends its first binding
 * request (RFC 4571 framing: a 16-bit length, then the message); the local ufrag of its USERNAME
 * names the ICE agent, which takes the connection from there.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { TcpPassiveProtocol } from 'werift';
import type { Address } from './udpMux.js';
import { bindingRequestUfrag, tcpProtocolInternals } from '@parley/protocol/rtp';
import type { MediaStats } from '../core/types.js';

/** A first frame is a binding request: a few hundred bytes. */
const MAX_FIRST_FRAME_BYTES = 1500;
/** Connections that have not yet named their agent, at most: over all, and from one address. */
const MAX_PENDING = 1000;
const MAX_PENDING_PER_ADDRESS = 20;

export class TcpMux {
  /** Each agent's passive protocol, and whether a binding request carries a valid MESSAGE-INTEGRITY for it. */
  private readonly byUfrag = new Map<string, { protocol: TcpPassiveProtocol; signed(request: Buffer): boolean }>();
  private readonly open = new Set<Socket>();
  /** Connections waiting for their first frame, by remote address. */
  private readonly pending = new Map<string, number>();
  private pendingTotal = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly stats: MediaStats,
    private readonly firstFrameTimeoutMs: number,
  ) {
    server.on('connection', (socket) => this.accept(socket));
    // An accept that fails (out of file descriptors) fails for that connection only.
    server.on('error', () => undefined);
  }

  /**
   * Listens on `ip:port` (port 0: one the system picks). A connection that sends no binding request
   * within `firstFrameTimeoutMs`, or names no agent here, is closed and counted in `stats`.
   */
  static async open(ip: string, port: number, stats: MediaStats, firstFrameTimeoutMs: number): Promise<TcpMux> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: ip, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('ICE-TCP server has no port');
    return new TcpMux(server, address.port, stats, firstFrameTimeoutMs);
  }

  hasUfrag(ufrag: string): boolean {
    return this.byUfrag.has(ufrag);
  }

  /** Connections whose first binding request is to `ufrag`, and `signed` for it, go to `protocol` until it closes. */
  addUfrag(ufrag: string, protocol: TcpPassiveProtocol, signed: (request: Buffer) => boolean): void {
    if (this.byUfrag.has(ufrag)) throw new Error(`ICE ufrag ${ufrag} is in use`);
    this.byUfrag.set(ufrag, { protocol, signed });
  }

  forget(protocol: TcpPassiveProtocol): void {
    for (const [ufrag, owner] of this.byUfrag) if (owner.protocol === protocol) this.byUfrag.delete(ufrag);
  }

  private accept(socket: Socket): void {
    const address = socket.remoteAddress ?? '';
    if (this.pendingTotal >= MAX_PENDING || (this.pending.get(address) ?? 0) >= MAX_PENDING_PER_ADDRESS) {
      this.stats.unroutableTcpConnections++;
      socket.destroy();
      return;
    }
    this.pendingTotal++;
    this.pending.set(address, (this.pending.get(address) ?? 0) + 1);
    let waiting = true;
    const named = (): void => {
      if (!waiting) return;
      waiting = false;
      this.pendingTotal--;
      const left = (this.pending.get(address) ?? 1) - 1;
      if (left > 0) this.pending.set(address, left);
      else this.pending.delete(address);
    };
    let received = Buffer.alloc(0);
    const refuse = (): void => {
      clearTimeout(timer);
      named();
      this.stats.unroutableTcpConnections++;
      socket.destroy();
    };
    const timer = setTimeout(refuse, this.firstFrameTimeoutMs);
    this.open.add(socket);
    socket.once('close', () => {
      clearTimeout(timer);
      named();
      this.open.delete(socket);
    });
    socket.on('error', () => undefined); // a reset by the client ends only this connection
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (length > MAX_FIRST_FRAME_BYTES) return refuse();
      if (received.length < 2 + length) return;
      clearTimeout(timer);
      named();
      socket.pause();
      socket.off('data', onData);
      const request = received.subarray(2, 2 + length);
      const ufrag = bindingRequestUfrag(request);
      const owner = ufrag === undefined ? undefined : this.byUfrag.get(ufrag);
      const remote = socket.remoteAddress && socket.remotePort ? ([socket.remoteAddress, socket.remotePort] as Address) : undefined;
      // Only the client knows the password: a ufrag seen on the wire does not open a connection to its agent.
      if (!owner?.signed(request) || !remote) return refuse();
      const { protocol } = owner;
      // The agent reads the connection from its first byte, this frame included.
      socket.unshift(received);
      tcpProtocolInternals(protocol).registerSocket(socket, remote);
      socket.resume();
    };
    socket.on('data', onData);
  }

  close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
