/**
 * Clips for Chromium's fake capture devices, made once per machine with ffmpeg and kept in the
 * temporary folder: a camera picture that makes the encoder use real bitrates (its built-in
 * pattern encodes at ~150 kbit/s), and a microphone that never falls silent.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';

export interface ClipOptions {
  width: number;
  height: number;
  fps: number;
  seconds: number;
}

/** The path of `name` in the temporary folder, made from a lavfi `source` with ffmpeg's `output` options if missing. */
function generated(name: string, source: string, output: string[]): string {
  const path = join(tmpdir(), name);
  if (existsSync(path)) return path;
  // Made under another name and renamed: a run that stops halfway leaves no broken clip for the next.
  const partial = `${path}.${process.pid}.partial${extname(name)}`;
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, ...output, partial], { stdio: 'inherit' });
  renameSync(partial, path);
  return path;
}

/** The path of a .y4m clip with these dimensions: a zooming fractal with film grain, every frame changing everywhere as a busy camera picture does. */
export function cameraClip({ width, height, fps, seconds }: ClipOptions = { width: 1280, height: 720, fps: 30, seconds: 4 }): string {
  return generated(`parley-clip-${width}x${height}-${fps}fps-${seconds}s.y4m`, `mandelbrot=size=${width}x${height}:rate=${fps}`, [
    '-vf',
    'noise=alls=12:allf=t',
    '-t',
    String(seconds),
    '-pix_fmt',
    'yuv420p',
  ]);
}

/**
 * The path of a .wav clip for the fake microphone: a voice-like tone whose loudness rises and
 * falls three times a second, 48 kHz mono. Silence would let the encoder pause (DTX), and
 * concealment would then be measured on nothing.
 */
export function speechClip(seconds = 10): string {
  return generated(
    `parley-speech-${seconds}s.wav`,
    `aevalsrc=0.3*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*3*t))+0.1*sin(2*PI*1100*t):s=48000:d=${seconds}`,
    ['-ac', '1', '-c:a', 'pcm_s16le'],
  );
}

/** The second within each second of the sync clip at which it flashes and beeps. */
export const SYNC_MARK_AT = 0.5;

/**
 * A clip that flashes white for one frame and beeps (1 kHz, 100 ms) at the same instant every
 * second, as VP8 in IVF (640×360, 30 fps, a keyframe every 30 frames) and Opus in Ogg (20 ms
 * frames): a recording's audio-to-video offset is where its beeps start less where its flashes are.
 */
export function syncClip(seconds = 10): { ivf: string; ogg: string } {
  const flash = `if(between(mod(T,1),${SYNC_MARK_AT},${SYNC_MARK_AT}+0.03),235,60)`;
  const ivf = generated(
    `parley-sync-${seconds}s.ivf`,
    `color=c=gray:s=640x360:r=30:d=${seconds},format=yuv420p,geq=lum='${flash}':cb=128:cr=128`,
    ['-c:v', 'libvpx', '-b:v', '800k', '-g', '30', '-keyint_min', '30', '-deadline', 'realtime'],
  );
  const ogg = generated(
    `parley-sync-${seconds}s.ogg`,
    `aevalsrc='0.5*sin(2*PI*1000*t)*between(mod(t,1),${SYNC_MARK_AT},${SYNC_MARK_AT + 0.1})+0.01*sin(2*PI*150*t)':s=48000:d=${seconds}`,
    ['-ac', '1', '-c:a', 'libopus', '-frame_duration', '20', '-b:a', '64k'],
  );
  return { ivf, ogg };
}

/**
 * The camera clip as VP8 in IVF at about `kbps` (a keyframe every 30 frames), for Node.js
 * publishers that must send real bitrates (recording and mixing benchmarks).
 */
export function vp8Clip({ width, height, fps, seconds, kbps }: ClipOptions & { kbps: number }): string {
  const y4m = cameraClip({ width, height, fps, seconds });
  const path = join(tmpdir(), `parley-vp8-${width}x${height}-${fps}fps-${seconds}s-${kbps}k.ivf`);
  if (existsSync(path)) return path;
  const partial = `${path}.${process.pid}.partial.ivf`;
  const rate = `${kbps}k`;
  execFileSync(
    'ffmpeg',
    [
      '-loglevel',
      'error',
      '-y',
      '-i',
      y4m,
      '-c:v',
      'libvpx',
      '-b:v',
      rate,
      '-minrate',
      rate,
      '-maxrate',
      rate,
      '-g',
      '30',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      partial,
    ],
    {
      stdio: 'inherit',
    },
  );
  renameSync(partial, path);
  return path;
}
