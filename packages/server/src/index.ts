export { startServer, type ParleyServer } from './server.js';
export { DEV_APP, DEFAULT_HEARTBEAT_TIMEOUT_MS, randomApp, type AppConfig, type ServerOptions, type MediaOptions } from './config.js';
