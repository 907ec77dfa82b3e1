import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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
  startServerProcess,
  syncClip,
} from '@parley/testkit';
import { ApiCode, randomApp, startServer, type AppConfig, type RecordingOptions } from '../src/index.js';
import { TestClient, sendClipInSync, sleep } from '../../sdk/test/helpers.js';
import { SECRET, startReceiver } from './webhookHelpers.js';

const FPS = 30;

function syncFixture(): { video: ReturnType<typeof readIvf>; audio: Uint8Array[] } {
  const { ivf, ogg } = syncClip(10);
  return { video: readIvf(new Uint8Array(readFileSync(ivf))), audio: readOggOpus(new Uint8Array(readFileSync(ogg))) };
}

async function recordingServer(
  t: TestContext,
  recording: Partial<RecordingOptions> = {},
  app: AppConfig = randomApp(1_000_001),
  otherApps: AppConfig[] = [],
) {
  const dir = recording.dir ?? mkdtempSync(join(tmpdir(), 'parley-rec-'));
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    apps: [app, ...otherApps],
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
  return {
    server,
    app,
    dir,
    client,
    api,
    apiOf:
      (other: AppConfig): Api =>
      (action, params) =>
        callServerApi(server.httpUrl, other, action, params),
  };
}

/** Logs `userID` in to `roomID` and publishes the sync clip as `streamID`; resolves with a function that stops sending and says when it did. */
async function publishClip(client: TestClient, roomID: string, userID: string, streamID: string): Promise<() => number> {
  assert.equal(await client.login(roomID, userID), 0);
  client.engine.startPublishingStream(streamID);
  const clip = syncFixture();
  const stop = sendClipInSync(client.engine, () => clip);
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

test('a publisher that stops and publishes again gives a second segment; StreamType 4 writes audio and video apart', async (t) => {
  const { api, dir, client } = await recordingServer(t, { syncWaitMs: 1000 });
  const started = await api('StartRecord', { RoomId: 'seg', RecordInputParams: { RecordMode: 1, StreamType: 4 } });
  const taskId = (started.Data as { TaskId: string }).TaskId;
  const alice = client();
  const stopSending = await publishClip(alice, 'seg', 'alice', 'cam');
  await waitForStatus(api, taskId, (d) => d.RecordFiles.length === 2);
  await sleep(2000);
  alice.engine.stopPublishingStream();
  await waitForStatus(
    api,
    taskId,
    (d) => d.RecordFiles.length === 2 && d.RecordFiles.every((f) => (f as unknown as { Status: number }).Status === 3),
  );
  alice.engine.startPublishingStream('cam');
  await alice.waitFor('publisherStateUpdate', (id, state) => id === 'cam' && state === PublisherState.Publishing);
  await waitForStatus(api, taskId, (d) => d.RecordFiles.length === 4);
  await sleep(2000);
  stopSending();
  assert.equal((await api('StopRecord', { TaskId: taskId })).Code, 0);
  const status = await waitForStatus(api, taskId, (d) => d.Status === 3);
  assert.deepEqual(status.RecordFiles.map((f) => [f.MediaTrackType, f.Segment, f.FileId.split('.').pop()]).sort(), [
    [1, 1, 'ogg'],
    [1, 2, 'ogg'],
    [2, 1, 'webm'],
    [2, 2, 'webm'],
  ]);
  const manifest = JSON.parse(readFileSync(join(dir, taskId, 'manifest.json'), 'utf8')) as {
    files: Array<{ fileName: string; segment: number; tracks: string[]; offsetMs: number; durationMs: number }>;
  };
  assert.equal(manifest.files.length, 4);
  for (const file of manifest.files) {
    const path = join(dir, taskId, file.fileName);
    assert.equal(await decodeErrors(path), '', file.fileName);
    const probe = await probeMedia(path);
    assert.deepEqual(
      probe.streams.map((s) => s.kind),
      file.tracks,
    );
    assert.ok(
      Math.abs(probe.durationSec * 1000 - file.durationMs) < 100,
      `${file.fileName}: ${probe.durationSec} s, manifest ${file.durationMs} ms`,
    );
  }
  // The second segments begin after the first ones end, on the task's timeline.
  for (const kind of ['audio', 'video']) {
    const [first, second] = manifest.files.filter((f) => f.tracks[0] === kind).sort((a, b) => a.segment - b.segment);
    assert.ok(second!.offsetMs >= first!.offsetMs + first!.durationMs, `${kind}: ${JSON.stringify([first, second])}`);
  }
});

test('mixed mode records the room as one picture that follows its streams: one file while a publisher leaves', async (t) => {
  const { api, dir, client } = await recordingServer(t, { syncWaitMs: 2000 });
  const alice = client();
  const bob = client();
  t.after(await publishClip(alice, 'mixed', 'alice', 'alice-cam'));
  t.after(await publishClip(bob, 'mixed', 'bob', 'bob-cam'));
  const started = await api('StartRecord', {
    RoomId: 'mixed',
    RecordInputParams: { RecordMode: 2, MixConfig: { MixOutputVideoConfig: { Width: 640, Height: 180, Fps: 15 } } },
  });
  assert.equal(started.Code, 0, started.Message);
  const taskId = (started.Data as { TaskId: string }).TaskId;
  await waitForStatus(api, taskId, (d) => d.RecordFiles.length === 1, 20_000);
  await sleep(3000);
  bob.engine.stopPublishingStream();
  await sleep(3000);
  assert.equal((await api('StopRecord', { TaskId: taskId })).Code, 0);
  const status = await waitForStatus(api, taskId, (d) => d.Status === 3);
  assert.equal(status.RecordFiles.length, 1, JSON.stringify(status.RecordFiles));
  const [file] = status.RecordFiles as [FileInfo];
  assert.equal(file.StreamId, `rec_${taskId}`);
  assert.equal(file.MediaTrackType, 3);
  const path = join(dir, taskId, file.FileId);
  assert.equal(await decodeErrors(path), '');
  const probe = await probeMedia(path);
  const video = probe.streams.find((s) => s.kind === 'video')!;
  assert.deepEqual([video.width, video.height], [640, 180]);
  assert.ok(probe.streams.some((s) => s.kind === 'audio'));
  t.diagnostic(`the room's mix: ${probe.durationSec.toFixed(1)} s, ${video.frames} frames`);
  assert.ok(probe.durationSec >= 5, `${probe.durationSec} s`);
  const manifest = JSON.parse(readFileSync(join(dir, taskId, 'manifest.json'), 'utf8')) as { recordMode: number };
  assert.equal(manifest.recordMode, 2);
});

test('a server killed while recording leaves a file that plays up to the moment it died', async (t) => {
  const app = randomApp(1_000_002);
  const dir = mkdtempSync(join(tmpdir(), 'parley-rec-kill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startServerProcess({
    listen: { host: '127.0.0.1', port: 0 },
    apps: [app],
    media: { listenIp: '127.0.0.1', udpPort: 0, tcpPort: false },
    recording: { dir },
  });
  t.after(() => server.stop());
  const alice = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
  t.after(() => alice.destroy());
  const stopSending = await publishClip(alice, 'kill', 'alice', 'cam');
  t.after(stopSending);
  const api: Api = (action, params) => callServerApi(server.httpUrl, app, action, params);
  const taskId = ((await api('StartRecord', { RoomId: 'kill', RecordInputParams: { RecordMode: 1 } })).Data as { TaskId: string }).TaskId;
  await waitForStatus(api, taskId, (d) => d.RecordFiles.length === 1);
  await sleep(4000);
  process.kill(server.pid, 'SIGKILL');
  await server.stop();
  const [file] = readdirSync(join(dir, taskId)).filter((f) => f.endsWith('.webm'));
  const path = join(dir, taskId, file!);
  assert.equal(await decodeErrors(path), '');
  const video = (await probeMedia(path)).streams.find((s) => s.kind === 'video')!;
  t.diagnostic(`${video.frames} video frames in the killed server's file`);
  assert.ok(video.frames >= 3.5 * FPS, `${video.frames} frames`);
  assert.ok((await firstVideoPacket(path)).keyFrame);
});

test('recording tasks: limits, ends and refusals, each with its code', async (t) => {
  const other = randomApp(1_000_009);
  const { api, client, apiOf } = await recordingServer(t, { syncWaitMs: 2000 }, randomApp(1_000_001), [other]);
  const record = (params: Record<string, unknown>) => api('StartRecord', { RoomId: 'limits', ...params });
  // Refused: what is not offered, and bad values.
  assert.equal((await record({ RecordInputParams: { RecordMode: 3 } })).Code, ApiCode.InvalidParameter);
  assert.equal(
    (await record({ RecordInputParams: { RecordMode: 1 }, RecordOutputParams: { OutputFileFormat: 'mp4' } })).Code,
    ApiCode.InvalidParameter,
  );
  assert.equal((await record({ RecordInputParams: { RecordMode: 1, StreamType: 5 } })).Code, ApiCode.InvalidParameter);
  assert.equal((await api('StopRecord', { TaskId: '0123456789abcdef' })).Code, ApiCode.RecordTaskNotFound);
  assert.equal((await api('DescribeRecordStatus', { TaskId: '0123456789abcdef' })).Code, ApiCode.RecordTaskNotFound);

  // MaxIdleTime: a room without streams.
  const idle = ((await record({ RecordInputParams: { RecordMode: 1, MaxIdleTime: 1 } })).Data as { TaskId: string }).TaskId;
  const idled = (await waitForStatus(api, idle, (d) => d.Status === 3, 5000)) as unknown as { QuitReason: number; RecordFiles: unknown[] };
  assert.equal(idled.QuitReason, 3);
  assert.deepEqual(idled.RecordFiles, []);
  assert.equal((await api('StopRecord', { TaskId: idle })).Code, ApiCode.RecordTaskStopped);

  // MaxRecordTime: the task ends with its file finished.
  const stopSending = await publishClip(client(), 'limits', 'alice', 'cam');
  t.after(stopSending);
  const timed = ((await record({ RecordInputParams: { RecordMode: 1, MaxRecordTime: 3 } })).Data as { TaskId: string }).TaskId;
  const ended = (await waitForStatus(api, timed, (d) => d.Status === 3, 8000)) as unknown as {
    QuitReason: number;
    RecordFiles: FileInfo[];
  };
  assert.equal(ended.QuitReason, 4);
  assert.equal(ended.RecordFiles.length, 1);
  assert.ok(ended.RecordFiles[0]!.Duration > 1000, JSON.stringify(ended.RecordFiles));

  // Another app cannot see or stop the task.
  assert.equal((await apiOf(other)('DescribeRecordStatus', { TaskId: timed })).Code, ApiCode.RecordTaskNotFound);
  assert.equal((await apiOf(other)('StopRecord', { TaskId: timed })).Code, ApiCode.RecordTaskNotFound);
});

test('a server without recording.dir refuses StartRecord', async (t) => {
  const app = randomApp(1_000_003);
  const server = await startServerOf(t, app);
  const reply = await callServerApi(server.httpUrl, app, 'StartRecord', { RoomId: 'r', RecordInputParams: { RecordMode: 1 } });
  assert.equal(reply.Code, ApiCode.RecordingNotConfigured);
});

test('a full disk ends the recording with its reason, and the call goes on: its player still gets every frame', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-rec-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48k', 'parley-rec-full', dir]);
  // Hooks run in order: the server closes its files, then the disk goes.
  const { api, client } = await recordingServer(t, { dir });
  t.after(() => {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const stopSending = await publishClip(client(), 'full', 'alice', 'cam');
  t.after(stopSending);
  const bob = client();
  let frames = 0;
  bob.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames++ });
  assert.equal(await bob.login('full', 'bob'), 0);
  bob.engine.startPlayingStream('cam');
  const taskId = ((await api('StartRecord', { RoomId: 'full', RecordInputParams: { RecordMode: 1 } })).Data as { TaskId: string }).TaskId;
  const failed = (await waitForStatus(api, taskId, (d) => d.Status === 4, 15_000)) as unknown as { QuitReason: number; Failure: string };
  assert.equal(failed.QuitReason, 1001);
  assert.match(failed.Failure, /ENOSPC|no space/i);
  const before = frames;
  await sleep(1000);
  const after = frames;
  assert.ok(after - before >= 25, `bob got ${after - before} frames in the second after the disk filled`);
});

async function startServerOf(t: TestContext, app: AppConfig) {
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [app], logLevel: 'silent', staticDir: false });
  t.after(() => server.close());
  return server;
}
