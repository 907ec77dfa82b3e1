export { ServerMetrics, METRICS_PATH, type MetricsSources } from './serverMetrics.js';
export { Health, HEALTH_PATH, READY_PATH } from './health.js';
