/**
 * How a publish channel encodes its sound (setAudioConfig): the vendor's presets, or a bitrate and
 * channels of the app's choice. Both are negotiated (Opus format parameters) at publish; while
 * publishing a lower bitrate applies at once (the sender's ceiling), a higher one and stereo from
 * the next publish.
 */
import { AudioChannel, AudioConfigPreset } from '@parley/protocol';

export interface AudioConfig {
  /** kbit/s. */
  bitrate: number;
  channel: AudioChannel;
}

/** The vendor's presets. */
export const AUDIO_CONFIG_PRESETS: Record<AudioConfigPreset, AudioConfig> = {
  [AudioConfigPreset.BasicQuality]: { bitrate: 16, channel: AudioChannel.Mono },
  [AudioConfigPreset.StandardQuality]: { bitrate: 48, channel: AudioChannel.Mono },
  [AudioConfigPreset.StandardQualityStereo]: { bitrate: 56, channel: AudioChannel.Stereo },
  [AudioConfigPreset.HighQuality]: { bitrate: 128, channel: AudioChannel.Mono },
  [AudioConfigPreset.HighQualityStereo]: { bitrate: 192, channel: AudioChannel.Stereo },
};

/** Opus's bitrate range, kbit/s. */
const OPUS_KBPS = { min: 6, max: 510 };

/** A preset's config, or the app's own if its bitrate is Opus's and its channels mono or stereo; undefined otherwise. */
export function audioConfigOf(configOrPreset: AudioConfig | AudioConfigPreset): AudioConfig | undefined {
  if (typeof configOrPreset === 'number') return AUDIO_CONFIG_PRESETS[configOrPreset as AudioConfigPreset];
  if (typeof configOrPreset !== 'object' || configOrPreset === null) return undefined;
  const { bitrate, channel } = configOrPreset;
  const valid =
    Number.isFinite(bitrate) &&
    bitrate >= OPUS_KBPS.min &&
    bitrate <= OPUS_KBPS.max &&
    (channel === AudioChannel.Mono || channel === AudioChannel.Stereo);
  return valid ? { bitrate, channel } : undefined;
}

/**
 * An offer whose Opus formats carry the config (RFC 7587): `maxaveragebitrate`, and `stereo` and
 * `sprop-stereo` for stereo. The server's answer keeps the offer's Opus parameters, and a
 * browser encodes as the answer says.
 */
export function withOpusConfig(sdp: string, { bitrate, channel }: AudioConfig): string {
  const set = `;maxaveragebitrate=${bitrate * 1000}${channel === AudioChannel.Stereo ? ';stereo=1;sprop-stereo=1' : ''}`;
  const opus = [...sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000\/2\r?$/gim)].map((m) => m[1]!);
  return opus.reduce((offer, payloadType) => offer.replace(new RegExp(`^(a=fmtp:${payloadType} .*?)(\\r?)$`, 'm'), `$1${set}$2`), sdp);
}
