/**
 * What a publish channel captures and encodes (setVideoConfig): the vendor's presets, or sizes,
 * frame rate and bitrate of the app's choice. The simulcast layers follow the encode size: the
 * largest is it, the others halve it.
 */
import { VideoConfigPreset } from '@parley/protocol';

export interface VideoConfig {
  captureWidth: number;
  captureHeight: number;
  encodeWidth: number;
  encodeHeight: number;
  /** Frames per second. */
  fps: number;
  /** kbit/s of the largest layer. */
  bitrate: number;
}

const preset = (width: number, height: number, bitrate: number): VideoConfig => ({
  captureWidth: width,
  captureHeight: height,
  encodeWidth: width,
  encodeHeight: height,
  fps: 15,
  bitrate,
});

/** The vendor's presets. */
export const VIDEO_CONFIG_PRESETS: Record<VideoConfigPreset, VideoConfig> = {
  [VideoConfigPreset.Preset180P]: preset(320, 180, 300),
  [VideoConfigPreset.Preset270P]: preset(480, 270, 400),
  [VideoConfigPreset.Preset360P]: preset(640, 360, 600),
  [VideoConfigPreset.Preset540P]: preset(960, 540, 1200),
  [VideoConfigPreset.Preset720P]: preset(1280, 720, 1500),
  [VideoConfigPreset.Preset1080P]: preset(1920, 1080, 3000),
};

/** A preset's config, or the app's own if every field is a positive number; undefined otherwise. */
export function videoConfigOf(configOrPreset: VideoConfig | VideoConfigPreset): VideoConfig | undefined {
  if (typeof configOrPreset === 'number') return VIDEO_CONFIG_PRESETS[configOrPreset as VideoConfigPreset];
  const fields: Array<keyof VideoConfig> = ['captureWidth', 'captureHeight', 'encodeWidth', 'encodeHeight', 'fps', 'bitrate'];
  const valid =
    typeof configOrPreset === 'object' &&
    configOrPreset !== null &&
    fields.every((f) => Number.isFinite(configOrPreset[f]) && configOrPreset[f] > 0) &&
    configOrPreset.encodeWidth <= configOrPreset.captureWidth &&
    configOrPreset.encodeHeight <= configOrPreset.captureHeight;
  return valid ? { ...configOrPreset } : undefined;
}
