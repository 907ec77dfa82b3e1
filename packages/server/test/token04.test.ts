import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '@parley/protocol';
import { decodeToken04, encodeToken04, generateToken04, verifyToken04, type Token04Claims } from '../src/auth/token04.js';

const SECRET = 'fa94dd0f974cf2e293728a526b028271';
const CLAIMS: Token04Claims = { app_id: 1, user_id: 'demo', nonce: 123456789, ctime: 1700000000, expire: 1700003600, payload: '' };
const CBC_VECTOR =
  '04AAAAAGVT/xAAEDAxMjM0NTY3ODlhYmNkZWYAcPDOWcZeMCPxbh1dpHzCTREIwK2oIO5x78Qlcu9iUMPYkqBI5TvjB3JwCxC9+klE8/eu//t2uE7+o7gQ53yB/JkIFUA6xyD5rb5rd5NER5knvdDJH2auGOam8ZKJG5qT/1t+UUUnbL8ghIsUgkbwAAg=';
const GCM_VECTOR =
  '04AAAAAGVT/xAADAABAgMEBQYHCAkKCwBzlo4HRoGUdkuLbKIoOhbZY6YpcMaBTLWHRtiSNdXNuWkV2JYrMFwLwjjq6aFvxM5vMUW1ucoWpme7Vck+JCYUW5+rbF2LagnFZkRVec2ODtmU4F4kKEo7U2F+thJs5COIYlau+pkGhJGWuIAhD9RBltNqvwE=';

const codeOf = (r: { ok: boolean; code?: number }): number | undefined => (r.ok ? 0 : r.code);

test('the spec vectors decode, and encoding the same claims with the same IV reproduces them', () => {
  for (const vector of [CBC_VECTOR, GCM_VECTOR]) {
    const decoded = decodeToken04(vector, SECRET);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.claims, CLAIMS);
  }
  assert.equal(encodeToken04(CLAIMS, SECRET, 'cbc', Buffer.from('0123456789abcdef')), CBC_VECTOR);
  assert.equal(encodeToken04(CLAIMS, SECRET, 'gcm', Buffer.from([...Array(12).keys()])), GCM_VECTOR);
});

test('generated tokens of both forms round-trip and verify', () => {
  for (const mode of ['gcm', 'cbc'] as const) {
    const token = generateToken04({ appID: 7, userID: 'u1', serverSecret: SECRET, effectiveTimeInSeconds: 3600, mode });
    const verified = verifyToken04(token, SECRET, { appID: 7, userID: 'u1' });
    assert.ok(verified.ok, mode);
    assert.equal(verified.claims.user_id, 'u1');
    assert.equal(verified.privileges, undefined);
  }
  const strict = generateToken04({
    appID: 7,
    userID: 'u1',
    serverSecret: SECRET,
    effectiveTimeInSeconds: 60,
    payload: { room_id: 'r1', privilege: { '1': 1, '2': 0 }, stream_id_list: null },
  });
  const verified = verifyToken04(strict, SECRET, { appID: 7, userID: 'u1' });
  assert.ok(verified.ok);
  assert.deepEqual(verified.privileges, { room_id: 'r1', privilege: { '1': 1, '2': 0 }, stream_id_list: null });
});

test('every way a token can be wrong has its code', () => {
  const now = CLAIMS.ctime + 10;
  const ok = { appID: 1, userID: 'demo', now };
  assert.equal(codeOf(verifyToken04(GCM_VECTOR, SECRET, ok)), 0);
  assert.equal(codeOf(verifyToken04(GCM_VECTOR, SECRET, { ...ok, now: CLAIMS.expire })), ErrorCode.TokenExpired);
  assert.equal(codeOf(verifyToken04(GCM_VECTOR, SECRET, { ...ok, appID: 2 })), ErrorCode.TokenAppIDMismatch);
  assert.equal(codeOf(verifyToken04(GCM_VECTOR, SECRET, { ...ok, userID: 'other' })), ErrorCode.TokenUserIDMismatch);
  assert.equal(codeOf(verifyToken04('03' + GCM_VECTOR.slice(2), SECRET, ok)), ErrorCode.TokenVersionInvalid);
  assert.equal(codeOf(verifyToken04(GCM_VECTOR, 'f'.repeat(32), ok)), ErrorCode.TokenInvalid, 'wrong secret');
  assert.equal(codeOf(verifyToken04(CBC_VECTOR, 'f'.repeat(32), ok)), ErrorCode.TokenInvalid, 'wrong secret, CBC');
  for (let cut = 3; cut < GCM_VECTOR.length; cut += 17) {
    assert.notEqual(codeOf(verifyToken04(GCM_VECTOR.slice(0, cut), SECRET, ok)), 0, `truncated at ${cut}`);
  }
  // Flip each bit of the binary body: GCM's tag catches every one.
  const bytes = Buffer.from(GCM_VECTOR.slice(2), 'base64');
  for (let i = 0; i < bytes.length * 8; i += 7) {
    const flipped = Buffer.from(bytes);
    flipped[i >> 3]! ^= 1 << (i & 7);
    assert.notEqual(codeOf(verifyToken04('04' + flipped.toString('base64'), SECRET, ok)), 0, `bit ${i}`);
  }
  const future = encodeToken04({ ...CLAIMS, ctime: now + 301, expire: now + 4000 }, SECRET, 'gcm');
  assert.equal(codeOf(verifyToken04(future, SECRET, ok)), ErrorCode.TokenInvalid, 'made more than 5 min in the future');
  const skewed = encodeToken04({ ...CLAIMS, ctime: now + 60, expire: now + 4000 }, SECRET, 'gcm');
  assert.equal(codeOf(verifyToken04(skewed, SECRET, ok)), 0, 'a minute of clock skew is tolerated');
  const badNonce = encodeToken04({ ...CLAIMS, nonce: 1.5 }, SECRET, 'gcm');
  assert.equal(codeOf(verifyToken04(badNonce, SECRET, ok)), ErrorCode.TokenNonceInvalid);
  const badPayload = encodeToken04({ ...CLAIMS, payload: '{not json' }, SECRET, 'gcm');
  assert.equal(codeOf(verifyToken04(badPayload, SECRET, ok)), ErrorCode.TokenPayloadInvalid);
  assert.equal(codeOf(verifyToken04('04!!!', SECRET, ok)), ErrorCode.TokenInvalid);
});

test('the parley token CLI mints tokens the server accepts and inspects them', async () => {
  const { execFileSync } = await import('node:child_process');
  const cli = new URL('../dist/cli.js', import.meta.url).pathname;
  const run = (...args: string[]): string => execFileSync(process.execPath, [cli, 'token', ...args], { encoding: 'utf8' }).trim();
  const token = run(
    'generate',
    '--app-id',
    '5',
    '--user-id',
    'bob',
    '--secret',
    SECRET,
    '--room',
    'r1',
    '--streams',
    's1,s2',
    '--no-publish',
    '--mode',
    'cbc',
  );
  const verified = verifyToken04(token, SECRET, { appID: 5, userID: 'bob' });
  assert.ok(verified.ok);
  assert.deepEqual(verified.privileges, { room_id: 'r1', privilege: { '1': 1, '2': 0 }, stream_id_list: ['s1', 's2'] });
  const inspected = JSON.parse(run('inspect', token, '--secret', SECRET)) as { user_id: string; expired: boolean };
  assert.equal(inspected.user_id, 'bob');
  assert.equal(inspected.expired, false);
  // CBC has no integrity check: about one wrong key in 256 gives valid padding, and garbage that is not JSON.
  assert.throws(() => run('inspect', token, '--secret', 'f'.repeat(32)), /1002033|1002075/);
});
