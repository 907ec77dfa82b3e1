import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';

/** The first non-internal IPv4 address, for media when signalling listens on all interfaces. */
export function localIPv4(): string {
  for (const infos of Object.values(networkInterfaces())) {
    for (const info of infos ?? []) if (info.family === 'IPv4' && !info.internal) return info.address;
  }
  return '127.0.0.1';
}

/**
 * The IPv4 address ICE candidates announce for `announced` (media.announcedIp): itself, or what a
 * host name resolves to at startup (browsers take addresses in candidates, not names).
 */
export async function announcedAddress(announced: string): Promise<string> {
  if (isIPv4(announced)) return announced;
  try {
    return (await lookup(announced, { family: 4 })).address;
  } catch (err) {
    throw new Error(
      `media.announcedIp: ${announced} does not resolve to an IPv4 address (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}
