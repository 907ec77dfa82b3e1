/**
 * A browser's H264 recorded: Chromium publishes H264 (its simulcast layers) from the demo page,
 * and the recording is Matroska with the stream's largest layer, length-prefixed H264 with its
 * decoder configuration, starting at a keyframe, decodable to the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_APP, startServer } from '@parley/server';
import {
  callServerApi,
  cameraClip,
  decodeErrors,
  firstVideoPacket,
  launchChromium,
  openDemo,
  probeMedia,
  sampleVideo,
  teardown,
  videoSpanSec,
} from '@parley/testkit';

test('a Chromium publisher’s H264 is recorded to MKV: its largest layer, from a keyframe, every frame decodable', async (t) => {
  const closeLater = teardown(t);
  const dir = mkdtempSync(join(tmpdir(), 'parley-rec-h264-'));
  closeLater(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    apps: [DEV_APP],
    devMode: true,
    logLevel: 'silent',
    recording: { dir, syncWaitMs: 3000 },
  });
  closeLater(() => server.close());
  const chromium = await launchChromium({ fakeVideoFile: cameraClip({ width: 640, height: 360, fps: 15, seconds: 4 }) });
  closeLater(() => chromium.close());
  const page = await openDemo(server.httpUrl, chromium.browser, 'alice', { roomID: 'h264', videoCodec: 'H264' });
  // What the largest layer is depends on Chromium: a busy encoder scales its layers down, so the
  // recording is checked against the widths its layers had while the file opened.
  const largestSent = async (): Promise<number> => Math.max(0, ...Object.values((await sampleVideo(page)).frameWidthByRid));
  // Chromium starts its layers one by one as its bandwidth estimate grows: the recording starts once the top one is on.
  for (const deadline = Date.now() + 15_000; !((await sampleVideo(page)).framesSentByRid.f! > 0) && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 200));
  }
  const largestWidths = new Set<number>([await largestSent()]);
  const api = (action: string, params: Record<string, unknown>) => callServerApi(server.httpUrl, DEV_APP, action, params);
  const started = await api('StartRecord', { RoomId: 'h264', RecordInputParams: { RecordMode: 1 } });
  assert.equal(started.Code, 0, started.Message);
  const taskId = (started.Data as { TaskId: string }).TaskId;
  type Status = { Status: number; RecordFiles: Array<{ FileId: string; Status: number }> };
  const status = async (): Promise<Status> => (await api('DescribeRecordStatus', { TaskId: taskId })).Data as Status;
  for (const deadline = Date.now() + 20_000; (await status()).RecordFiles.length === 0; await new Promise((r) => setTimeout(r, 200))) {
    if (Date.now() > deadline) throw new Error('no file opened');
    largestWidths.add(await largestSent());
  }
  largestWidths.add(await largestSent());
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal((await api('StopRecord', { TaskId: taskId })).Code, 0);
  let ended = await status();
  for (const deadline = Date.now() + 10_000; ended.Status !== 3; ended = await status()) {
    if (Date.now() > deadline) throw new Error(`not ended: ${JSON.stringify(ended)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(ended.RecordFiles.length, 1);
  const path = join(dir, taskId, ended.RecordFiles[0]!.FileId);
  assert.match(path, /\.mkv$/);
  assert.equal(await decodeErrors(path), '');
  const probe = await probeMedia(path);
  const video = probe.streams.find((s) => s.kind === 'video')!;
  assert.equal(video.codec, 'h264');
  t.diagnostic(`recorded ${video.width}x${video.height}; the largest layer sent ${[...largestWidths].join(', ')} wide`);
  assert.ok(largestWidths.has(video.width!), 'the largest layer');
  assert.equal(video.width! * 9, video.height! * 16);
  assert.ok(probe.streams.some((s) => s.kind === 'audio' && s.codec === 'opus'));
  assert.ok((await firstVideoPacket(path)).keyFrame);
  const span = await videoSpanSec(path);
  t.diagnostic(`${video.frames} frames in ${span.toFixed(2)} s`);
  assert.ok(span >= 4, `${span} s`);
  // The camera's 15 fps as Chromium encodes them under load (it drops some); every frame of the Node.js publisher's is in recording.test.ts.
  assert.ok(video.frames >= 0.7 * span * 15, `${video.frames} frames in ${span} s at 15 fps`);
});
