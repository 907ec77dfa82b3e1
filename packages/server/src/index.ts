export { startServer, type ParleyServer } from './server.js';
export {
  generateToken04,
  decodeToken04,
  verifyToken04,
  type GenerateToken04Options,
  type Token04Claims,
  type TokenPrivileges,
} from './auth/token04.js';
export {
  DEV_APP,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_LIMITS,
  randomApp,
  type AppConfig,
  type ServerOptions,
  type MediaOptions,
  type Limits,
} from './config.js';
