/**
 * The HTTP endpoints beside signalling (server API, metrics, health, dev config): each module
 * registers its paths here, so the HTTP server knows none of them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export class HttpRoutes {
  private readonly handlers = new Map<string, RouteHandler>();
  private readonly prefixes = new Map<string, RouteHandler>();

  /** `handler` answers every method on exactly `path` (no query string). */
  add(path: string, handler: RouteHandler): this {
    if (this.handlers.has(path)) throw new Error(`route ${path} registered twice`);
    this.handlers.set(path, handler);
    return this;
  }

  /** `handler` answers every method on every path under `prefix` (which ends with `/`). */
  addPrefix(prefix: string, handler: RouteHandler): this {
    if (!prefix.endsWith('/') || this.prefixes.has(prefix)) throw new Error(`prefix ${prefix} invalid or registered twice`);
    this.prefixes.set(prefix, handler);
    return this;
  }

  /** Answers the request if a route matches; false if none does. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handler = this.handlers.get(url.pathname) ?? [...this.prefixes].find(([prefix]) => url.pathname.startsWith(prefix))?.[1];
    if (!handler) return false;
    await handler(req, res, url);
    return true;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
