/**
 * Datagrams an attacker who can send from a peer's address would try against a call's media
 * port: random bytes, DTLS records of every content type and epoch (the plaintext alert and the
 * unknown content type that once ended a call among them), ClientHellos and HelloVerifyRequests,
 * STUN requests without or with a wrong MESSAGE-INTEGRITY or another agent's username, RTP and
 * RTCP that fail authentication, and 0–3 and 1,500-byte datagrams. Each kind has a name, for
 * reports of what was sent.
 */
import { randomBytes, randomInt } from 'node:crypto';

export interface ForgeryTargets {
  /** STUN USERNAMEs ("theirs:ours") to forge requests with, e.g. the real one of the attacked agent. */
  usernames?: string[];
  /** SSRCs to forge RTP and RTCP of, e.g. the call's real ones. */
  ssrcs?: number[];
}

type Forge = (targets: ForgeryTargets) => Buffer;

const pick = <T>(items: readonly T[]): T => items[randomInt(items.length)]!;

function dtlsRecord(contentType: number, epoch: number, fragment: Buffer, sequence = randomInt(2 ** 40)): Buffer {
  const header = Buffer.alloc(13);
  header[0] = contentType;
  header.writeUInt16BE(0xfefd, 1);
  header.writeUInt16BE(epoch, 3);
  header.writeUIntBE(sequence, 5, 6);
  header.writeUInt16BE(fragment.length, 11);
  return Buffer.concat([header, fragment]);
}

/** A handshake message (RFC 6347 §4.2.2) in one fragment. */
function handshake(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header[0] = type;
  header.writeUIntBE(body.length, 1, 3);
  header.writeUInt16BE(randomInt(4), 4);
  header.writeUIntBE(body.length, 9, 3);
  return Buffer.concat([header, body]);
}

/** A well-formed ClientHello: DTLS 1.2, one ECDHE-ECDSA-AES128-GCM suite, use_srtp; with `cookie` when given. */
function clientHello(cookie: Buffer): Buffer {
  const useSrtp = Buffer.from([0x00, 0x0e, 0x00, 0x05, 0x00, 0x02, 0x00, 0x07, 0x00]);
  const body = Buffer.concat([
    Buffer.from([0xfe, 0xfd]),
    randomBytes(32),
    Buffer.from([0]), // no session ID
    Buffer.from([cookie.length]),
    cookie,
    Buffer.from([0x00, 0x02, 0xc0, 0x2b]),
    Buffer.from([0x01, 0x00]),
    Buffer.from([0x00, useSrtp.length]),
    useSrtp,
  ]);
  return dtlsRecord(22, 0, handshake(1, body));
}

const STUN_COOKIE = 0x2112a442;

/** A STUN message of `type` with the given attributes (each padded to 4 bytes). */
function stun(type: number, attributes: Array<[number, Buffer]>): Buffer {
  const encoded = attributes.map(([attr, value]) => {
    const header = Buffer.alloc(4);
    header.writeUInt16BE(attr, 0);
    header.writeUInt16BE(value.length, 2);
    return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
  });
  const body = Buffer.concat(encoded);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(body.length, 2);
  header.writeUInt32BE(STUN_COOKIE, 4);
  randomBytes(12).copy(header, 8);
  return Buffer.concat([header, body]);
}

/** A binding request that would nominate this path and switch the agent's role, if believed. */
function bindingRequest(username: string, integrity: Buffer | undefined): Buffer {
  const controlled = randomBytes(8).fill(0xff, 0, 1);
  const attributes: Array<[number, Buffer]> = [
    [0x0006, Buffer.from(username)],
    [0x0024, Buffer.from([0x6e, 0x00, 0x01, 0xff])], // PRIORITY
    [0x0025, Buffer.alloc(0)], // USE-CANDIDATE
    [0x8029, controlled], // ICE-CONTROLLED, the largest tie-breaker
  ];
  if (integrity) attributes.push([0x0008, integrity]);
  return stun(0x0001, attributes);
}

const randomUfrag = (): string => randomBytes(8).toString('hex');
const username = (targets: ForgeryTargets): string =>
  targets.usernames?.length ? pick(targets.usernames) : `${randomUfrag()}:${randomUfrag()}`;
const ssrc = (targets: ForgeryTargets): number => (targets.ssrcs?.length ? pick(targets.ssrcs) : randomInt(2 ** 32));

function rtp(targets: ForgeryTargets): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = pick([96, 97, 111, 0x80 | 96]);
  header.writeUInt16BE(randomInt(65536), 2);
  header.writeUInt32BE(randomInt(2 ** 32), 4);
  header.writeUInt32BE(ssrc(targets), 8);
  return Buffer.concat([header, randomBytes(randomInt(16, 1200))]);
}

function rtcp(targets: ForgeryTargets): Buffer {
  const words = randomInt(1, 20);
  const packet = Buffer.concat([Buffer.alloc(4), randomBytes(4 * words)]);
  packet[0] = 0x80 | randomInt(32);
  packet[1] = randomInt(200, 207);
  packet.writeUInt16BE(words, 2);
  packet.writeUInt32BE(ssrc(targets), 4);
  // The SRTCP trailer: E flag and index, then a tag.
  return Buffer.concat([packet, randomBytes(4).fill(0x80, 0, 1), randomBytes(pick([0, 10]))]);
}

const unknownContentType = (): number => {
  const type = randomInt(256);
  return type >= 20 && type <= 23 ? 25 : type;
};

export const FORGERIES: Record<string, Forge> = {
  'random bytes': () => randomBytes(randomInt(1, 1500)),
  'random, first byte 24-63 (DTLS range)': () => Buffer.concat([Buffer.from([randomInt(24, 64)]), randomBytes(randomInt(0, 1500))]),
  'DTLS plaintext close_notify': () => Buffer.from('15fefd000000000000000000020100', 'hex'),
  'DTLS plaintext fatal alert': () => dtlsRecord(21, 0, Buffer.from([2, pick([10, 40, 42, 47, 80])])),
  'DTLS unknown content type': () =>
    randomInt(2)
      ? Buffer.from('19fefd00000000000000000000', 'hex')
      : dtlsRecord(unknownContentType(), randomInt(3), randomBytes(randomInt(64))),
  'DTLS epoch-1 alert, not encrypted': () => dtlsRecord(21, 1, Buffer.from([pick([1, 2]), 0])),
  'DTLS record of any type and epoch': () => dtlsRecord(randomInt(20, 24), pick([0, 1, 2, 0xffff]), randomBytes(randomInt(0, 300))),
  'DTLS ClientHello without cookie': () => clientHello(Buffer.alloc(0)),
  'DTLS ClientHello with a made-up cookie': () => clientHello(randomBytes(20)),
  'DTLS HelloVerifyRequest': () => dtlsRecord(22, 0, handshake(3, Buffer.concat([Buffer.from([0xfe, 0xfd, 20]), randomBytes(20)]))),
  'DTLS records, several and truncated': () => {
    const records = Buffer.concat([dtlsRecord(21, 0, Buffer.from([1, 0])), dtlsRecord(23, 1, randomBytes(40))]);
    return records.subarray(0, randomInt(1, records.length + 1));
  },
  'STUN request without integrity': (targets) => bindingRequest(username(targets), undefined),
  'STUN request with a wrong integrity': (targets) => bindingRequest(username(targets), randomBytes(20)),
  "STUN request with another agent's username": () => bindingRequest(`${randomUfrag()}:${randomUfrag()}`, randomBytes(20)),
  'STUN response to no request': () => stun(0x0101, [[0x0020, randomBytes(8)]]),
  'RTP failing authentication': rtp,
  'RTCP failing authentication': rtcp,
  '0-3 bytes': () => randomBytes(randomInt(0, 4)),
  '1,500 bytes': () => randomBytes(1500),
};

export const FORGERY_KINDS = Object.keys(FORGERIES);

/** One forged datagram of each kind in turn, round and round. */
export function* forgedDatagrams(targets: ForgeryTargets = {}): Generator<{ kind: string; datagram: Buffer }> {
  for (;;) for (const kind of FORGERY_KINDS) yield { kind, datagram: FORGERIES[kind]!(targets) };
}
