import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerState, PublisherState } from '@parley/sdk';
import { audioFixture, sleep, startTestServer } from './helpers.js';

test("sound levels: a bot speaks for a while, then falls silent; its captured level, its players' remote level and the room's active speakers follow, through the server", async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const pub = env.client();
  const viewer = env.client();
  // In the room, playing nothing: active speakers come from the server's hearing of every stream.
  const listener = env.client();
  assert.equal(await pub.login('r-levels', 'pub'), 0);
  assert.equal(await viewer.login('r-levels', 'viewer'), 0);
  assert.equal(await listener.login('r-levels', 'listener'), 0);
  pub.engine.startPublishingStream('s-levels');
  await pub.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  // Opus frames every 20 ms, each with the level the app gives (the app measured its audio).
  let level = 80;
  let packet = 0;
  const audio = setInterval(() => {
    pub.engine.sendCustomAudioCaptureEncodedData(
      audioFixture[packet % audioFixture.length]!,
      { codec: 'opus', audioLevel: level },
      packet * 20,
    );
    packet++;
  }, 20);
  t.after(() => clearInterval(audio));
  viewer.engine.startPlayingStream('s-levels');
  await viewer.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);

  const captured: number[] = [];
  const remote: number[] = [];
  pub.engine.on('capturedSoundLevelUpdate', (soundLevel) => captured.push(soundLevel));
  viewer.engine.on('remoteSoundLevelUpdate', (levels) => remote.push(levels['s-levels'] ?? -1));
  pub.engine.startSoundLevelMonitor(100);
  viewer.engine.startSoundLevelMonitor(100);
  await sleep(1500);
  const speaking = { captured: captured.splice(0), remote: remote.splice(0) };
  const speakersWhileSpeaking = listener.of('activeSpeakerUpdate').map(([, speakers]) => speakers);
  level = 0;
  await sleep(1500);
  const silent = { captured: captured.splice(0), remote: remote.splice(0) };
  const speakersAfter = listener.of('activeSpeakerUpdate').map(([, speakers]) => speakers);
  viewer.engine.stopSoundLevelMonitor();
  pub.engine.stopSoundLevelMonitor();
  console.log(`# speaking: ${JSON.stringify(speaking)}\n# silent: ${JSON.stringify(silent)}`);

  // About ten reports a second; the level (80 sent as 12 dB under overload) arrives within a report or two.
  assert.ok(speaking.remote.length >= 10 && speaking.remote.length <= 16, `${speaking.remote.length} reports in 1.5 s`);
  assert.ok(
    speaking.remote.slice(2).every((l) => l === 80),
    `while speaking: ${speaking.remote.join(' ')}`,
  );
  assert.ok(
    speaking.captured.every((l) => l === 80),
    `captured while speaking: ${speaking.captured.join(' ')}`,
  );
  assert.ok(
    silent.remote.slice(2).every((l) => l === 0),
    `silent: ${silent.remote.join(' ')}`,
  );
  assert.ok(
    silent.captured.slice(1).every((l) => l === 0),
    `captured silent: ${silent.captured.join(' ')}`,
  );
  // Told once when the bot started speaking (every 0.5 s the server judges), once when it stopped.
  assert.deepEqual(speakersWhileSpeaking, [[{ userID: 'pub', streamID: 's-levels', soundLevel: 80 }]]);
  assert.deepEqual(speakersAfter, [...speakersWhileSpeaking, []]);
  assert.deepEqual(
    pub.of('activeSpeakerUpdate').map(([roomID, speakers]) => [roomID, speakers.length]),
    [
      ['r-levels', 1],
      ['r-levels', 0],
    ],
    'everyone in the room is told, the speaker too',
  );
  // Stopped: no more reports.
  await sleep(300);
  assert.deepEqual([captured.length, remote.length], [0, 0]);
});
