export { startServer, type ParleyServer } from './server.js';
export type { Health } from './metrics/index.js';
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
export {
  webhookSignature,
  webhookBodySignature,
  verifyWebhook,
  WEBHOOK_BODY_SIGNATURE_HEADER,
  WEBHOOK_EVENTS,
  RoomCloseReason,
  RoomLogoutReason,
  StreamCloseType,
  DEFAULT_WEBHOOK_OPTIONS,
  type VerifyWebhookOptions,
  type VerifyWebhookResult,
  type WebhookRejection,
  type WebhookOptions,
  type WebhookEvent,
  type WebhookEventName,
  type WebhookCommon,
  type RoomCreateWebhook,
  type RoomCloseWebhook,
  type RoomLoginWebhook,
  type RoomLogoutWebhook,
  type StreamCreateWebhook,
  type StreamCloseWebhook,
  type SessionEndReason,
  type StreamEndReason,
} from './webhooks/index.js';
export { apiSignature } from './api/signature.js';
export { setServerHeapPolicy } from './heapPolicy.js';
export { ApiCode } from './api/actions.js';
export type { RecordingOptions, RecordStatusEvent } from './egress/recordings.js';
