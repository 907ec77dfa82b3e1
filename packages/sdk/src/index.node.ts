import { WebSocket } from 'ws';
import { ParleyEngine } from './engine.js';
import { NodeMedia } from './node/nodeMedia.js';
import type { SocketLike } from './platform.js';

ParleyEngine.usePlatform({
  defaultReconnectWindowMs: 20 * 60_000,
  createSocket: (url) => new WebSocket(url) as unknown as SocketLike,
  createMedia: (events) => new NodeMedia(events),
});

export * from './index.common.js';
export { readIvf, readOggOpus, type IvfFile, type IvfFrame } from './node/mediaFiles.js';
