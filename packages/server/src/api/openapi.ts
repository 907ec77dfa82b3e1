/** The OpenAPI 3.1 document of the server API, made from the same schemas that check requests. */
import { z } from 'zod';
import { actionSchemas } from './actions.js';

const common = [
  ['Action', 'the action to run', { type: 'string', enum: Object.keys(actionSchemas) }],
  ['AppId', 'the app', { type: 'integer', minimum: 0, maximum: 4294967295 }],
  ['SignatureNonce', '16 hex characters, never used before', { type: 'string' }],
  ['Timestamp', 'unix seconds, within ±10 minutes of the server', { type: 'integer' }],
  ['SignatureVersion', 'always 2.0', { type: 'string', enum: ['2.0'] }],
  ['Signature', 'md5_hex(AppId + SignatureNonce + ServerSecret + Timestamp)', { type: 'string', pattern: '^[0-9a-f]{32}$' }],
] as const;

let document: object | undefined;

export function openApiDocument(): object {
  document ??= {
    openapi: '3.1.0',
    info: {
      title: 'Parley server API',
      version: '1',
      description:
        'Signed requests from the business server. Common parameters go in the query string; an action’s own parameters in the query string (GET, lists as `Key[]=a&Key[]=b`) or a JSON body (POST). Codes: 0 ok, 2 invalid parameter, 7 rate limited, 100000001–100000014 common-parameter and signature faults (100000004 expired, 100000005 wrong or nonce reused), 5018 room does not exist.',
    },
    paths: {
      '/api': {
        get: operation(false),
        post: operation(true),
      },
    },
    components: {
      schemas: {
        ...Object.fromEntries(
          Object.entries(actionSchemas).map(([name, schema]) => [name, z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' })]),
        ),
        Reply: {
          type: 'object',
          required: ['Code', 'Message', 'RequestId', 'Data'],
          properties: {
            Code: { type: 'integer' },
            Message: { type: 'string' },
            RequestId: { type: 'string' },
            Data: { type: 'object' },
          },
        },
      },
    },
  };
  return document;
}

function operation(withBody: boolean): object {
  return {
    summary: withBody ? 'Run an action with a JSON body' : 'Run an action with query parameters',
    parameters: common.map(([name, description, schema]) => ({ name, in: 'query', required: true, description, schema })),
    ...(withBody && {
      requestBody: {
        description: 'the parameters of the action named by `Action` (see components.schemas)',
        content: {
          'application/json': { schema: { oneOf: Object.keys(actionSchemas).map((name) => ({ $ref: `#/components/schemas/${name}` })) } },
        },
      },
    }),
    responses: {
      '200': { description: 'the outcome', content: { 'application/json': { schema: { $ref: '#/components/schemas/Reply' } } } },
    },
  };
}
