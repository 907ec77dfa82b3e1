export { ServerMetrics, METRICS_PATH, type MetricsSources } from './serverMetrics.js';
export { Health, HEALTH_PATHS, READY_PATHS } from './health.js';
