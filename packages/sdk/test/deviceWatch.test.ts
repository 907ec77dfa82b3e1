import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpdateType } from '@parley/protocol';
import { DeviceWatch } from '../src/deviceWatch.js';

test('device watch: lists by kind, and tells what was plugged in and out between listings', async () => {
  let devices = [
    { kind: 'videoinput', deviceId: 'cam0', label: 'Camera 0' },
    { kind: 'audioinput', deviceId: 'mic0', label: 'Mic 0' },
    { kind: 'audiooutput', deviceId: 'spk0', label: 'Speaker 0' },
  ];
  const watch = new DeviceWatch(async () => devices);
  assert.deepEqual(await watch.changes(), [], 'the first listing is the base');
  assert.deepEqual(await watch.list('videoinput'), [{ deviceID: 'cam0', deviceName: 'Camera 0' }]);
  devices = [...devices.filter((d) => d.deviceId !== 'mic0'), { kind: 'videoinput', deviceId: 'cam1', label: 'USB camera' }];
  assert.deepEqual(await watch.changes(), [
    { kind: 'audioinput', updateType: UpdateType.Delete, device: { deviceID: 'mic0', deviceName: 'Mic 0' } },
    { kind: 'videoinput', updateType: UpdateType.Add, device: { deviceID: 'cam1', deviceName: 'USB camera' } },
  ]);
  assert.deepEqual(await watch.changes(), [], 'nothing new');
  // The same id as a microphone and as a speaker are two devices.
  devices = [...devices, { kind: 'audioinput', deviceId: 'spk0', label: 'Headset mic' }];
  assert.deepEqual(await watch.changes(), [
    { kind: 'audioinput', updateType: UpdateType.Add, device: { deviceID: 'spk0', deviceName: 'Headset mic' } },
  ]);
});
