import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { Message, TcpPassiveProtocol, classes, encodeTcpFrame, methods, parseMessage } from 'werift';
import { UdpMux, type Address } from '../src/media/sockets/udpMux.js';
import { TcpMux } from '../src/media/sockets/tcpMux.js';
import { bindingRequestUfrag } from '@parley/protocol/rtp';
import { emptyMediaStats } from '../src/media/core/types.js';

const bindingRequest = (username?: string, password?: string): Buffer => {
  const message = new Message(methods.BINDING, classes.REQUEST);
  if (username !== undefined) message.setAttribute('USERNAME', username);
  if (password !== undefined) message.addMessageIntegrity(Buffer.from(password));
  return message.bytes;
};
const signedWith =
  (password: string) =>
  (request: Buffer): boolean =>
    parseMessage(request, Buffer.from(password)) !== undefined;
const bindingResponse = (): Buffer => new Message(methods.BINDING, classes.RESPONSE).bytes;
/** What DTLS and SRTP look like to the mux: anything not STUN. */
const media = (text: string): Buffer => Buffer.concat([Buffer.from([0x80, 0x60]), Buffer.from(text)]);

async function client(): Promise<{ socket: UdpSocket; port: number; received: Array<[Buffer, number]> }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const received: Array<[Buffer, number]> = [];
  socket.on('message', (data, remote) => received.push([data, remote.port]));
  return { socket, port: socket.address().port, received };
}

const until = async (done: () => boolean, what: string): Promise<void> => {
  for (const deadline = Date.now() + 2000; !done(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
};
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

test('a binding request names its agent by the local part of USERNAME; other STUN does not', () => {
  assert.equal(bindingRequestUfrag(bindingRequest('server1:client1')), 'server1');
  assert.equal(bindingRequestUfrag(bindingRequest()), undefined);
  assert.equal(bindingRequestUfrag(bindingRequest('nocolon')), undefined);
  assert.equal(bindingRequestUfrag(bindingResponse()), undefined);
  assert.equal(bindingRequestUfrag(media('x')), undefined);
  const truncated = bindingRequest('server1:client1').subarray(0, 26);
  assert.equal(bindingRequestUfrag(truncated), undefined);
});

test('one UDP socket: each datagram reaches the agent its binding request named, then by its address; nothing else gets through', async (t) => {
  const stats = emptyMediaStats();
  const mux = await UdpMux.open('127.0.0.1', 0, stats, (err) => assert.fail(err));
  t.after(() => mux.close());
  const agents = ['ufragA', 'ufragB'].map((ufrag) => {
    const socket = mux.socketFor([ufrag]);
    socket.signed = signedWith(`${ufrag}-password`);
    const got: Array<[string, Address]> = [];
    socket.onData = (data, addr) => got.push([data.toString('latin1'), addr]);
    return { socket, got };
  });
  const [a, b] = agents as [(typeof agents)[0], (typeof agents)[0]];
  const [clientA, clientB, stranger] = await Promise.all([client(), client(), client()]);
  t.after(() => [clientA, clientB, stranger].forEach((c) => c.socket.close()));
  const send = (from: typeof clientA, data: Buffer): void => from.socket.send(data, mux.port, '127.0.0.1');

  send(clientA, bindingRequest('ufragA:peerA', 'ufragA-password'));
  send(clientB, bindingRequest('ufragB:peerB', 'ufragB-password'));
  await until(() => a.got.length === 1 && b.got.length === 1, 'the checks');
  send(clientA, media('for A'));
  send(clientB, media('for B'));
  await until(() => a.got.length === 2 && b.got.length === 2, 'the media');
  assert.deepEqual(
    a.got.map(([, [, port]]) => port),
    [clientA.port, clientA.port],
  );
  assert.ok(a.got[1]![0].endsWith('for A') && b.got[1]![0].endsWith('for B'));

  // A stranger: media from an address no agent checked, a check for a ufrag nobody has, a request
  // with no USERNAME, and one to a real ufrag that is not signed (a ufrag is seen on the wire).
  send(stranger, media('lost'));
  send(stranger, bindingRequest('nobody:x'));
  send(stranger, bindingRequest());
  send(stranger, bindingRequest('ufragA:peerA'));
  await until(() => stats.unroutableDatagrams === 4, 'the stranger counted');
  assert.equal(a.got.length + b.got.length, 4);

  // Replies leave from the one port.
  await a.socket.send(media('to A'), ['127.0.0.1', clientA.port]);
  await until(() => clientA.received.length === 1, 'the reply');
  assert.equal(clientA.received[0]![1], mux.port);
  assert.equal(a.socket.address.port, mux.port);
});

test('an agent learns addresses from its own checks, keeps its earlier ufrags after a restart, and frees all of it when closed', async (t) => {
  const stats = emptyMediaStats();
  const mux = await UdpMux.open('127.0.0.1', 0, stats, (err) => assert.fail(err));
  t.after(() => mux.close());
  const socket = mux.socketFor(['first']);
  socket.signed = (request, ufrag) => signedWith(`${ufrag}-password`)(request);
  const got: string[] = [];
  socket.onData = (data) => got.push(data.toString('latin1'));
  const [peer, other] = await Promise.all([client(), client()]);
  t.after(() => [peer, other].forEach((c) => c.socket.close()));

  // Our check to the peer: its response (no USERNAME) comes back to us.
  await socket.send(bindingRequest('peer:first'), ['127.0.0.1', peer.port]);
  await until(() => peer.received.length === 1, 'our check');
  peer.socket.send(bindingResponse(), mux.port, '127.0.0.1');
  await until(() => got.length === 1, 'the response');

  // A restart adds a ufrag; the old one still reaches the agent.
  socket.addUfrag('second');
  assert.throws(() => mux.socketFor(['second']), /in use/);
  other.socket.send(bindingRequest('second:x', 'second-password'), mux.port, '127.0.0.1');
  other.socket.send(bindingRequest('first:x', 'first-password'), mux.port, '127.0.0.1');
  await until(() => got.length === 3, 'checks to both ufrags');

  // An address another agent has is taken over only by a check signed with the new agent's password,
  // and only while the agent that has it has not had a signed check from it lately.
  const next = mux.socketFor(['third']);
  const nextGot: string[] = [];
  next.onData = (data) => nextGot.push(data.toString('latin1'));
  next.signed = signedWith('third-password');
  other.socket.send(bindingRequest('third:other', 'third-password'), mux.port, '127.0.0.1');
  other.socket.send(media('still first'), mux.port, '127.0.0.1');
  await until(() => got.length === 4, 'a signed check, but the address is in use: refused');
  peer.socket.send(bindingRequest('third:peer'), mux.port, '127.0.0.1');
  peer.socket.send(media('still first'), mux.port, '127.0.0.1');
  await until(() => got.length === 5, 'the forged check refused');
  assert.equal(nextGot.length, 0);
  peer.socket.send(bindingRequest('third:peer', 'third-password'), mux.port, '127.0.0.1');
  peer.socket.send(media('now third'), mux.port, '127.0.0.1');
  await until(() => nextGot.length === 2, 'the takeover of an address the first agent only sent checks to');
  assert.equal(got.length, 5);

  await socket.close();
  await socket.close();
  other.socket.send(media('after close'), mux.port, '127.0.0.1');
  other.socket.send(bindingRequest('first:x', 'first-password'), mux.port, '127.0.0.1');
  // Two refused here, after the two refused checks above.
  await until(() => stats.unroutableDatagrams === 4, 'the closed agent refused');
  assert.equal(got.length, 5);
  const reused = mux.socketFor(['first', 'second']);
  await reused.close();
  await settle();
});

/** A TCP client speaking RFC 4571 frames. */
async function tcpClient(port: number): Promise<{ socket: TcpSocket; frames: Buffer[]; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const frames: Buffer[] = [];
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
      frames.push(buffer.subarray(2, 2 + buffer.readUInt16BE(0)));
      buffer = buffer.subarray(2 + buffer.readUInt16BE(0));
    }
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, frames, closed };
}

test('one TCP port: a connection goes to the agent its first binding request names, byte for byte from its first frame, split or not', async (t) => {
  const stats = emptyMediaStats();
  const mux = await TcpMux.open('127.0.0.1', 0, stats, 300);
  t.after(() => mux.close());
  const protocol = new TcpPassiveProtocol();
  mux.addUfrag('agentufrag', protocol, signedWith('agent-password'));
  const requests: string[] = [];
  const data: string[] = [];
  protocol.onRequestReceived.subscribe((message, addr) => {
    requests.push(message.getAttributeValue('USERNAME') as string);
    void protocol.sendData(media('reply'), addr);
  });
  protocol.onDataReceived.subscribe((packet) => data.push(packet.subarray(2).toString()));

  const good = await tcpClient(mux.port);
  t.after(() => good.socket.destroy());
  const first = encodeTcpFrame(bindingRequest('agentufrag:client', 'agent-password'));
  // The first frame in two pieces, the second in the same write as the end of the first.
  good.socket.write(first.subarray(0, 5));
  await settle();
  good.socket.write(Buffer.concat([first.subarray(5), encodeTcpFrame(media('hello'))]));
  await until(() => requests.length === 1 && data.length === 1, 'the first frames');
  assert.deepEqual(requests, ['agentufrag:client']);
  assert.deepEqual(data, ['hello']);
  await until(() => good.frames.length === 1, 'the reply');

  // Unknown ufrag, an unsigned check to the agent, not a binding request, an oversized frame, and silence: each is closed and counted.
  const unknown = await tcpClient(mux.port);
  unknown.socket.write(encodeTcpFrame(bindingRequest('someoneelse:client')));
  const unsigned = await tcpClient(mux.port);
  unsigned.socket.write(encodeTcpFrame(bindingRequest('agentufrag:client')));
  const notStun = await tcpClient(mux.port);
  notStun.socket.write(encodeTcpFrame(media('not a check')));
  const oversized = await tcpClient(mux.port);
  oversized.socket.write(Buffer.from([0xff, 0xff, 0, 1]));
  const silent = await tcpClient(mux.port);
  await Promise.all([unknown.closed, unsigned.closed, notStun.closed, oversized.closed, silent.closed]);
  assert.equal(stats.unroutableTcpConnections, 5);

  // Once the agent is forgotten, its ufrag leads nowhere.
  mux.forget(protocol);
  assert.equal(mux.hasUfrag('agentufrag'), false);
  await protocol.close();
});
