/**
 * Runs the example business server: PARLEY_APP_ID, PARLEY_SERVER_SECRET, PARLEY_CALLBACK_SECRET,
 * PARLEY_HTTP_URL (Parley's, default http://127.0.0.1:7800), PORT (default 8080), ALLOWED_ORIGINS
 * (comma-separated, for the demo page's token requests).
 */
import { BusinessServer } from './businessServer.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const server = new BusinessServer({
  appID: Number(env('PARLEY_APP_ID')),
  serverSecret: env('PARLEY_SERVER_SECRET'),
  callbackSecret: env('PARLEY_CALLBACK_SECRET'),
  parleyHttpUrl: process.env.PARLEY_HTTP_URL ?? 'http://127.0.0.1:7800',
  allowedOrigins: process.env.ALLOWED_ORIGINS?.split(','),
});
const url = await server.listen(Number(process.env.PORT ?? 8080));
process.stdout.write(
  `business server on ${url}: GET /token, POST /parley/callback, GET /rooms/<roomID>/users, recording and mixing (see businessServer.ts)\n`,
);
