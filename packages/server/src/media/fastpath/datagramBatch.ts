/**
 * Sends on a UDP socket of Node's through the native addon: the datagrams queued during one turn
 * of the event loop leave together at its end (setImmediate: after every datagram the loop read
 * this turn, a frame's packets, has been forwarded). Each destination's then go in as few messages
 * as UDP GSO allows: a frame's packets to one player as one, which the kernel cuts up after its
 * send path, once. What the socket's buffer cannot take now goes through Node's own send, which
 * queues it.
 */
import { createSocket, type Socket } from 'node:dgram';

/** Sends datagrams[0..count); returns how many it could not send now, marked 1 in `unsent`. */
export type SendBatch = (
  fd: number,
  datagrams: Buffer[],
  count: number,
  addresses: Uint32Array,
  ports: Uint16Array,
  unsent: Uint8Array,
) => number;

/** The largest batch: a turn's sends beyond it start the next one. */
const MAX_BATCH = 1024;

type SocketState = { handle?: { fd?: number } | null };

/** Node keeps a dgram socket's handle (and its descriptor) under a private symbol: the native path needs this Node's. */
const STATE = (() => {
  const socket = createSocket('udp4');
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = key && (socket as unknown as Record<symbol, SocketState | undefined>)[key];
  const found = typeof state?.handle?.fd === 'number' ? key : undefined;
  socket.close();
  return found;
})();

/** Whether this Node's dgram sockets show their descriptors (checked once; else the TypeScript path runs). */
export const socketDescriptorsReadable = STATE !== undefined;

/** The file descriptor of a bound dgram socket, or -1 once it is closed. */
function descriptor(socket: Socket): number {
  const fd = (socket as unknown as Record<symbol, SocketState | undefined>)[STATE!]?.handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

export class DatagramBatch {
  private readonly datagrams: Buffer[] = [];
  private readonly addresses = new Uint32Array(MAX_BATCH);
  private readonly ports = new Uint16Array(MAX_BATCH);
  private readonly unsent = new Uint8Array(MAX_BATCH);
  /** Of `datagrams`, the first `count` wait; the rest are old entries, reused. */
  private count = 0;
  private readonly hosts: string[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly sendBatch: SendBatch,
  ) {}

  /** Queues `datagram` for `ipv4` (the address as a number, see `ipv4Number`) and `port`; `host` is the same address as text. */
  push(datagram: Buffer, ipv4: number, host: string, port: number): void {
    if (this.count === MAX_BATCH) this.flush();
    const i = this.count++;
    if (i === 0) setImmediate(this.flushLater);
    this.datagrams[i] = datagram;
    this.hosts[i] = host;
    this.addresses[i] = ipv4;
    this.ports[i] = port;
  }

  private readonly flushLater = (): void => this.flush();

  private flush(): void {
    const { count, datagrams } = this;
    if (count === 0) return;
    this.count = 0;
    const fd = descriptor(this.socket);
    if (fd < 0) return; // closed: nothing more leaves it
    const { unsent } = this;
    let left = count;
    unsent.fill(1, 0, count);
    try {
      left = this.sendBatch(fd, datagrams, count, this.addresses, this.ports, unsent);
    } finally {
      for (let i = 0; left > 0 && i < count; i++) {
        if (unsent[i] === 0) continue;
        this.socket.send(datagrams[i]!, this.ports[i]!, this.hosts[i]!);
        left--;
      }
      datagrams.fill(undefined as unknown as Buffer, 0, count);
    }
  }
}

/** An IPv4 address in dotted form as a 32-bit number, -1 for anything else. */
export function ipv4Number(host: string): number {
  const parts = host.split('.');
  if (parts.length !== 4) return -1;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return -1;
    value = value * 256 + Number(part);
  }
  return value;
}
