/**
 * Liveness and readiness for load balancers and orchestrators. `/health` (or `/healthz`) answers
 * 200 while the process serves HTTP at all; `/ready` (or `/readyz`) answers 200 only while the
 * server takes new users: 503 before startup has finished, from the moment shutdown begins, and
 * while something it depends on (a cluster node's Redis) is out of reach.
 */
import { sendJson, type HttpRoutes } from '../http/routes.js';

export const HEALTH_PATHS = ['/health', '/healthz'];
export const READY_PATHS = ['/ready', '/readyz'];

export class Health {
  private isReady = false;

  /** `reachable` says whether what the server depends on can be reached now. */
  constructor(private readonly reachable: () => boolean = () => true) {}

  get ready(): boolean {
    return this.isReady && this.reachable();
  }

  /** Ready once startup is done; not ready again once shutdown (or draining) starts. */
  setReady(ready: boolean): void {
    this.isReady = ready;
  }

  addRoutes(routes: HttpRoutes): void {
    for (const path of HEALTH_PATHS) {
      routes.add(path, (_req, res) => {
        res.setHeader('cache-control', 'no-store');
        sendJson(res, 200, { status: 'ok' });
      });
    }
    for (const path of READY_PATHS) {
      routes.add(path, (_req, res) => {
        res.setHeader('cache-control', 'no-store');
        if (this.ready) sendJson(res, 200, { status: 'ready' });
        else sendJson(res, 503, { status: 'unavailable' });
      });
    }
  }
}
