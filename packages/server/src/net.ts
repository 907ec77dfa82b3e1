import { networkInterfaces } from 'node:os';

/** The first non-internal IPv4 address, for media when signalling listens on all interfaces. */
export function localIPv4(): string {
  for (const infos of Object.values(networkInterfaces())) {
    for (const info of infos ?? []) if (info.family === 'IPv4' && !info.internal) return info.address;
  }
  return '127.0.0.1';
}
