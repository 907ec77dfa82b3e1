/**
 * The floor for a Node process: a plain UDP relay (no ICE, no crypto, no RTP handling) that sends
 * every datagram it receives to each subscriber. Controlled over IPC by forwarding.ts.
 */
import { createSocket } from 'node:dgram';

const socket = createSocket('udp4');
let subscribers: Array<{ port: number }> = [];
let forwarded = 0;
socket.on('message', (packet) => {
  for (const { port } of subscribers) socket.send(packet, port, '127.0.0.1');
  forwarded += subscribers.length;
});
socket.bind(0, '127.0.0.1', () => process.send!({ port: socket.address().port }));
process.on('message', (message: { subscribers?: Array<{ port: number }>; stats?: true; close?: true }) => {
  if (message.subscribers) subscribers = message.subscribers;
  if (message.stats) {
    const cpu = process.cpuUsage();
    process.send!({ cpuMs: (cpu.user + cpu.system) / 1000, systemMs: cpu.system / 1000, forwarded });
  }
  if (message.close) socket.close(() => process.exit(0));
});
