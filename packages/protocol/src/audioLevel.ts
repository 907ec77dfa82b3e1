/**
 * Sound levels as the SDK reports them (0–100) and the RTP audio level header extension that
 * carries them (RFC 6464: the packet's audio level as attenuation in dB below overload, 0 the
 * loudest and 127 silence, after a voice-activity bit).
 */
export const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';

/** Sound level 0 is this many dB below overload (or quieter), 100 is overload; linear in dB between. */
const FLOOR_DB = 60;
/** From this sound level on a packet is marked as voice: about −42 dBov, quiet speech. */
export const SPEAKING_LEVEL = 30;

/** The sound level of audio `attenuationDb` below overload (0–127). */
export function soundLevelFromAttenuation(attenuationDb: number): number {
  return Math.min(100, Math.max(0, Math.round((100 * (FLOOR_DB - attenuationDb)) / FLOOR_DB)));
}

/** The sound level of a linear amplitude (0–1, as browsers' statistics give it). */
export function soundLevelFromAmplitude(amplitude: number): number {
  return amplitude > 0 ? soundLevelFromAttenuation(-20 * Math.log10(Math.min(1, amplitude))) : 0;
}

/** The audio level extension's byte for a sound level: the voice bit, then the attenuation. */
export function audioLevelByte(soundLevel: number): number {
  const level = Math.min(100, Math.max(0, soundLevel));
  const attenuation = level === 0 ? 127 : Math.round(FLOOR_DB * (1 - level / 100));
  return (level >= SPEAKING_LEVEL ? 0x80 : 0) | attenuation;
}

/** The sound level an audio level extension's byte says. */
export const soundLevelFromByte = (byte: number): number => soundLevelFromAttenuation(byte & 0x7f);
