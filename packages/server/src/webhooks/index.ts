export {
  WebhookDispatcher,
  DEFAULT_WEBHOOK_OPTIONS,
  type WebhookOptions,
  type WebhookDispatcherOptions,
  type WebhookStats,
} from './dispatcher.js';
export * from './events.js';
export * from './signature.js';
