/**
 * The debug page: the quick start's call flow on a web page. Join logs in and starts the camera
 * preview, Publish sends it, every stream announced in the room is played in its own tile, and
 * End call undoes everything.
 */
import {
  AudioDeviceType,
  ParleyEngine,
  PlayerState,
  PublishChannel,
  PublisherState,
  RemoteDeviceState,
  RoomStateChangedReason,
  Scenario,
  ScreenCaptureExceptionType,
  SPEAKING_LEVEL,
  StreamQualityLevel,
  UpdateType,
  VideoMirrorMode,
  type ParleyEventHandler,
  type VideoCodec,
  type AudioConfigPreset,
  type VideoConfigPreset,
} from '@parley/sdk';
import { BusinessActions } from './business.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const field = (id: string): HTMLInputElement | HTMLSelectElement => $<HTMLInputElement>(id);
const logBox = $('log');
const videos = $('videos');
const joinButton = $<HTMLButtonElement>('join');
const publishButton = $<HTMLButtonElement>('publish');
const endButton = $<HTMLButtonElement>('end');
const recordButton = $<HTMLButtonElement>('record');
const mixButton = $<HTMLButtonElement>('mix');
const chatInput = $<HTMLInputElement>('chat-input');
const sendButton = $<HTMLButtonElement>('send');

let engine: ParleyEngine | null = null;
/** The stream this page publishes, while it does. */
let publishedStreamID: string | null = null;
/** With a business server (a production server's `tokenUrl`): recording and mixing through it. */
const tokenUrl = new URLSearchParams(location.search).get('tokenUrl');
const business = tokenUrl ? new BusinessActions(new URL(tokenUrl, location.href).origin) : undefined;
recordButton.hidden = mixButton.hidden = !business;
/** The recording task the Record button started, while it runs. */
let recordingTask: string | null = null;
/** The last onNetworkQuality line logged per user. */
const networkQualityShown = new Map<string, string>();

function log(line: string): void {
  const time = new Date().toISOString().slice(11, 23);
  logBox.textContent += `${time} ${line}\n`;
  logBox.scrollTop = logBox.scrollHeight;
}

function tile(streamID: string): HTMLVideoElement {
  const existing = videos.querySelector<HTMLVideoElement>(`.tile[data-stream-id="${CSS.escape(streamID)}"] video`);
  if (existing) return existing;
  const div = document.createElement('div');
  div.className = 'tile remote';
  div.dataset.streamId = streamID;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  const name = document.createElement('div');
  name.className = 'name';
  name.textContent = streamID;
  const quality = document.createElement('div');
  quality.className = 'quality';
  // setPlayVolume: 0–200 %.
  const volume = document.createElement('input');
  volume.type = 'range';
  volume.className = 'volume';
  volume.min = '0';
  volume.max = '200';
  volume.value = '100';
  volume.oninput = () => {
    const code = engine?.setPlayVolume(streamID, Number(volume.value));
    if (code) log(`setPlayVolume stream=${streamID} failed code=${code}`);
  };
  // Where WHEP players (ffplay, GStreamer, OBS, a browser) play this stream: POST an offer with a Bearer token04.
  const whep = document.createElement('a');
  whep.className = 'whep';
  whep.textContent = 'WHEP';
  whep.href = new URL(`/whep/${encodeURIComponent(field('appID').value)}/${encodeURIComponent(streamID)}`, location.href).href;
  whep.title = `WHEP URL of ${streamID} (click to copy)`;
  whep.onclick = (event) => {
    event.preventDefault();
    void navigator.clipboard?.writeText(whep.href).catch(() => undefined);
    log(`WHEP URL of ${streamID}: ${whep.href}`);
  };
  div.append(video, name, quality, volume, whep);
  videos.append(div);
  return video;
}

/** A remote tile's camera, microphone and speaker as their publisher set them: "camera off", "muted", "not listening" badges. */
function showDevice(streamID: string, device: 'camera' | 'mic' | 'speaker', state: RemoteDeviceState): void {
  const div = tile(streamID).parentElement!;
  div.dataset[device] = RemoteDeviceState[state];
  const off = (key: 'camera' | 'mic' | 'speaker', badge: string): string => (div.dataset[key] && div.dataset[key] !== 'Open' ? badge : '');
  const badges = [off('camera', 'camera off'), off('mic', 'muted'), off('speaker', 'not listening')].filter(Boolean);
  const name = div.querySelector<HTMLElement>('.name')!;
  if (badges.length > 0) name.dataset.badges = badges.join(', ');
  else delete name.dataset.badges;
}

function showMessage(from: string, text: string): void {
  const item = document.createElement('li');
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from;
  item.append(who, text);
  $('messages').append(item);
  $('messages').scrollTop = $('messages').scrollHeight;
}

function setChatEnabled(enabled: boolean): void {
  chatInput.disabled = sendButton.disabled = !enabled;
}

/**
 * Shows a stream's quality under its tile (level, resolution, frame rate, loss) and logs the
 * level when it changes; the element keeps the level (data-level) and the whole report (data-quality).
 */
function showQuality(element: HTMLElement | null, what: string, quality: { level: StreamQualityLevel }, detail: string): void {
  if (!element) return;
  const name = StreamQualityLevel[quality.level] ?? String(quality.level);
  if (element.dataset.level !== name) log(`${what} level=${name}`);
  element.dataset.level = name;
  element.dataset.quality = JSON.stringify(quality);
  element.textContent = `${name} · ${detail}`;
}

/** Marks a tile as speaking (a green edge) while its sound level is at least SPEAKING_LEVEL; data-sound-level keeps the level. */
function showSoundLevel(tileElement: HTMLElement | null, soundLevel: number): void {
  if (!tileElement) return;
  tileElement.dataset.soundLevel = String(soundLevel);
  tileElement.classList.toggle('speaking', soundLevel >= SPEAKING_LEVEL);
}

function removeTile(streamID: string): void {
  videos.querySelector(`.tile[data-stream-id="${CSS.escape(streamID)}"]`)?.remove();
}

const handler: ParleyEventHandler = {
  onRoomStateChanged(roomID, reason, errorCode) {
    log(`onRoomStateChanged room=${roomID} reason=${RoomStateChangedReason[reason]} code=${errorCode}`);
    $('state').textContent = RoomStateChangedReason[reason] ?? String(reason);
    const inRoom = reason === RoomStateChangedReason.Logined || reason === RoomStateChangedReason.Reconnected;
    if (inRoom) publishButton.disabled = shareButton.disabled = false;
    if (inRoom && business) recordButton.disabled = mixButton.disabled = false;
    // Devices have names once the page may use them (the preview has asked by now).
    if (inRoom) void fillDevicePickers();
    setChatEnabled(inRoom || reason === RoomStateChangedReason.Reconnecting);
    if (
      reason === RoomStateChangedReason.LoginFailed ||
      reason === RoomStateChangedReason.KickOut ||
      reason === RoomStateChangedReason.ReconnectFailed
    )
      reset();
  },
  onRoomUserUpdate(roomID, updateType, users) {
    log(`onRoomUserUpdate room=${roomID} ${UpdateType[updateType]} ${users.map((u) => u.userID).join(',')}`);
  },
  onRoomStreamUpdate(roomID, updateType, streams) {
    log(`onRoomStreamUpdate room=${roomID} ${UpdateType[updateType]} ${streams.map((s) => s.streamID).join(',')}`);
    for (const { streamID } of streams) {
      if (updateType === UpdateType.Add) engine?.startPlayingStream(streamID, { view: tile(streamID) });
      else {
        engine?.stopPlayingStream(streamID);
        removeTile(streamID);
      }
    }
  },
  onPublisherStateUpdate(streamID, state, errorCode) {
    log(`onPublisherStateUpdate stream=${streamID} ${PublisherState[state]} code=${errorCode}`);
    if (state === PublisherState.NoPublish && engine) publishButton.disabled = false;
    publishedStreamID = state === PublisherState.Publishing ? streamID : state === PublisherState.NoPublish ? null : publishedStreamID;
    if (state === PublisherState.Publishing) void fillDevicePickers();
  },
  onPlayerStateUpdate(streamID, state, errorCode) {
    log(`onPlayerStateUpdate stream=${streamID} ${PlayerState[state]} code=${errorCode}`);
    if (state === PlayerState.NoPlay) removeTile(streamID);
  },
  onRemoteCameraStateUpdate(streamID, state) {
    log(`onRemoteCameraStateUpdate stream=${streamID} ${RemoteDeviceState[state]}`);
    showDevice(streamID, 'camera', state);
  },
  onRemoteMicStateUpdate(streamID, state) {
    log(`onRemoteMicStateUpdate stream=${streamID} ${RemoteDeviceState[state]}`);
    showDevice(streamID, 'mic', state);
  },
  onVideoDeviceStateChanged(updateType, device) {
    log(`onVideoDeviceStateChanged ${UpdateType[updateType]} ${device.deviceName}`);
    void fillDevicePickers();
  },
  onAudioDeviceStateChanged(updateType, type, device) {
    log(`onAudioDeviceStateChanged ${UpdateType[updateType]} ${AudioDeviceType[type]} ${device.deviceName}`);
    void fillDevicePickers();
  },
  onScreenCaptureExceptionOccurred(exceptionType) {
    log(`onScreenCaptureExceptionOccurred ${ScreenCaptureExceptionType[exceptionType]}`);
    shareStopped();
  },
  onRemoteSpeakerStateUpdate(streamID, state) {
    log(`onRemoteSpeakerStateUpdate stream=${streamID} ${RemoteDeviceState[state]}`);
    showDevice(streamID, 'speaker', state);
  },
  onPlayerRecvVideoFirstFrame(streamID) {
    log(`onPlayerRecvVideoFirstFrame stream=${streamID}`);
  },
  onPlayerVideoSizeChanged(streamID, width, height) {
    log(`onPlayerVideoSizeChanged stream=${streamID} ${width}x${height}`);
  },
  onPublisherQualityUpdate(streamID, quality) {
    const video = $<HTMLVideoElement>('local');
    showQuality(
      $('local-quality'),
      `onPublisherQualityUpdate stream=${streamID}`,
      quality,
      `${video.videoWidth}×${video.videoHeight} ${quality.videoSendFPS.toFixed(0)} fps ${quality.videoKBPS.toFixed(0)} kbit/s, rtt ${quality.rtt.toFixed(0)} ms, loss ${(100 * quality.packetLostRate).toFixed(1)} %`,
    );
  },
  onPlayerQualityUpdate(streamID, quality) {
    const tileElement = videos.querySelector<HTMLElement>(`.tile[data-stream-id="${CSS.escape(streamID)}"]`);
    const video = tileElement?.querySelector('video');
    showQuality(
      tileElement?.querySelector<HTMLElement>('.quality') ?? null,
      `onPlayerQualityUpdate stream=${streamID}`,
      quality,
      `${video?.videoWidth ?? 0}×${video?.videoHeight ?? 0} ${quality.videoRenderFPS.toFixed(0)} fps ${quality.videoKBPS.toFixed(0)} kbit/s, rtt ${quality.rtt.toFixed(0)} ms, loss ${(100 * quality.packetLostRate).toFixed(1)} %, ${quality.videoCumulativeBreakCount} freezes`,
    );
  },
  onIMRecvBroadcastMessage(_roomID, messages) {
    for (const { fromUser, message } of messages) showMessage(fromUser.userName, message);
  },
  onNetworkQuality(userID, upstream, downstream) {
    // Logged when it changes: every 3 s otherwise.
    const line = `onNetworkQuality user=${userID || '(local)'} up=${StreamQualityLevel[upstream]} down=${StreamQualityLevel[downstream]}`;
    if (networkQualityShown.get(userID) !== line) log(line);
    networkQualityShown.set(userID, line);
  },
  onActiveSpeakerUpdate(roomID, speakers) {
    log(`onActiveSpeakerUpdate room=${roomID} ${speakers.map((s) => `${s.userID}:${s.soundLevel}`).join(',') || '(none)'}`);
  },
  onCapturedSoundLevelUpdate(soundLevel) {
    showSoundLevel($('local-tile'), soundLevel);
  },
  onRemoteSoundLevelUpdate(soundLevels) {
    for (const [streamID, soundLevel] of Object.entries(soundLevels)) {
      showSoundLevel(videos.querySelector<HTMLElement>(`.tile[data-stream-id="${CSS.escape(streamID)}"]`), soundLevel);
    }
  },
  onRoomOnlineUserCountUpdate(_roomID, count) {
    $('online').textContent = `${count} online`;
  },
};

function reset(): void {
  if (engine) ParleyEngine.destroyEngine(engine);
  engine = null;
  networkQualityShown.clear();
  for (const el of videos.querySelectorAll('.tile.remote')) el.remove();
  $<HTMLVideoElement>('local').srcObject = null;
  const localQuality = $('local-quality');
  localQuality.textContent = '';
  delete localQuality.dataset.level;
  delete localQuality.dataset.quality;
  joinButton.disabled = false;
  publishButton.disabled = true;
  shareButton.disabled = true;
  recordButton.disabled = mixButton.disabled = true;
  publishedStreamID = null;
  shareStopped();
  endButton.disabled = true;
  setChatEnabled(false);
  $('online').textContent = '';
}

/** A production server: the business server at `tokenUrl` mints the token (and names the app) for this user and room. */
async function fetchToken(tokenUrl: string): Promise<void> {
  const url = new URL(tokenUrl, location.href);
  url.searchParams.set('userID', field('userID').value.trim());
  url.searchParams.set('roomID', field('roomID').value.trim());
  const minted = (await (await fetch(url)).json()) as { appID: number; token: string };
  field('appID').value = String(minted.appID);
  field('token').value = minted.token;
}

joinButton.onclick = async () => {
  if (tokenUrl) {
    try {
      await fetchToken(tokenUrl);
    } catch (err) {
      log(`no token from ${tokenUrl}: ${(err as Error).message}`);
      return;
    }
  }
  const appSign = field('appSign').value.trim();
  const token = field('token').value.trim();
  engine = ParleyEngine.createEngine(
    {
      appID: Number(field('appID').value),
      appSign: appSign || undefined,
      scenario: field('scenario').value === 'HighQualityVideoCall' ? Scenario.HighQualityVideoCall : Scenario.StandardVideoCall,
      server: field('server').value,
    },
    handler,
  );
  joinButton.disabled = true;
  endButton.disabled = false;
  const userID = field('userID').value.trim();
  const current = engine;
  // The toggles and the preset may have been set before joining.
  current.enableCamera($('camera').getAttribute('aria-pressed') === 'true');
  current.muteMicrophone($('microphone').getAttribute('aria-pressed') !== 'true');
  current.muteSpeaker($('speaker').getAttribute('aria-pressed') !== 'true');
  applyPreset();
  applyAudioPreset();
  if (field('captureVolume').value !== '100') applyCaptureVolume();
  current.enableAEC(checked('aec'));
  current.setVideoMirrorMode(checked('mirror') ? VideoMirrorMode.OnlyPreviewMirror : VideoMirrorMode.NoMirror);
  current.startPreview({ view: $<HTMLVideoElement>('local') });
  current.startSoundLevelMonitor(100);
  // A refused login (e.g. an invalid roomID) resets the page from within this call.
  current.loginRoom(field('roomID').value.trim(), { userID, userName: userID }, { isUserStatusNotify: true, token }, (code) =>
    log(`loginRoom callback code=${code}`),
  );
};

recordButton.onclick = async () => {
  recordButton.disabled = true;
  try {
    if (recordingTask) {
      const files = await business!.stopRecording(recordingTask);
      log(`recording ${recordingTask} ended: ${files.map((f) => `${f.FileId} (${f.Duration} ms)`).join(', ') || 'no files'}`);
      recordingTask = null;
    } else {
      recordingTask = await business!.startRecording(field('roomID').value.trim());
      log(`recording the room: task ${recordingTask}`);
    }
  } catch (err) {
    log(`recording: ${(err as Error).message}`);
  }
  recordButton.textContent = recordingTask ? 'Stop recording' : 'Record';
  recordButton.disabled = !engine;
};

mixButton.onclick = async () => {
  // The streams on the page (mixes aside), this page's own first.
  const remote = [...videos.querySelectorAll<HTMLElement>('.tile.remote')].map((tile) => tile.dataset.streamId!);
  const streamIDs = [...(publishedStreamID ? [publishedStreamID] : []), ...remote.filter((id) => !id.startsWith('mix_'))].slice(0, 4);
  try {
    log(`mixing ${streamIDs.join(', ')} into ${await business!.mix(field('roomID').value.trim(), streamIDs)}`);
  } catch (err) {
    log(`mixing: ${(err as Error).message}`);
  }
};

publishButton.onclick = () => {
  publishButton.disabled = true;
  const videoCodec = $<HTMLSelectElement>('videoCodec').value as VideoCodec;
  engine?.startPublishingStream(field('streamID').value.trim(), { videoCodec });
};

/** A toggle button: its pressed state is the device's, `apply` gets the new one. */
function toggle(id: string, label: string, apply: (on: boolean) => void): void {
  const button = $<HTMLButtonElement>(id);
  button.onclick = () => {
    const on = button.getAttribute('aria-pressed') !== 'true';
    button.setAttribute('aria-pressed', String(on));
    button.textContent = `${label} ${on ? 'on' : 'off'}`;
    apply(on);
  };
}
toggle('camera', 'Camera', (on) => engine?.enableCamera(on));
toggle('microphone', 'Microphone', (on) => engine?.muteMicrophone(!on));
toggle('speaker', 'Speaker', (on) => engine?.muteSpeaker(!on));

/** setVideoConfig with the chosen preset (while publishing too); nothing until one is chosen. */
function applyPreset(): void {
  const value = field('preset').value;
  if (value !== '' && engine) log(`setVideoConfig preset=${value} code=${engine.setVideoConfig(Number(value) as VideoConfigPreset)}`);
}
field('preset').onchange = applyPreset;

/** setAudioConfig with the chosen preset: a lower bitrate at once, the rest at the next publish. */
function applyAudioPreset(): void {
  const value = field('audioPreset').value;
  if (value !== '' && engine) log(`setAudioConfig preset=${value} code=${engine.setAudioConfig(Number(value) as AudioConfigPreset)}`);
}
field('audioPreset').onchange = applyAudioPreset;

/** setCaptureVolume from the slider (0–200 %). */
function applyCaptureVolume(): void {
  const volume = Number(field('captureVolume').value);
  if (engine) log(`setCaptureVolume ${volume} code=${engine.setCaptureVolume(volume)}`);
}
field('captureVolume').oninput = applyCaptureVolume;

/** Screen sharing: the auxiliary channel publishes `<streamID>_screen` beside the camera. */
const shareButton = $<HTMLButtonElement>('share');
function shareStopped(): void {
  shareButton.textContent = 'Share screen';
  shareButton.dataset.sharing = '';
}
shareButton.onclick = async () => {
  const current = engine;
  if (!current) return;
  if (shareButton.dataset.sharing) {
    current.stopScreenCapture();
    return shareStopped();
  }
  const code = await current.startScreenCapture();
  log(`startScreenCapture code=${code}`);
  if (code !== 0) return;
  current.startPublishingStream(`${field('streamID').value.trim()}_screen`, {}, PublishChannel.Aux);
  shareButton.textContent = 'Stop sharing';
  shareButton.dataset.sharing = 'yes';
};

/** The device pickers: filled from the engine's lists (after the camera is opened, when they have names), and kept current on hot-plug. */
const pickers = [
  { id: 'camera-device', list: (e: ParleyEngine) => e.getVideoDeviceList(), use: (e: ParleyEngine, d: string) => e.useVideoDevice(d) },
  {
    id: 'mic-device',
    list: (e: ParleyEngine) => e.getAudioDeviceList(AudioDeviceType.Input),
    use: (e: ParleyEngine, d: string) => e.useAudioDevice(AudioDeviceType.Input, d),
  },
  {
    id: 'speaker-device',
    list: (e: ParleyEngine) => e.getAudioDeviceList(AudioDeviceType.Output),
    use: (e: ParleyEngine, d: string) => e.useAudioDevice(AudioDeviceType.Output, d),
  },
];
async function fillDevicePickers(): Promise<void> {
  const current = engine;
  if (!current) return;
  for (const { id, list } of pickers) {
    const select = $<HTMLSelectElement>(id);
    const chosen = select.value;
    select.replaceChildren(
      ...(await list(current)).map(({ deviceID, deviceName }) => new Option(deviceName || deviceID, deviceID, false, deviceID === chosen)),
    );
  }
}
for (const { id, use } of pickers) {
  $<HTMLSelectElement>(id).onchange = async () => {
    if (engine) log(`${id} ${$<HTMLSelectElement>(id).selectedOptions[0]?.text} code=${await use(engine, $<HTMLSelectElement>(id).value)}`);
  };
}

const checked = (id: string): boolean => $<HTMLInputElement>(id).checked;
$('aec').onchange = () => engine?.enableAEC(checked('aec'));
$('mirror').onchange = () => engine?.setVideoMirrorMode(checked('mirror') ? VideoMirrorMode.OnlyPreviewMirror : VideoMirrorMode.NoMirror);

sendButton.onclick = () => {
  const text = chatInput.value;
  if (!engine || !text) return;
  const roomID = field('roomID').value.trim();
  chatInput.value = '';
  // Reliable: while reconnecting it waits, and is sent once the room is back.
  engine.sendBroadcastMessage(roomID, text, (code) => {
    if (code === 0) showMessage('me', text);
    else log(`sendBroadcastMessage failed code=${code}`);
  });
};

endButton.onclick = () => {
  if (!engine) return;
  engine.stopPublishingStream();
  engine.stopPreview();
  engine.logoutRoom();
  log('call ended');
  reset();
};

async function init(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  field('server').value = `${scheme}://${location.host}/ws`;
  try {
    const dev = (await (await fetch('/dev-config.json')).json()) as { appID: number; appSign: string };
    field('appID').value = String(dev.appID);
    field('appSign').value = dev.appSign;
  } catch {
    /* not a dev-mode server: the user types credentials */
  }
  const user = params.get('userID') ?? `user${Math.floor(Math.random() * 1e6)}`;
  field('userID').value = user;
  field('streamID').value = params.get('streamID') ?? `stream_${user}`;
  for (const key of ['roomID', 'appID', 'appSign', 'token', 'server', 'videoCodec', 'scenario', 'preset', 'audioPreset']) {
    const value = params.get(key);
    if (value) field(key).value = value;
  }
  log('ready');
}

void init();
