/**
 * One UDP socket for the ICE traffic of every peer connection (the single-port mode of LiveKit and
 * mediasoup): a firewall opens one port, and a large server does not run out of them. A datagram
 * finds its ICE agent by the local ufrag of a binding request's USERNAME, and otherwise by the
 * remote address such a request (or one of the agent's own checks) came from or went to.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindingRequestUfrag, isBindingRequest } from '@parley/protocol/rtp';
import type { MediaStats } from '../core/types.js';

export type Address = [host: string, port: number];

/** The socket werift's StunProtocol expects as its transport (werift's common `Transport`). */
export interface IceUdpSocket {
  readonly type: 'udp';
  readonly socketType: 'udp4';
  readonly address: { address: string; port: number };
  readonly closed: boolean;
  onData: (data: Buffer, addr: Address) => void;
  send(data: Buffer, addr: Address): Promise<void>;
  close(): Promise<void>;
}

/** Bigger than Linux's default (208 KiB): one socket takes what many took before. */
const SOCKET_BUFFER_BYTES = 8 * 1024 * 1024;

const addressKey = (host: string, port: number): string => `${host}:${port}`;

/**
 * An address of one agent's is given to another only when the first one's client has sent no
 * signed check from it for this long: clients check every few seconds (browsers about every
 * 2.5 s, werift every 4-6 s), so it has gone.
 */
const TAKEOVER_AFTER_MS = 15_000;

export class UdpMux {
  private readonly byUfrag = new Map<string, MuxedSocket>();
  private readonly byAddress = new Map<string, MuxedSocket>();

  private isClosed = false;

  private constructor(
    /** @internal */
    readonly socket: Socket,
    readonly ip: string,
    readonly port: number,
    private readonly stats: MediaStats,
    private readonly onError: (err: Error) => void,
  ) {
    socket.on('message', (data, remote) => this.route(data, remote));
    // A send to an unreachable candidate fails for that datagram only; the socket stays.
    socket.on('error', onError);
  }

  /** Binds `ip:port` (port 0: one the system picks). Datagrams that belong to no agent are counted in `stats`. */
  static async open(ip: string, port: number, stats: MediaStats, onError: (err: Error) => void): Promise<UdpMux> {
    const socket = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: ip, port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpMux(socket, ip, socket.address().port, stats, onError);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** A socket for one ICE agent, reached by binding requests to its `ufrags` (and to those `MuxedSocket.addUfrag` adds). */
  socketFor(ufrags: readonly string[]): MuxedSocket {
    const socket = new MuxedSocket(this);
    for (const ufrag of ufrags) socket.addUfrag(ufrag);
    return socket;
  }

  hasUfrag(ufrag: string): boolean {
    return this.byUfrag.has(ufrag);
  }

  private route(data: Buffer, remote: RemoteInfo): void {
    const key = addressKey(remote.address, remote.port);
    const ufrag = bindingRequestUfrag(data);
    let target = this.byAddress.get(key);
    if (ufrag !== undefined) {
      const now = performance.now();
      const named = this.byUfrag.get(ufrag);
      const signed = named?.signed(data, ufrag) ?? false;
      if (named && named !== target) {
        // A new address for the named agent, which only its own client can sign for. One another
        // agent has moves only once that agent's client has stopped checking from it: a user of
        // this server, signing for its own agent from a victim's address, must not take the
        // victim's media.
        target = signed && (!target || now - target.checkedAtMs.get(key)! >= TAKEOVER_AFTER_MS) ? named : undefined;
        if (target) this.learn(key, target, true);
      } else if (!named) {
        target = undefined;
      }
      if (target && signed) target.checkedAtMs.set(key, now);
    }
    if (!target) {
      this.stats.unroutableDatagrams++;
      return;
    }
    target.deliver(data, [remote.address, remote.port]);
  }

  /** @internal */
  registerUfrag(ufrag: string, socket: MuxedSocket): void {
    if (this.byUfrag.has(ufrag)) throw new Error(`ICE ufrag ${ufrag} is in use`);
    this.byUfrag.set(ufrag, socket);
  }

  /** @internal Ties `key` to `socket`; an address another agent has is taken over only when `takeOver`. */
  learn(key: string, socket: MuxedSocket, takeOver: boolean): void {
    const current = this.byAddress.get(key);
    if (current === socket || (current && !takeOver)) return;
    current?.checkedAtMs.delete(key);
    this.byAddress.set(key, socket);
    socket.checkedAtMs.set(key, -Infinity);
  }

  /** @internal */
  send(data: Buffer, [host, port]: Address, from: MuxedSocket): void {
    // An agent's checks go to addresses that answer it; its media goes only to addresses learned so.
    if (this.isClosed) return;
    if (isBindingRequest(data)) this.learn(addressKey(host, port), from, false);
    try {
      this.socket.send(data, port, host);
    } catch (err) {
      this.onError(err as Error); // a remote candidate's bad port, say
    }
  }

  /** @internal */
  forget(socket: MuxedSocket): void {
    for (const ufrag of socket.ufrags) if (this.byUfrag.get(ufrag) === socket) this.byUfrag.delete(ufrag);
    for (const key of socket.checkedAtMs.keys()) if (this.byAddress.get(key) === socket) this.byAddress.delete(key);
  }

  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    this.isClosed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** One ICE agent's share of the mux. */
export class MuxedSocket implements IceUdpSocket {
  readonly type = 'udp';
  readonly socketType = 'udp4';
  readonly ufrags = new Set<string>();
  /** Its addresses ("host:port"), and when a signed binding request last came from each. */
  readonly checkedAtMs = new Map<string, number>();
  onData: (data: Buffer, addr: Address) => void = () => undefined;
  /** Whether a binding request to `ufrag` carries a valid MESSAGE-INTEGRITY for this agent (set by its owner). */
  signed: (request: Buffer, ufrag: string) => boolean = () => false;
  private isClosed = false;

  constructor(private readonly mux: UdpMux) {}

  get address(): { address: string; port: number } {
    return { address: this.mux.ip, port: this.mux.port };
  }

  get closed(): boolean {
    return this.isClosed || this.mux.closed;
  }

  /** The shared socket, for the forwarding path's sends of media to an address this agent checked (as on werift's own UDP transport). */
  get socket(): Socket {
    return this.mux.socket;
  }

  /** The agent's credentials after an ICE restart: its earlier ufrags stay valid until it closes. */
  addUfrag(ufrag: string): void {
    this.mux.registerUfrag(ufrag, this);
    this.ufrags.add(ufrag);
  }

  /** @internal */
  deliver(data: Buffer, addr: Address): void {
    if (!this.isClosed) this.onData(data, addr);
  }

  async send(data: Buffer, addr: Address): Promise<void> {
    if (!this.isClosed) this.mux.send(data, addr, this);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.mux.forget(this);
  }
}
