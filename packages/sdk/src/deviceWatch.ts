/**
 * The devices a browser has, as the vendor's SDK reports them: lists, and what was plugged in or
 * out (onVideoDeviceStateChanged, onAudioDeviceStateChanged) from the `devicechange` event. A
 * device in use that goes away is dropped by its user for the default one.
 */
import { AudioDeviceType, UpdateType } from '@parley/protocol';

export interface DeviceInfo {
  deviceID: string;
  deviceName: string;
}

export type DeviceKind = 'videoinput' | 'audioinput' | 'audiooutput';

/** The vendor's device type of a browser's device kind (audio only). */
export const AUDIO_DEVICE_TYPE: Record<Exclude<DeviceKind, 'videoinput'>, AudioDeviceType> = {
  audioinput: AudioDeviceType.Input,
  audiooutput: AudioDeviceType.Output,
};

export type DeviceChange = { kind: DeviceKind; updateType: UpdateType; device: DeviceInfo };

/** The devices of each kind last seen, and the changes from one listing to the next. */
export class DeviceWatch {
  private known: Map<string, DeviceInfo & { kind: DeviceKind }> | undefined;

  constructor(private readonly enumerate: () => Promise<Array<{ kind: string; deviceId: string; label: string }>>) {}

  async list(kind: DeviceKind): Promise<DeviceInfo[]> {
    return [...(await this.read()).values()].filter((d) => d.kind === kind).map(({ deviceID, deviceName }) => ({ deviceID, deviceName }));
  }

  /** Lists again and returns what came and went since the last listing (nothing the first time). */
  async changes(): Promise<DeviceChange[]> {
    const before = this.known;
    const now = await this.read();
    if (!before) return [];
    const changes: DeviceChange[] = [];
    const info = ({ deviceID, deviceName }: DeviceInfo): DeviceInfo => ({ deviceID, deviceName });
    for (const [key, device] of before)
      if (!now.has(key)) changes.push({ kind: device.kind, updateType: UpdateType.Delete, device: info(device) });
    for (const [key, device] of now)
      if (!before.has(key)) changes.push({ kind: device.kind, updateType: UpdateType.Add, device: info(device) });
    return changes;
  }

  private async read(): Promise<Map<string, DeviceInfo & { kind: DeviceKind }>> {
    const devices = await this.enumerate().catch(() => []);
    const known = new Map<string, DeviceInfo & { kind: DeviceKind }>();
    for (const d of devices) {
      if (d.kind === 'videoinput' || d.kind === 'audioinput' || d.kind === 'audiooutput') {
        known.set(`${d.kind}:${d.deviceId}`, { kind: d.kind, deviceID: d.deviceId, deviceName: d.label });
      }
    }
    this.known = known;
    return known;
  }
}
