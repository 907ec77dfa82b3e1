import { pino, type Logger } from 'pino';
import type { ServerOptions } from './config.js';

export function createLogger(level: ServerOptions['logLevel'] = 'info'): Logger {
  return pino({
    level,
    base: { service: 'parley' },
    // Secrets must never reach logs, even if a caller logs a whole config or request.
    redact: { paths: ['*.appSign', '*.serverSecret', '*.callbackSecret', '*.token', '*.appSignProof', 'auth'], censor: '[redacted]' },
  });
}
