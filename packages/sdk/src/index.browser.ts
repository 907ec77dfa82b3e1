import { ParleyEngine } from './engine.js';
import { BrowserMedia } from './browser/browserMedia.js';
import type { SocketLike } from './platform.js';

ParleyEngine.usePlatform({
  defaultReconnectWindowMs: 5 * 60_000,
  createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
  hmacSha256Hex: async (key, message) => {
    const { subtle } = globalThis.crypto;
    const cryptoKey = await subtle.importKey('raw', key as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const mac = new Uint8Array(await subtle.sign('HMAC', cryptoKey, new TextEncoder().encode(message)));
    return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('');
  },
  createMedia: ({ scenario, deviceChanged }) => new BrowserMedia(scenario, deviceChanged),
  onPageHide(listener) {
    addEventListener('pagehide', listener);
    return () => removeEventListener('pagehide', listener);
  },
});

export * from './index.common.js';
