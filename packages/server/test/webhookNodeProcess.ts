/**
 * A cluster node's webhook side in a process of its own, for tests that kill it: each line on
 * stdin, `[eventName, payload]` in JSON, is a room event of its observer; it logs JSON lines on
 * stdout. Argument: the node's options (WebhookNodeOptions without `log`) in JSON.
 */
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import type { RoomServiceEvents } from '../src/rooms/observer.js';
import { webhookNode, type WebhookNodeOptions } from './webhookHelpers.js';

const options = JSON.parse(process.argv[2]!) as Omit<WebhookNodeOptions, 'log'>;
const node = await webhookNode({ ...options, log: pino({ level: 'info' }) });
createInterface({ input: process.stdin }).on('line', (line) => {
  const [name, payload] = JSON.parse(line) as [keyof RoomServiceEvents, never];
  node.observer.emit(name, payload);
});
process.stdout.write(`${JSON.stringify({ msg: 'node ready' })}\n`);
