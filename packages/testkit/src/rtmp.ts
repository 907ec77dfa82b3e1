/**
 * An RTMP server for tests: ffmpeg listening for one publisher (`-listen 1`) and copying what it
 * receives to an FLV file, which it finalises when stopped with SIGINT (a killed ffmpeg leaves a
 * truncated one).
 */
import { spawn } from 'node:child_process';

export interface RtmpReceiver {
  url: string;
  file: string;
  /** Whether a publisher connected and the file has begun (ffmpeg's progress reports bytes out). */
  receiving(): boolean;
  /** SIGINT, and waits until ffmpeg has written the file out and exited. */
  stop(): Promise<void>;
}

export function startRtmpReceiver(port: number, file: string, path = 'live/parley'): RtmpReceiver {
  const url = `rtmp://127.0.0.1:${port}/${path}`;
  const ffmpeg = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostats',
      '-progress',
      'pipe:1',
      '-y',
      '-listen',
      '1',
      '-i',
      url,
      '-c',
      'copy',
      '-f',
      'flv',
      file,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let receiving = false;
  ffmpeg.stdout.on('data', (chunk: Buffer) => {
    const size = /total_size=(\d+)/.exec(chunk.toString());
    if (size && Number(size[1]) > 0) receiving = true;
  });
  const exited = new Promise<void>((resolve) => ffmpeg.once('close', () => resolve()));
  return {
    url,
    file,
    receiving: () => receiving,
    async stop() {
      if (ffmpeg.exitCode === null && ffmpeg.signalCode === null) ffmpeg.kill('SIGINT');
      await exited;
    },
  };
}
