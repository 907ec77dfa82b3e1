/**
 * Camera clips for Chromium's fake capture device: moving, detailed pictures that make the
 * encoder use real bitrates (its built-in pattern encodes at ~150 kbit/s). Made once per machine
 * with ffmpeg and kept in the temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ClipOptions {
  width: number;
  height: number;
  fps: number;
  seconds: number;
}

/** The path of a .y4m clip with these dimensions, made if missing. */
export function cameraClip({ width, height, fps, seconds }: ClipOptions = { width: 1280, height: 720, fps: 30, seconds: 4 }): string {
  const path = join(tmpdir(), `parley-clip-${width}x${height}-${fps}fps-${seconds}s.y4m`);
  if (existsSync(path)) return path;
  const partial = `${path}.${process.pid}.partial.y4m`;
  // A zooming fractal with film grain: every frame changes everywhere, as a busy camera picture does.
  execFileSync(
    'ffmpeg',
    [
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `mandelbrot=size=${width}x${height}:rate=${fps}`,
      '-vf',
      'noise=alls=12:allf=t',
      '-t',
      String(seconds),
      '-pix_fmt',
      'yuv420p',
      partial,
    ],
    { stdio: 'inherit' },
  );
  renameSync(partial, path);
  return path;
}
