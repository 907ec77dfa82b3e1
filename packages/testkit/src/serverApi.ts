/**
 * A business server's call of the server API: a signed GET of `action` with `params` in the query
 * string, or a POST with them as a JSON body when one is not a string (the recording actions' objects).
 */
import { randomBytes } from 'node:crypto';
import { apiSignature, type AppConfig } from '@parley/server';

export interface ServerApiReply {
  Code: number;
  Message: string;
  Data: unknown;
}

export async function callServerApi(
  httpUrl: string,
  app: AppConfig,
  action: string,
  params: Record<string, unknown>,
): Promise<ServerApiReply> {
  const nonce = randomBytes(8).toString('hex');
  const timestamp = Math.floor(Date.now() / 1000);
  const url = new URL('/api', httpUrl);
  const query = {
    Action: action,
    AppId: String(app.appID),
    SignatureNonce: nonce,
    Timestamp: String(timestamp),
    SignatureVersion: '2.0',
    Signature: apiSignature(app.appID, nonce, app.serverSecret, timestamp),
  };
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  if (Object.values(params).every((v) => typeof v === 'string')) {
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value as string);
    return (await (await fetch(url)).json()) as ServerApiReply;
  }
  const body = JSON.stringify(params);
  return (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as ServerApiReply;
}
