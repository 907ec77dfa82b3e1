import { ParleyEngine } from './engine.js';
import { BrowserMedia } from './browser/browserMedia.js';
import type { SocketLike } from './platform.js';

ParleyEngine.usePlatform({
  defaultReconnectWindowMs: 5 * 60_000,
  createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
  createMedia: ({ scenario }) => new BrowserMedia(scenario),
});

export * from './index.common.js';
