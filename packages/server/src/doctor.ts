/**
 * `parley doctor`: what of a Parley server a client can reach, checked from the client's side.
 * Signalling first (the WebSocket's hello, then a login with the app's credentials); then the
 * media paths the server announces in the answer to a publish offer: a binding request to its UDP
 * candidate, one over a TCP connection to its ICE-TCP candidate, each signed with the answer's
 * credentials as a browser's would be; then an allocation on each TURN server the login hands out.
 * Nothing is published: the offer is withdrawn and the doctor logs out.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import {
  RTCPeerConnection,
  Message,
  classes,
  createTurnClient,
  encodeTcpFrame,
  methods,
  parseMessage,
  splitTcpFrames,
  useOPUS,
} from 'werift';
import { appSignProofMessage, hexKeyBytes, type IceServer } from '@parley/protocol';
import { withoutDefaultStunServer } from '@parley/protocol/rtp';

export interface DoctorOptions {
  /** The signalling URL (ws:// or wss://…/ws). */
  url: string;
  appID: number;
  /** One of the two: the AppSign (dev and tests) or a token from the business server. */
  appSign?: string;
  token?: string;
  /** Per check (default 5 s). */
  timeoutMs?: number;
}

export interface DoctorCheck {
  name: 'signalling' | 'udp' | 'tcp' | 'turn';
  ok: boolean;
  detail: string;
}

type Reply = { type: 'reply'; id: number; code: number; message?: string; data?: Record<string, unknown> };

/** Runs every check it can; a check that cannot run (no login, no such candidate) is reported as failed with the reason. */
export async function diagnose(options: DoctorOptions): Promise<DoctorCheck[]> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const checks: DoctorCheck[] = [];
  const within = <T>(what: string, work: Promise<T>): Promise<T> =>
    Promise.race([
      work,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs).unref(),
      ),
    ]);

  const started = performance.now();
  let socket: WebSocket;
  let nonce: string;
  try {
    socket = new WebSocket(options.url);
    nonce = await within(
      'signalling',
      new Promise<string>((resolve, reject) => {
        socket.once('message', (data: Buffer) => {
          const nonce = (parsed(data) as { nonce?: unknown } | undefined)?.nonce;
          if (typeof nonce === 'string') resolve(nonce);
          else reject(new Error('not a Parley signalling endpoint (no hello)'));
        });
        socket.once('error', reject);
      }),
    );
  } catch (err) {
    return [{ name: 'signalling', ok: false, detail: `${options.url}: ${(err as Error).message}` }];
  }
  // A connection lost later fails the requests still waiting (their timeouts), not the process.
  socket.on('error', () => undefined);
  const helloMs = performance.now() - started;
  let nextId = 1;
  const request = (type: string, body: Record<string, unknown>): Promise<Reply> => {
    const id = nextId++;
    socket.send(JSON.stringify({ ...body, type, id }));
    return within(
      type,
      new Promise<Reply>((resolve) => {
        const onMessage = (data: Buffer): void => {
          const message = parsed(data) as Reply | undefined;
          if (message?.type === 'reply' && message.id === id) {
            socket.off('message', onMessage);
            resolve(message);
          }
        };
        socket.on('message', onMessage);
      }),
    );
  };
  const pc = withoutDefaultStunServer(
    new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs: { audio: [useOPUS()], video: [] } }),
  );
  const streamID = `doctor-${randomBytes(4).toString('hex')}`;
  try {
    const roomID = streamID;
    const userID = streamID;
    const auth = options.token
      ? { token: options.token }
      : {
          appSignProof: createHmac('sha256', hexKeyBytes(options.appSign ?? ''))
            .update(appSignProofMessage(nonce, options.appID, roomID, userID))
            .digest('hex'),
        };
    const login = await request('login', {
      appID: options.appID,
      roomID,
      user: { userID, userName: userID },
      config: { isUserStatusNotify: false, maxMemberCount: 0 },
      auth,
    });
    if (login.code !== 0) {
      checks.push({
        name: 'signalling',
        ok: false,
        detail: `${options.url}: hello in ${helloMs.toFixed(0)} ms, login refused (${login.code} ${login.message ?? ''})`,
      });
      return checks;
    }
    checks.push({ name: 'signalling', ok: true, detail: `${options.url}: hello in ${helloMs.toFixed(0)} ms, logged in` });

    pc.addTransceiver('audio', { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const offer = pc.localDescription!.sdp;
    const published = await request('publish', { streamID, sdp: offer, extraInfo: '' });
    const answer = typeof published.data?.sdp === 'string' ? published.data.sdp : undefined;
    if (published.code !== 0 || !answer) {
      checks.push({ name: 'udp', ok: false, detail: `no media offer answered (${published.code} ${published.message ?? ''})` });
    } else {
      const credentials = {
        username: `${sdpValue(answer, 'ice-ufrag')}:${sdpValue(offer, 'ice-ufrag')}`,
        password: sdpValue(answer, 'ice-pwd') ?? '',
      };
      const candidates = answer
        .split('\r\n')
        .filter((line) => line.startsWith('a=candidate:'))
        .map((line) => line.split(' '));
      const udp = candidates.find((c) => c[2]?.toLowerCase() === 'udp');
      const tcp = candidates.find((c) => c[2]?.toLowerCase() === 'tcp' && c.includes('passive'));
      checks.push(
        udp
          ? await check('udp', `${udp[4]}:${udp[5]}`, () => udpCheck(udp[4]!, Number(udp[5]), credentials, timeoutMs))
          : { name: 'udp', ok: false, detail: 'the server announces no UDP candidate' },
      );
      checks.push(
        tcp
          ? await check('tcp', `${tcp[4]}:${tcp[5]}`, () => tcpCheck(tcp[4]!, Number(tcp[5]), credentials, timeoutMs))
          : { name: 'tcp', ok: false, detail: 'the server announces no ICE-TCP candidate (media.tcpPort)' },
      );
      await request('unpublish', { streamID }).catch(() => undefined);
    }
    const iceServers = (login.data?.iceServers ?? []) as IceServer[];
    if (iceServers.length === 0) checks.push({ name: 'turn', ok: false, detail: 'the server hands out no TURN server (turn)' });
    for (const server of iceServers) {
      for (const url of server.urls) checks.push(await check('turn', url, () => within('turn', turnCheck(url, server))));
    }
    await request('logout', {}).catch(() => undefined);
    return checks;
  } finally {
    socket.close();
    await pc.close();
  }
}

async function check(name: DoctorCheck['name'], what: string, run: () => Promise<string>): Promise<DoctorCheck> {
  try {
    return { name, ok: true, detail: `${what}: ${await run()}` };
  } catch (err) {
    return { name, ok: false, detail: `${what}: ${(err as Error).message}` };
  }
}

function parsed(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString());
  } catch {
    return undefined;
  }
}

function sdpValue(sdp: string, key: string): string | undefined {
  return new RegExp(`^a=${key}:(.+)$`, 'm').exec(sdp)?.[1]?.trim();
}

/** A binding request as an ICE agent sends it, signed with the server's password. */
function bindingRequest({ username, password }: { username: string; password: string }): { bytes: Buffer; key: Buffer } {
  const key = Buffer.from(password, 'utf8');
  const message = new Message(methods.BINDING, classes.REQUEST);
  message.setAttribute('USERNAME', username).setAttribute('PRIORITY', 1).setAttribute('ICE-CONTROLLING', randomBytes(8).readBigUInt64BE());
  message.addMessageIntegrity(key);
  message.addFingerprint();
  return { bytes: message.bytes, key };
}

/** Whether `data` is the signed success response to `request`. */
function answers(data: Buffer, request: { bytes: Buffer; key: Buffer }): boolean {
  const response = parseMessage(data, request.key);
  return !!response && response.messageClass === classes.RESPONSE && response.transactionId.equals(request.bytes.subarray(8, 20));
}

function udpCheck(host: string, port: number, credentials: { username: string; password: string }, timeoutMs: number): Promise<string> {
  const request = bindingRequest(credentials);
  const socket = createSocket('udp4');
  const sentAt = performance.now();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => clearTimeout(timer));
    socket.on('message', (data) => {
      if (answers(data, request)) resolve(`answered in ${(performance.now() - sentAt).toFixed(0)} ms`);
    });
    socket.on('error', reject);
    // Sent a few times: a datagram may be lost.
    const send = (): void => socket.send(request.bytes, port, host);
    send();
    const again = setInterval(send, 500);
    socket.once('close', () => clearInterval(again));
  }).finally(() => socket.close());
}

function tcpCheck(host: string, port: number, credentials: { username: string; password: string }, timeoutMs: number): Promise<string> {
  const request = bindingRequest(credentials);
  const sentAt = performance.now();
  const socket = connect({ host, port });
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => clearTimeout(timer));
    let buffer: Buffer = Buffer.alloc(0);
    socket.once('connect', () => socket.write(encodeTcpFrame(request.bytes)));
    socket.on('data', (chunk) => {
      const { frames, rest } = splitTcpFrames(Buffer.concat([buffer, chunk]));
      buffer = rest;
      if (frames.some((frame) => answers(frame, request))) resolve(`answered in ${(performance.now() - sentAt).toFixed(0)} ms`);
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed without an answer')));
  }).finally(() => socket.destroy());
}

async function turnCheck(url: string, server: IceServer): Promise<string> {
  const match = /^(turns?):([^:?]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/.exec(url);
  if (!match) throw new Error('not a TURN URL');
  const [, scheme, host, port, transport] = match;
  const client = await createTurnClient(
    { address: [host!, Number(port ?? (scheme === 'turns' ? 5349 : 3478))], username: server.username, password: server.credential },
    { transport: scheme === 'turns' ? 'tls' : ((transport ?? 'udp') as 'udp' | 'tcp') },
  );
  try {
    const [relayHost, relayPort] = client.relayedAddress;
    return `relay ${relayHost}:${relayPort}`;
  } finally {
    await client.close().catch(() => undefined);
  }
}
