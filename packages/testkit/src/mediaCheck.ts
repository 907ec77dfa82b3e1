/**
 * What ffmpeg and ffprobe say of a media file, for tests of recordings: its streams and frame
 * counts, whether it decodes without an error, its first video packet, and when its sync clip's
 * flashes and beeps (see syncClip) come.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ProbedStream {
  codec: string;
  kind: 'audio' | 'video';
  width?: number;
  height?: number;
  /** Frames counted by decoding (-count_frames). */
  frames: number;
}

export interface Probe {
  durationSec: number;
  streams: ProbedStream[];
}

export async function probeMedia(file: string): Promise<Probe> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_format', '-show_streams', '-of', 'json', file]);
  const json = JSON.parse(stdout) as {
    format: { duration?: string };
    streams: Array<{ codec_name: string; codec_type: string; width?: number; height?: number; nb_read_frames?: string }>;
  };
  return {
    durationSec: Number(json.format.duration ?? 0),
    streams: json.streams.map((s) => ({
      codec: s.codec_name,
      kind: s.codec_type as 'audio' | 'video',
      ...(s.width !== undefined && { width: s.width, height: s.height }),
      frames: Number(s.nb_read_frames ?? 0),
    })),
  };
}

/**
 * Decodes the whole file, failing on the first error (`ffmpeg -xerror`); resolves with ffmpeg's
 * complaints, '' for none. Frames keep their own times in the file's time base (`-fps_mode
 * passthrough -enc_time_base -1`): a recording's frame rate varies as its sender's did, and two
 * frames in one slot of a nominal rate's time base are no error of the file.
 */
export async function decodeErrors(file: string): Promise<string> {
  try {
    const { stderr } = await run('ffmpeg', [
      '-v',
      'error',
      '-xerror',
      '-i',
      file,
      '-fps_mode',
      'passthrough',
      '-enc_time_base',
      '-1',
      '-f',
      'null',
      '-',
    ]);
    return stderr.trim();
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
}

/** The first video packet's time and whether it is a keyframe. */
export async function firstVideoPacket(file: string): Promise<{ timeSec: number; keyFrame: boolean }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-read_intervals',
    '%+#1',
    '-show_entries',
    'packet=pts_time,flags',
    '-of',
    'json',
    file,
  ]);
  const packet = (JSON.parse(stdout) as { packets: Array<{ pts_time: string; flags: string }> }).packets[0]!;
  return { timeSec: Number(packet.pts_time), keyFrame: packet.flags.startsWith('K') };
}

/** The presentation times of the video's bright frames (the sync clip's flashes). */
export async function flashTimes(file: string): Promise<number[]> {
  const { stderr } = await run('ffmpeg', [
    '-v',
    'info',
    '-i',
    file,
    '-an',
    '-vf',
    'signalstats,metadata=print:key=lavfi.signalstats.YAVG',
    '-f',
    'null',
    '-',
  ]);
  const times: number[] = [];
  let pts = NaN;
  for (const line of stderr.split('\n')) {
    const frame = /pts_time:([\d.]+)/.exec(line);
    if (frame) pts = Number(frame[1]);
    const yavg = /lavfi\.signalstats\.YAVG=([\d.]+)/.exec(line);
    if (yavg && Number(yavg[1]) > 150) times.push(pts);
  }
  return times;
}

/** Where the audio's beeps (the sync clip's 1 kHz tones) begin. */
export async function beepOnsets(file: string): Promise<number[]> {
  const { stderr } = await run('ffmpeg', [
    '-v',
    'info',
    '-i',
    file,
    '-vn',
    '-af',
    'highpass=f=500,silencedetect=n=-30dB:d=0.2',
    '-f',
    'null',
    '-',
  ]);
  return [...stderr.matchAll(/silence_end: ([\d.]+)/g)].map((m) => Number(m[1]));
}

/** The time from the first video packet to the last (s): what a frame count is to be set against. */
export async function videoSpanSec(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-show_entries',
    'packet=pts_time',
    '-of',
    'csv=p=0',
    file,
  ]);
  const times = stdout
    .split('\n')
    .map(Number)
    .filter((t) => Number.isFinite(t) && t > 0);
  return times.length > 1 ? Math.max(...times) - Math.min(...times) : 0;
}
