import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublisherState, readIvf, readOggOpus } from '@parley/sdk';
import {
  beepOnsets,
  callServerApi,
  type ServerApiReply,
  decodeErrors,
  firstVideoPacket,
  flashTimes,
  probeMedia,
  syncClip,
} from '@parley/testkit';
import { randomApp, startServer, type AppConfig, type RecordingOptions } from '../src/index.js';
import { TestClient, sleep } from '../../sdk/test/helpers.js';
import { SECRET, startReceiver } from './webhookHelpers.js';

const FPS = 30;

function syncFixture(): { video: ReturnType<typeof readIvf>; audio: Uint8Array[] } {
  const { ivf, ogg } = syncClip(10);
  return { video: readIvf(new Uint8Array(readFileSync(ivf))), audio: readOggOpus(new Uint8Array(readFileSync(ogg))) };
}

async function recordingServer(t: TestContext, recording: Partial<RecordingOptions> = {}, app: AppConfig = randomApp(1_000_001)) {
  const dir = recording.dir ?? mkdtempSync(join(tmpdir(), 'parley-rec-'));
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    apps: [app],
    logLevel: 'silent',
    staticDir: false,
    recording: { ...recording, dir },
  });
  const clients: TestClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await server.close();
    if (!recording.dir) rmSync(dir, { recursive: true, force: true });
  });
  const client = (): TestClient => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
    clients.push(c);
    return c;
  };
  const api: Api = (action, params) => callServerApi(server.httpUrl, app, action, params);
  return { server, app, dir, client, api };
}

/**
 * Sends the sync clip in a loop, each frame at its time in the clip and stamped with it, as a
 * capture device would: audio and video stay together (keyframe requests wait for the clip's next
 * keyframe, a second at most, rather than skipping ahead).
 */
function sendClipInSync(engine: TestClient['engine']): () => void {
  const { video, audio } = syncFixture();
  const start = performance.now();
  let frame = 0;
  let packet = 0;
  const timer = setInterval(() => {
    const now = performance.now() - start;
    for (; frame * (1000 / FPS) <= now; frame++) {
      const { data } = video.frames[frame % video.frames.length]!;
      const params = { codec: 'vp8' as const, isKeyFrame: frame % FPS === 0, width: video.width, height: video.height };
      engine.sendCustomVideoCaptureEncodedData(data, params, frame * (1000 / FPS));
    }
    for (; packet * 20 <= now; packet++)
      engine.sendCustomAudioCaptureEncodedData(audio[packet % audio.length]!, { codec: 'opus' }, packet * 20);
  }, 5);
  return () => clearInterval(timer);
}

/** Logs `userID` in to `roomID` and publishes the sync clip as `streamID`; resolves with a function that stops sending and says when it did. */
async function publishClip(client: TestClient, roomID: string, userID: string, streamID: string): Promise<() => number> {
  assert.equal(await client.login(roomID, userID), 0);
  client.engine.startPublishingStream(streamID);
  const stop = sendClipInSync(client.engine);
  await client.waitFor('publisherStateUpdate', (id, state) => id === streamID && state === PublisherState.Publishing);
  return () => {
    stop();
    return Date.now();
  };
}

type FileInfo = { FileId: string; StreamId: string; Duration: number; BeginTimestamp: number; MediaTrackType: number; Segment: number };

type Api = (action: string, params: Record<string, unknown>) => Promise<ServerApiReply>;

async function waitForStatus(
  api: Api,
  taskId: string,
  match: (data: { Status: number; RecordFiles: FileInfo[] }) => boolean,
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await api('DescribeRecordStatus', { TaskId: taskId });
    const data = reply.Data as { Status: number; RecordFiles: FileInfo[] };
    if (match(data)) return data;
    if (Date.now() > deadline) throw new Error(`recording status: ${JSON.stringify(reply)}`);
    await sleep(100);
  }
}

test('a stream recorded to WebM: every frame, its length, a keyframe first, audio and video in sync, a manifest, webhooks and the file command', async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const app = { ...randomApp(1_000_001), callbackUrl: receiver.url, callbackSecret: SECRET };
  const marker = join(mkdtempSync(join(tmpdir(), 'parley-ready-')), 'ready.txt');
  const { api, dir, client } = await recordingServer(t, { onFileReady: `echo "$1" >> ${marker}` }, app);
  const started = await api('StartRecord', { RoomId: 'rec', RecordInputParams: { RecordMode: 1 } });
  assert.equal(started.Code, 0, started.Message);
  const taskId = (started.Data as { TaskId: string }).TaskId;
  assert.match(taskId, /^[0-9a-f]{16}$/);

  const stopSending = await publishClip(client(), 'rec', 'alice', 'alice-cam');
  await waitForStatus(api, taskId, (d) => d.RecordFiles.length === 1);
  await sleep(6000);
  const lastSentAt = stopSending();
  await sleep(300);
  assert.equal((await api('StopRecord', { TaskId: taskId })).Code, 0);
  const status = await waitForStatus(
    api,
    taskId,
    (d) => d.Status === 3 && d.RecordFiles.every((f) => (f as unknown as { Status: number }).Status === 3),
  );
  assert.equal(status.RecordFiles.length, 1);
  const [file] = status.RecordFiles as [FileInfo];
  assert.equal(file.StreamId, 'alice-cam');
  assert.equal(file.MediaTrackType, 3);
  assert.match(file.FileId, /\.webm$/);
  const path = join(dir, taskId, file.FileId);

  assert.equal(await decodeErrors(path), '');
  const probe = await probeMedia(path);
  const video = probe.streams.find((s) => s.kind === 'video')!;
  const audio = probe.streams.find((s) => s.kind === 'audio')!;
  assert.equal(video.codec, 'vp8');
  assert.equal(audio.codec, 'opus');
  assert.deepEqual([video.width, video.height], [640, 360]);
  const first = await firstVideoPacket(path);
  assert.ok(first.keyFrame, 'the first video packet is a keyframe');
  // The file runs from its first frame (on the sender's clock) to the last frame sent.
  const expectedSec = (lastSentAt - file.BeginTimestamp) / 1000;
  t.diagnostic(
    `duration ${probe.durationSec.toFixed(3)} s, expected ${expectedSec.toFixed(3)} s; ${video.frames} video frames, ${audio.frames} audio frames`,
  );
  assert.ok(Math.abs(probe.durationSec - expectedSec) <= 0.3, `duration ${probe.durationSec} s, expected ${expectedSec} s`);
  const span = (await flashTimes(path)).length; // at least one flash a second
  assert.ok(span >= 5, `${span} flashes`);
  assert.ok(
    video.frames >= 0.995 * Math.floor((probe.durationSec - first.timeSec) * FPS),
    `${video.frames} frames in ${probe.durationSec} s`,
  );

  const flashes = await flashTimes(path);
  const beeps = await beepOnsets(path);
  const offsets = flashes.map((f) => beeps.reduce((best, b) => (Math.abs(b - f) < Math.abs(best) ? b - f : best), Infinity));
  t.diagnostic(`audio minus video at each flash (ms): ${offsets.map((o) => Math.round(o * 1000)).join(' ')}`);
  assert.ok(offsets.length >= 5);
  for (const offset of offsets) assert.ok(Math.abs(offset) <= 0.04, `A/V offset ${Math.round(offset * 1000)} ms`);

  const manifest = JSON.parse(readFileSync(join(dir, taskId, 'manifest.json'), 'utf8')) as {
    taskId: string;
    endTimestamp: number | null;
    files: Array<{ fileName: string; segment: number; beginTimestamp: number; clock: string; status: string }>;
  };
  assert.equal(manifest.taskId, taskId);
  assert.ok(manifest.endTimestamp);
  assert.deepEqual(
    manifest.files.map((f) => [f.fileName, f.segment, f.clock, f.status]),
    [[file.FileId, 1, 'rtcp-sr', 'ready']],
  );

  await receiver.waitFor((a) => a.filter((x) => x.body.event === 'record_status').length >= 3);
  const events = receiver.arrivals.map((a) => a.body).filter((b) => b.event === 'record_status');
  assert.deepEqual(
    events.map((e) => [e.event === 'record_status' && e.event_type, e.room_seq]),
    [
      [100, 1],
      [1, 2],
      [5, 3],
    ],
  );
  const until = Date.now() + 5000;
  while (Date.now() < until && !readdirSync(join(marker, '..')).includes('ready.txt')) await sleep(50);
  assert.equal(readFileSync(marker, 'utf8').trim(), path);
});
