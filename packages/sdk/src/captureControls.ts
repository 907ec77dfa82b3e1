/**
 * What the app turned off or muted of what it publishes: per publish channel the camera
 * (enableCamera) and what is sent (mutePublishStreamVideo/Audio), and the microphone
 * (muteMicrophone) and the speaker (muteSpeaker), both for all channels. From these follow what each channel sends and what its
 * players are told of its devices (RemoteDeviceState).
 */
import { RemoteDeviceState, type StreamDevices } from '@parley/protocol';

/** What a channel's capture and publishing do now. */
export interface CaptureState {
  /** The camera device is on. */
  camera: boolean;
  /** The microphone captures sound (muted: silence). */
  microphone: boolean;
  /** Video and audio are sent at all. */
  sendVideo: boolean;
  sendAudio: boolean;
}

export type Devices = Omit<StreamDevices, 'streamID'>;

export class CaptureControls {
  /** What holds for every channel. */
  private readonly everywhere = { microphoneMuted: false, speakerMuted: false };
  private readonly channels = new Map<number, { camera: boolean; videoMuted: boolean; audioMuted: boolean }>();

  private channel(channel: number): { camera: boolean; videoMuted: boolean; audioMuted: boolean } {
    let state = this.channels.get(channel);
    if (!state) this.channels.set(channel, (state = { camera: true, videoMuted: false, audioMuted: false }));
    return state;
  }

  /** Each returns whether anything changed. */
  enableCamera(channel: number, enable: boolean): boolean {
    return this.set(this.channel(channel), 'camera', enable);
  }

  mutePublishVideo(channel: number, mute: boolean): boolean {
    return this.set(this.channel(channel), 'videoMuted', mute);
  }

  mutePublishAudio(channel: number, mute: boolean): boolean {
    return this.set(this.channel(channel), 'audioMuted', mute);
  }

  muteMicrophone(mute: boolean): boolean {
    return this.set(this.everywhere, 'microphoneMuted', mute);
  }

  get isMicrophoneMuted(): boolean {
    return this.everywhere.microphoneMuted;
  }

  muteSpeaker(mute: boolean): boolean {
    return this.set(this.everywhere, 'speakerMuted', mute);
  }

  get isSpeakerMuted(): boolean {
    return this.everywhere.speakerMuted;
  }

  /** The channels any control was used on (for changes that concern all of them). */
  get knownChannels(): number[] {
    return [...this.channels.keys()];
  }

  state(channel: number): CaptureState {
    const { camera, videoMuted, audioMuted } = this.channel(channel);
    return { camera, microphone: !this.everywhere.microphoneMuted, sendVideo: camera && !videoMuted, sendAudio: !audioMuted };
  }

  /** What players are told: the camera Disable when off and Mute when not sent, the microphone Mute when muted or not sent, the speaker Mute when muted. */
  devices(channel: number): Devices {
    const { camera, videoMuted, audioMuted } = this.channel(channel);
    return {
      camera: !camera ? RemoteDeviceState.Disable : videoMuted ? RemoteDeviceState.Mute : RemoteDeviceState.Open,
      microphone: this.everywhere.microphoneMuted || audioMuted ? RemoteDeviceState.Mute : RemoteDeviceState.Open,
      speaker: this.everywhere.speakerMuted ? RemoteDeviceState.Mute : RemoteDeviceState.Open,
    };
  }

  private set<K extends string>(state: Record<K, boolean>, key: K, value: boolean): boolean {
    if (state[key] === value) return false;
    state[key] = value;
    return true;
  }
}
