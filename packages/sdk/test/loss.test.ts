import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PlayerState } from '@parley/sdk';
import { equalBytes, sleep, startTestServer, videoFixture } from './helpers.js';

/** The server's media ports in this test: only they see loss, signalling and everything else do not. */
const MEDIA_PORTS: [number, number] = [47100, 47199];
const LOSS = 0.1;

/** Real packet loss on loopback, in both directions of the server's media ports (iptables, needs root). */
function lossRules(action: '-I' | '-D'): void {
  for (const direction of ['--dport', '--sport']) {
    execFileSync('iptables', [
      action,
      'INPUT',
      '-i',
      'lo',
      '-p',
      'udp',
      direction,
      MEDIA_PORTS.join(':'),
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      String(LOSS),
      '-j',
      'DROP',
    ]);
  }
}

function droppedPackets(): number {
  const out = execFileSync('iptables', ['-L', 'INPUT', '-v', '-n', '-x'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes('statistic') && line.includes(MEDIA_PORTS.join(':')))
    .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
}

test(`with ${LOSS * 100}% packet loss each way, NACK/RTX repairs the video: frames arrive byte-identical, in order, once`, async (t) => {
  const env = await startTestServer({ media: { portRange: MEDIA_PORTS } });
  t.after(() => env.close());
  const pub = env.client();
  const viewer = env.client();
  const received: Array<{ data: Uint8Array; ts: number }> = [];
  viewer.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: (data, _params, ts) => received.push({ data, ts }) });
  assert.equal(await pub.login('r-loss', 'pub'), 0);
  assert.equal(await viewer.login('r-loss', 'viewer'), 0);
  await pub.publish('s-loss');
  viewer.engine.startPlayingStream('s-loss');
  await viewer.waitFor('playerStateUpdate', (_, s) => s === PlayerState.Playing);

  const frames = videoFixture.frames;
  // Loss starts once the first frame is through: a receiver cannot ask for packets before the first it saw.
  const sendFrame = (i: number): number =>
    pub.engine.sendCustomVideoCaptureEncodedData(
      frames[i % frames.length]!.data,
      { codec: 'vp8', isKeyFrame: i % 30 === 0, width: 320, height: 240 },
      i * 33,
    );
  sendFrame(0);
  while (received.length === 0) await sleep(5);
  lossRules('-I');
  t.after(() => lossRules('-D'));
  // A lost packet is noticed when a later one arrives, so a live stream goes on after the frames checked.
  const TAIL = 30;
  for (let i = 1; i < frames.length + TAIL; i++) {
    sendFrame(i);
    await sleep(10);
  }
  await sleep(1500);
  const dropped = droppedPackets();
  const checked = received.filter((f) => f.ts / 33 < frames.length);
  const delivered = new Set(checked.map((f) => f.ts / 33));
  const missing = frames.map((_, i) => i).filter((i) => !delivered.has(i));
  console.log(
    `# loss test: ${checked.length}/${frames.length} frames delivered, ${dropped} packets dropped by the network; missing: ${missing.join(',') || 'none'}`,
  );

  // Every delivered frame is the frame sent at that time, whole; none twice; in order.
  let previous = -1;
  for (const frame of received) {
    const index = frame.ts / 33;
    assert.ok(Number.isInteger(index) && index > previous, `frame ${index} after ${previous}`);
    assert.ok(equalBytes(frame.data, frames[index % frames.length]!.data), `frame ${index} is byte-identical`);
    previous = index;
  }
  assert.ok(dropped >= 40, `the network really lost packets (${dropped})`);
  // Unrepaired, one lost packet would cost the rest of its 30-frame group; repaired, nothing is lost.
  assert.deepEqual(missing, [], `${checked.length} of ${frames.length} frames delivered with ${dropped} packets dropped`);
});
