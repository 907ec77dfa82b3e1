/**
 * Signalling frames for fuzzing: random, mutated from real requests, damaged byte by byte,
 * binary, deeply nested, and (one in twenty) over the size limit, from a seeded generator so a
 * failing run can be replayed.
 */
import { WebSocket } from 'ws';
import { MAX_FRAME_BYTES } from '@parley/protocol';

/** A seeded generator (mulberry32), so a failing run can be replayed with PARLEY_FUZZ_SEED. */
export function generator(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEMPLATES: Array<Record<string, unknown>> = [
  {
    type: 'login',
    id: 1,
    appID: 1,
    roomID: 'r',
    user: { userID: 'u', userName: 'u' },
    config: { isUserStatusNotify: true, maxMemberCount: 0 },
    auth: { appSignProof: '0'.repeat(64) },
  },
  {
    type: 'login',
    id: 2,
    appID: 1,
    roomID: 'r',
    user: { userID: 'u', userName: 'u' },
    config: { isUserStatusNotify: false, maxMemberCount: 3 },
    auth: { token: '04AAAA' },
  },
  { type: 'publish', id: 3, streamID: 's', sdp: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n', extraInfo: '' },
  { type: 'play', id: 4, streamID: 's', sdp: 'v=0\r\n', attempt: 1 },
  { type: 'unpublish', id: 5, streamID: 's' },
  { type: 'unplay', id: 6, streamID: 's' },
  { type: 'logout', id: 7 },
  { type: 'heartbeat', id: 8 },
  { type: 'resume', id: 9, appID: 1, sessionID: 'x', proof: 'a'.repeat(64), lastSeq: 0 },
  { type: 'renewToken', id: 10, token: '04' },
];

const WEIRD: unknown[] = [
  null,
  true,
  -1,
  0,
  2 ** 53,
  1e308,
  -0.5,
  NaN,
  '',
  'x'.repeat(300),
  '\u0000',
  '😀',
  [],
  {},
  [1, [2, [3]]],
  { __proto__: { admin: true } },
];

function mutate(random: () => number, value: unknown, depth = 0): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
  if (random() < 0.15 || depth > 4) return pick(WEIRD);
  if (Array.isArray(value)) return value.map((v) => mutate(random, v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = random();
      if (r < 0.1) continue; // drop a field
      out[r < 0.15 ? `${k}_` : k] = r < 0.5 ? mutate(random, v, depth + 1) : v;
    }
    if (random() < 0.1) out[pick(['type', 'id', 'extra', 'constructor'])] = pick(WEIRD);
    return out;
  }
  if (typeof value === 'string') return random() < 0.5 ? value + pick(['', '\u0000', '"', '\\', 'é']) : pick(WEIRD);
  return pick(WEIRD);
}

export function fuzzFrame(random: () => number): string | Buffer {
  const r = random();
  const template = TEMPLATES[Math.floor(random() * TEMPLATES.length)]!;
  if (r < 0.6) return JSON.stringify(mutate(random, template));
  if (r < 0.75) {
    const text = JSON.stringify(template);
    const at = Math.floor(random() * text.length);
    return text.slice(0, at) + String.fromCharCode(Math.floor(random() * 128)) + text.slice(at + 1); // byte-level damage
  }
  if (r < 0.85) return Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
  if (r < 0.95) return `${'['.repeat(Math.floor(random() * 3000))}`;
  return 'x'.repeat(MAX_FRAME_BYTES + 1 + Math.floor(random() * 1000)); // oversize: the connection must close
}

export type FuzzOutcome = 'reply' | 'error' | 'close' | 'silent';

/**
 * A signalling connection that sends one frame at a time and tells how the server answered it:
 * a reply, an error, a close (then the next frame opens a new connection), or nothing within 2 s.
 */
export class FuzzClient {
  private ws: WebSocket | undefined;
  private answered: ((outcome: FuzzOutcome) => void) | undefined;

  /** `onMessage` sees every message the server sends. */
  constructor(
    private readonly url: string,
    private readonly onMessage: (message: { type: string; code?: number }) => void = () => undefined,
  ) {}

  async send(frame: string | Buffer): Promise<FuzzOutcome> {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) this.ws = await this.open();
    const ws = this.ws;
    return new Promise<FuzzOutcome>((resolve) => {
      const timer = setTimeout(() => resolve('silent'), 2000);
      this.answered = (outcome) => {
        clearTimeout(timer);
        this.answered = undefined;
        resolve(outcome);
      };
      ws.send(frame);
    });
  }

  close(): void {
    this.ws?.close();
  }

  private async open(): Promise<WebSocket> {
    const socket = new WebSocket(this.url);
    await new Promise((resolve, reject) => socket.once('message', resolve).once('error', reject)); // hello
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; code?: number };
      this.onMessage(message);
      this.answered?.(message.type === 'reply' ? 'reply' : 'error');
    });
    socket.on('close', () => this.answered?.('close'));
    socket.on('error', () => undefined);
    return socket;
  }
}
