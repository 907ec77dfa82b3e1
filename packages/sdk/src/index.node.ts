import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { ParleyEngine } from './engine.js';
import { NodeMedia } from './node/nodeMedia.js';
import type { SocketLike } from './platform.js';

ParleyEngine.usePlatform({
  defaultReconnectWindowMs: 20 * 60_000,
  createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
  // Node's own HMAC: synchronous and cheap, where WebCrypto's import and sign cost ~0.3 ms a login.
  hmacSha256Hex: (key, message) => Promise.resolve(createHmac('sha256', key).update(message).digest('hex')),
  createMedia: (events) => new NodeMedia(events),
});

export * from './index.common.js';
export { readIvf, readOggOpus, type IvfFile, type IvfFrame } from './node/mediaFiles.js';
