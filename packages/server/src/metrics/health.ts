/**
 * Liveness and readiness for load balancers and orchestrators. `/healthz` answers 200 while the
 * process serves HTTP at all; `/readyz` answers 200 only while the server takes new users, and
 * 503 before startup has finished and from the moment shutdown begins.
 */
import { sendJson, type HttpRoutes } from '../http/routes.js';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

export class Health {
  private isReady = false;

  get ready(): boolean {
    return this.isReady;
  }

  /** Ready once startup is done; not ready again once shutdown (or draining) starts. */
  setReady(ready: boolean): void {
    this.isReady = ready;
  }

  addRoutes(routes: HttpRoutes): void {
    routes.add(HEALTH_PATH, (_req, res) => {
      res.setHeader('cache-control', 'no-store');
      sendJson(res, 200, { status: 'ok' });
    });
    routes.add(READY_PATH, (_req, res) => {
      res.setHeader('cache-control', 'no-store');
      if (this.isReady) sendJson(res, 200, { status: 'ready' });
      else sendJson(res, 503, { status: 'unavailable' });
    });
  }
}
