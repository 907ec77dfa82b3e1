/**
 * The server API at `/api`, for the business server: signed requests (see signature.ts) that see
 * and steer rooms. Common parameters travel in the query string; an action's own parameters in
 * the query string (GET) or a JSON body (POST). Replies are `{ Code, Message, RequestId, Data }`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AppRegistry } from '../apps.js';
import { sendJson, type HttpRoutes } from '../http/routes.js';
import { ApiCode, actionHandlers, actionSchemas, type ActionName, type ActionResult, type ApiServices } from './actions.js';
import { NonceRegistry, SIGNATURE_WINDOW_SECONDS, apiSignature, signatureMatches } from './signature.js';
import { openApiDocument } from './openapi.js';

export const API_PATH = '/api';
const MAX_BODY_BYTES = 64 * 1024;

class RefusedRequest extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Query parameters as an object; repeated keys and `Key[]` become arrays. */
function queryParams(url: URL): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = {};
  for (const [rawKey, value] of url.searchParams) {
    const isList = rawKey.endsWith('[]');
    const key = isList ? rawKey.slice(0, -2) : rawKey;
    const previous = params[key];
    if (previous === undefined) params[key] = isList ? [value] : value;
    else params[key] = [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  return params;
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new RefusedRequest(ApiCode.InvalidParameter, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new RefusedRequest(ApiCode.InvalidParameter, 'body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new RefusedRequest(ApiCode.InvalidParameter, 'body must be a JSON object');
  return body as Record<string, unknown>;
}

export class ServerApi {
  private readonly nonces = new NonceRegistry();

  constructor(
    /** The apps whose server secrets sign API calls. */
    private readonly apps: AppRegistry,
    private readonly services: ApiServices,
    private readonly log: Logger,
  ) {}

  addRoutes(routes: HttpRoutes): void {
    routes.add(API_PATH, (req, res, url) => this.handle(req, res, url));
    routes.add(`${API_PATH}/openapi.json`, (_req, res) => sendJson(res, 200, openApiDocument()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const RequestId = randomUUID();
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.writeHead(405, { allow: 'GET, POST' }).end();
      return;
    }
    let result: ActionResult;
    let appID: number | undefined;
    let action: string | undefined;
    try {
      const query = queryParams(url);
      const common = (name: string): string | undefined => (typeof query[name] === 'string' ? (query[name] as string) : undefined);
      action = common('Action');
      appID = this.authenticate(common, action);
      const params = req.method === 'POST' ? { ...query, ...(await readJsonBody(req)) } : query;
      result = await this.run(appID, action as ActionName, params);
    } catch (err) {
      if (!(err instanceof RefusedRequest)) throw err;
      result = { Code: err.code, Message: err.message };
    }
    this.log.info({ appID, action, code: result.Code }, 'server api call');
    sendJson(res, 200, { Code: result.Code, Message: result.Message, RequestId, Data: result.Data ?? {} });
  }

  /** Checks the common parameters and the signature; returns the app, or throws the code of what is wrong. */
  private authenticate(param: (name: string) => string | undefined, action: string | undefined): number {
    const refuse = (code: number, message: string): never => {
      throw new RefusedRequest(code, message);
    };
    if (!action) refuse(ApiCode.ActionMissing, 'Action is missing');
    const appIdText = param('AppId') ?? '';
    if (!/^\d{1,10}$/.test(appIdText)) refuse(ApiCode.AppIdInvalid, 'AppId is missing or not a number');
    const app = this.apps.get(Number(appIdText));
    if (!app) return refuse(ApiCode.AppUnknown, `no app ${appIdText}`);
    const nonce = param('SignatureNonce') ?? refuse(ApiCode.NonceMissing, 'SignatureNonce is missing');
    const timestampText = param('Timestamp') ?? refuse(ApiCode.TimestampMissing, 'Timestamp is missing');
    if (!/^\d{1,12}$/.test(timestampText)) refuse(ApiCode.TimestampInvalid, 'Timestamp is not unix seconds');
    const signature = param('Signature') ?? refuse(ApiCode.SignatureMissing, 'Signature is missing');
    const version = param('SignatureVersion') ?? refuse(ApiCode.SignatureVersionMissing, 'SignatureVersion is missing');
    if (version !== '2.0') refuse(ApiCode.SignatureVersionUnsupported, 'SignatureVersion must be 2.0');
    const now = Math.floor(Date.now() / 1000);
    if (Math.abs(now - Number(timestampText)) > SIGNATURE_WINDOW_SECONDS) refuse(ApiCode.SignatureExpired, 'Timestamp outside ±10 minutes');
    if (!signatureMatches(apiSignature(app.appID, nonce, app.serverSecret, timestampText), signature))
      refuse(ApiCode.SignatureWrong, 'signature does not match');
    // Only a genuine request uses up its nonce.
    if (!this.nonces.use(`${app.appID}:${nonce}`, now)) refuse(ApiCode.SignatureWrong, 'SignatureNonce already used');
    return app.appID;
  }

  private async run(appID: number, action: ActionName, params: Record<string, unknown>): Promise<ActionResult> {
    if (!Object.hasOwn(actionSchemas, action)) return { Code: ApiCode.ActionUnsupported, Message: `unsupported Action ${action}` };
    const parsed = actionSchemas[action].safeParse(params);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { Code: ApiCode.InvalidParameter, Message: issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid parameters' };
    }
    const handler = actionHandlers[action] as (services: ApiServices, appID: number, params: unknown) => Promise<ActionResult>;
    return handler(this.services, appID, parsed.data);
  }
}
