/**
 * The forwarding path's sealing and sending: native (the addon in `native/`, built at install:
 * OpenSSL contexts kept per key, a turn's datagrams in sendmmsg, a destination's as UDP GSO messages) where it was built, else
 * TypeScript. Both give the same bytes; the server says at startup which one runs.
 */
import type { Socket } from 'node:dgram';
import { createRequire } from 'node:module';
import { DatagramBatch, socketDescriptorsReadable, type SendBatch } from './datagramBatch.js';
import type { SrtpGcmOpener } from '@parley/protocol/rtp';
import { TypeScriptGcmOpener, TypeScriptGcmSealer, type GcmSealer } from './gcmSealer.js';

export type FastPathKind = 'native' | 'typescript';

export interface FastPath {
  readonly kind: FastPathKind;
  /** Seals SRTP under one AES-128-GCM session key and salt. */
  gcmSealer(key: Buffer, salt: Buffer): GcmSealer;
  /** Opens SRTP under one AES-128-GCM session key and salt (what publishers and players send). */
  gcmOpener(key: Buffer, salt: Buffer): SrtpGcmOpener;
  /** Sends a datagram to `host` (`ipv4`: the same address as a number, -1 when it is not IPv4) and `port`. */
  send(socket: Socket, datagram: Buffer, ipv4: number, host: string, port: number): void;
  /** Whether a destination's datagrams leave as UDP GSO messages (until the kernel refuses one). */
  readonly gso: boolean;
}

interface Addon {
  GcmSealer: new (key: Buffer, salt: Buffer) => GcmSealer;
  GcmOpener: new (key: Buffer, salt: Buffer) => SrtpGcmOpener;
  sendBatch: SendBatch;
  gsoUsable(): boolean;
}

export const typeScriptFastPath: FastPath = {
  kind: 'typescript',
  gcmSealer: (key, salt) => new TypeScriptGcmSealer(key, salt),
  gcmOpener: (key, salt) => new TypeScriptGcmOpener(key, salt),
  send: (socket, datagram, _ipv4, host, port) => socket.send(datagram, port, host),
  gso: false,
};

function nativeFastPath(addon: Addon): FastPath {
  const batches = new WeakMap<Socket, DatagramBatch>();
  return {
    kind: 'native',
    gcmSealer: (key, salt) => new addon.GcmSealer(key, salt),
    gcmOpener: (key, salt) => new addon.GcmOpener(key, salt),
    send(socket, datagram, ipv4, host, port) {
      if (ipv4 < 0) {
        socket.send(datagram, port, host);
        return;
      }
      let batch = batches.get(socket);
      if (!batch) batches.set(socket, (batch = new DatagramBatch(socket, addon.sendBatch)));
      batch.push(datagram, ipv4, host, port);
    },
    get gso() {
      return addon.gsoUsable();
    },
  };
}

let loaded: { addon: Addon } | { reason: string } | undefined;

/** The addon, loaded once; the reason when it cannot be. */
function loadAddon(): { addon: Addon } | { reason: string } {
  if (!loaded) {
    try {
      // dist/media/fastpath/ → the package's build/Release/.
      const addon = createRequire(import.meta.url)('../../../build/Release/fastpath.node') as Addon;
      loaded = { addon };
    } catch (err) {
      loaded = { reason: (err as Error).message.split('\n')[0]! };
    }
  }
  return loaded;
}

/** The path to use: `prefer` native where the addon loads; `note` says which runs, and why not native. */
export function openFastPath(prefer: FastPathKind = 'native'): { fastPath: FastPath; note: string } {
  if (prefer === 'typescript') return { fastPath: typeScriptFastPath, note: 'TypeScript (as configured)' };
  const result = loadAddon();
  if ('reason' in result) return { fastPath: typeScriptFastPath, note: `TypeScript (the native addon did not load: ${result.reason})` };
  if (!socketDescriptorsReadable)
    return { fastPath: typeScriptFastPath, note: "TypeScript (this Node's UDP sockets do not show their descriptors)" };
  return {
    fastPath: nativeFastPath(result.addon),
    note: 'native (OpenSSL contexts per key for sealing and opening, sendmmsg with UDP GSO)',
  };
}
