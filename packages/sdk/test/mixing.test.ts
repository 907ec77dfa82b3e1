import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, MixerInputContentType, StreamRelayCDNState, UpdateType, type MixerTask } from '@parley/sdk';
import { ApiCode } from '@parley/server';
import { callServerApi, freePort, probeMedia, startRtmpReceiver, videoSpanSec } from '@parley/testkit';
import { ivfHeader, loopFixtures, sleep, startTestServer, type TestClient } from './helpers.js';

const run = promisify(execFile);

/** VP8 frames as an IVF file (32-byte header, 12-byte frame headers), for ffmpeg to decode. */
function writeIvf(path: string, frames: Uint8Array[], width: number, height: number): void {
  const parts: Buffer[] = [ivfHeader(width, height, frames.length)];
  frames.forEach((frame, i) => {
    const frameHeader = Buffer.alloc(12);
    frameHeader.writeUInt32LE(frame.length, 0);
    frameHeader.writeBigUInt64LE(BigInt(i), 4);
    parts.push(frameHeader, Buffer.from(frame));
  });
  writeFileSync(path, Buffer.concat(parts));
}

/** The mean luma of the left and right halves of the last decoded frame. */
async function halvesLuma(path: string, width: number, height: number): Promise<[number, number]> {
  const luma = async (x: number): Promise<number> => {
    const { stderr } = await run('ffmpeg', [
      ...['-v', 'info', '-i', path, '-vf', `crop=${width / 2}:${height}:${x}:0,signalstats,metadata=print:key=lavfi.signalstats.YAVG`],
      ...['-f', 'null', '-'],
    ]);
    const values = [...stderr.matchAll(/YAVG=([\d.]+)/g)].map((m) => Number(m[1]));
    return values[values.length - 1] ?? NaN;
  };
  return [await luma(0), await luma(width / 2)];
}

/** Collects the frames `client` receives of `streamID` since the last keyframe, to look at the picture. */
function watchPicture(client: TestClient, streamID: string): { frames(): Uint8Array[]; count(): number } {
  let frames: Uint8Array[] = [];
  let count = 0;
  client.engine.setCustomVideoRenderHandler({
    onRemoteVideoFrameEncodedDataReceived: (data, params, _time, id) => {
      if (id !== streamID) return;
      count++;
      if (params.isKeyFrame) frames = [];
      frames.push(data);
    },
  });
  return { frames: () => frames, count: () => count };
}

test('StartMix puts two publishers side by side in one 640×180 stream anyone plays; an update moves them, an input that goes leaves black, and the task ends when all are gone', async (t) => {
  const env = await startTestServer({ mixing: { allInputsGoneMs: 3000 } });
  const dir = mkdtempSync(join(tmpdir(), 'parley-mix-'));
  t.after(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const [alice, bob, carol] = await env.inRoom('mix', 'alice', 'bob', 'carol');
  await alice!.publish('alice-cam');
  await bob!.publish('bob-cam');
  const stops = [loopFixtures(alice!.engine), loopFixtures(bob!.engine)];
  t.after(() => stops.forEach((stop) => stop()));
  const api = (action: string, params: Record<string, unknown>) => callServerApi(env.server.httpUrl, env.app, action, params);
  const rect = (left: number, right: number) => ({ Top: 0, Left: left, Bottom: 180, Right: right });
  const mix = (inputs: Array<[string, ReturnType<typeof rect>]>) =>
    api('StartMix', {
      TaskId: 'side-by-side',
      MixInput: inputs.map(([StreamId, RectInfo]) => ({ StreamId, RectInfo })),
      MixOutput: [{ StreamId: 'mixed', Width: 640, Height: 180, Fps: 15, VideoBitrate: 600_000 }],
    });

  // Bad input: an input that is not published.
  const missing = await api('StartMix', {
    TaskId: 'nothing',
    MixInput: [{ StreamId: 'nobody-cam', RectInfo: rect(0, 320) }],
    MixOutput: [{ StreamId: 'nothing-out', Width: 640, Height: 180 }],
  });
  assert.equal(missing.Code, ApiCode.MixInputError);
  assert.match(missing.Message, /nobody-cam/);
  assert.equal((await api('StopMix', { TaskId: 'nothing' })).Code, ApiCode.MixInputError);

  const started = await mix([
    ['alice-cam', rect(0, 320)],
    ['bob-cam', rect(320, 640)],
  ]);
  assert.equal(started.Code, 0, started.Message);
  // The mix is a stream of the room: carol sees it come and plays it at its size.
  await carol!.waitFor(
    'roomStreamUpdate',
    (_, type, streams) => type === UpdateType.Add && streams.some((s) => s.streamID === 'mixed'),
    15_000,
  );
  const picture = watchPicture(carol!, 'mixed');
  carol!.engine.startPlayingStream('mixed');
  await carol!.waitFor('playerVideoSizeChanged', (id, w, h) => id === 'mixed' && w === 640 && h === 180, 15_000);
  await sleep(2500);
  const look = async (name: string): Promise<[number, number]> => {
    const path = join(dir, `${name}.ivf`);
    writeIvf(path, picture.frames(), 640, 180);
    const halves = await halvesLuma(path, 640, 180);
    t.diagnostic(`${name}: mean luma left ${halves[0].toFixed(1)}, right ${halves[1].toFixed(1)}`);
    return halves;
  };
  const both = await look('both');
  assert.ok(both[0] > 30 && both[1] > 30, 'both halves show a picture');

  // An update of the same task: alice alone, on the right half; the stream goes on.
  assert.equal((await mix([['alice-cam', rect(320, 640)]])).Code, 0);
  await sleep(3000);
  const moved = await look('moved');
  assert.ok(moved[0] < 25 && moved[1] > 30, 'the left half is black, the right shows alice');
  assert.ok(
    !carol!.of('roomStreamUpdate').some(([, type, streams]) => type === UpdateType.Delete && streams.some((s) => s.streamID === 'mixed')),
  );

  // alice stops publishing: her area turns black, and the task ends once no input is left.
  const before = picture.count();
  alice!.engine.stopPublishingStream();
  await sleep(2000);
  assert.ok(picture.count() > before, 'the mix goes on without its input');
  const gone = await look('gone');
  assert.ok(gone[1] < 25, 'the right half is black');
  await carol!.waitFor(
    'roomStreamUpdate',
    (_, type, streams) => type === UpdateType.Delete && streams.some((s) => s.streamID === 'mixed'),
    10_000,
  );
  assert.equal((await api('StopMix', { TaskId: 'side-by-side' })).Code, ApiCode.MixInputError, 'the task has ended');
});

test('startMixerTask from the SDK: its checks, a mix pushed to an RTMP server as well (onMixerRelayCDNStateUpdate), and stopMixerTask', async (t) => {
  const env = await startTestServer();
  const dir = mkdtempSync(join(tmpdir(), 'parley-mix-rtmp-'));
  t.after(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const receiver = startRtmpReceiver(await freePort('127.0.0.1'), join(dir, 'mix.flv'));
  t.after(() => receiver.stop());
  const [alice, carol] = await env.inRoom('sdk-mix', 'alice', 'carol');
  await alice!.publish('alice-cam');
  const stop = loopFixtures(alice!.engine);
  t.after(stop);
  const start = (task: MixerTask): Promise<[number, string]> =>
    new Promise((resolve) => carol!.engine.startMixerTask(task, (code, extended) => resolve([code, extended])));
  const layout = { x: 0, y: 0, width: 320, height: 180 };
  const videoConfig = { width: 320, height: 180, fps: 15, bitrate: 500 };
  const task = (inputList: MixerTask['inputList'], outputList: MixerTask['outputList']): MixerTask => ({
    taskID: 'sdk',
    inputList,
    outputList,
    videoConfig,
  });

  assert.equal((await start(task([], [{ target: 'sdk-out' }])))[0], ErrorCode.MixerInputListInvalid);
  assert.equal((await start(task([{ streamID: 'alice-cam', layout }], [])))[0], ErrorCode.MixerOutputListInvalid);
  assert.equal(
    (await start(task([{ streamID: 'alice-cam', layout: { ...layout, x: 100 } }], [{ target: 'sdk-out' }])))[0],
    ErrorCode.MixerInputParametersError,
  );
  const [missing, why] = await start(task([{ streamID: 'nobody-cam', layout }], [{ target: 'sdk-out' }]));
  assert.equal(missing, ErrorCode.MixerInputParametersError);
  assert.match(why, /nobody-cam/);

  const [code] = await start(
    task([{ streamID: 'alice-cam', contentType: MixerInputContentType.Video, layout }], [{ target: 'sdk-out' }, { target: receiver.url }]),
  );
  assert.equal(code, 0);
  await carol!.waitFor(
    'mixerRelayCDNStateUpdate',
    (id, list) => id === 'sdk' && list.some((i) => i.url === receiver.url && i.state === StreamRelayCDNState.Relaying),
    20_000,
  );
  await sleep(3000);
  assert.equal(await new Promise<number>((resolve) => carol!.engine.stopMixerTask({ taskID: 'sdk' }, resolve)), 0);
  await carol!.waitFor(
    'roomStreamUpdate',
    (_, type, streams) => type === UpdateType.Delete && streams.some((s) => s.streamID === 'sdk-out'),
    10_000,
  );
  await receiver.stop();
  const probe = await probeMedia(receiver.file);
  const video = probe.streams.find((s) => s.kind === 'video')!;
  assert.deepEqual([video.codec, video.width, video.height], ['h264', 320, 180]);
  assert.ok(probe.streams.some((s) => s.kind === 'audio' && s.codec === 'aac'));
  const span = await videoSpanSec(receiver.file);
  t.diagnostic(`the RTMP server got ${span.toFixed(1)} s of the mix, ${video.frames} frames`);
  assert.ok(video.frames >= 0.99 * (span * 15 + 1), `${video.frames} frames in ${span} s`);
});
