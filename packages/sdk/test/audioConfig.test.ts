import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioChannel, AudioConfigPreset } from '@parley/protocol';
import { AUDIO_CONFIG_PRESETS, audioConfigOf, withOpusConfig } from '../src/audioConfig.js';

const OFFER = [
  'v=0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 63 111',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  '',
].join('\r\n');

test('audio config: the offer carries the bitrate, and stereo, in the Opus format parameters only', () => {
  const stereo = withOpusConfig(OFFER, AUDIO_CONFIG_PRESETS[AudioConfigPreset.HighQualityStereo]);
  assert.match(stereo, /^a=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=192000;stereo=1;sprop-stereo=1\r$/m);
  assert.match(stereo, /^a=fmtp:63 111\/111\r$/m, 'RED untouched');
  const mono = withOpusConfig(OFFER, { bitrate: 16, channel: AudioChannel.Mono });
  assert.match(mono, /^a=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=16000\r$/m);
});

test('audio config: presets and Opus-range configs are taken, anything else is not', () => {
  assert.deepEqual(audioConfigOf(AudioConfigPreset.BasicQuality), { bitrate: 16, channel: AudioChannel.Mono });
  assert.deepEqual(audioConfigOf({ bitrate: 64, channel: AudioChannel.Stereo }), { bitrate: 64, channel: AudioChannel.Stereo });
  for (const bad of [
    9 as AudioConfigPreset,
    { bitrate: 5, channel: AudioChannel.Mono },
    { bitrate: 600, channel: AudioChannel.Mono },
    { bitrate: 32, channel: AudioChannel.Unknown },
  ]) {
    assert.equal(audioConfigOf(bad), undefined, JSON.stringify(bad));
  }
});
