/**
 * Media in the browser: camera and microphone through getUserMedia, remote streams into the
 * `<video>` element the app passes as canvas.view, one RTCPeerConnection per stream.
 */
import {
  ErrorCode,
  Scenario,
  ScreenCaptureExceptionType,
  soundLevelFromAmplitude,
  UpdateType,
  ViewMode,
  type IceServer,
} from '@parley/protocol';
import { DeviceWatch, type DeviceChange, type DeviceInfo, type DeviceKind } from '../deviceWatch.js';
import {
  CaptureError,
  type AudioProcessing,
  type Canvas,
  type MediaBackend,
  type MediaTransport,
  type PlaySink,
  type PublishMedia,
  type VideoCodec,
} from '../platform.js';
import type { CaptureState } from '../captureControls.js';
import { PeerTransport } from '../peerTransport.js';
import { defaultBitrate, simulcastLayers } from '../simulcast.js';
import type { VideoConfig } from '../videoConfig.js';
import { withOpusConfig, type AudioConfig } from '../audioConfig.js';
import { CaptureGain } from './captureGain.js';

/** The canvas's video element, fitting the video as its `viewMode` says (AspectFit by default). */
function videoElement(canvas: Canvas | undefined): HTMLVideoElement | undefined {
  const view = canvas?.view;
  if (typeof HTMLVideoElement === 'undefined' || !(view instanceof HTMLVideoElement)) return undefined;
  view.style.objectFit = OBJECT_FIT[(canvas?.viewMode ?? ViewMode.AspectFit) as ViewMode] ?? 'contain';
  return view;
}

const OBJECT_FIT: Record<ViewMode, string> = {
  [ViewMode.AspectFit]: 'contain',
  [ViewMode.AspectFill]: 'cover',
  [ViewMode.ScaleToFill]: 'fill',
};

function attach(view: HTMLMediaElement, stream: MediaStream, muted: boolean): void {
  view.muted = muted;
  view.autoplay = true;
  if (view instanceof HTMLVideoElement) view.playsInline = true;
  view.srcObject = stream;
  void view.play().catch(() => undefined); // autoplay policies may refuse until a user gesture
}

abstract class BrowserTransport extends PeerTransport<RTCSessionDescriptionInit> {
  protected readonly pc: RTCPeerConnection;

  constructor(iceServers: IceServer[], onClosed: (closing: Promise<void>) => void) {
    super(onClosed);
    this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers });
    this.pc.onconnectionstatechange = () => this.connectionStateChanged(this.pc.connectionState);
  }

  /**
   * The offer goes out without waiting for candidates: the server is reachable at the addresses in
   * its answer, and learns ours from our connectivity checks (peer-reflexive), as ICE-lite servers
   * do. Waiting for Chromium to finish gathering cost about 120 ms of every call setup.
   */
  protected gatheringComplete(): Promise<void> {
    return Promise.resolve();
  }

  protected closePeer(): void {
    this.pc.close();
  }
}

/**
 * The audio's bitrate follows the uplink: Opus keeps its configured rate while that is at most
 * this share of the peer connection's estimate of its uplink, and gets that share below, down to
 * MIN_AUDIO_BPS. A lossy uplink's estimate falls to about 100 kbit/s (libwebrtc's loss-based
 * control), and RED sends each audio frame twice: a 32 kbit/s voice took 75 kbit/s of it, and the
 * video was left a few frames per second.
 */
const AUDIO_SHARE_OF_UPLINK = 1 / 6;
const MIN_AUDIO_BPS = 12_000;
/** Chromium's Opus bitrate when the app configures none. */
const BROWSER_AUDIO_BPS = 32_000;
const AUDIO_FOLLOW_INTERVAL_MS = 1000;
/** The audio's bitrate is changed for a change of over this share (each change costs a setParameters). */
const AUDIO_CHANGE_SHARE = 0.15;

class BrowserPublishTransport extends BrowserTransport {
  protected readonly receives = 'rtcp';
  private videoSender: RTCRtpSender | undefined;
  private audioSender: RTCRtpSender | undefined;
  /**
   * The capture size the simulcast layers were negotiated at: libwebrtc drops the largest layers
   * of a smaller input, so a smaller config is encoded from it rather than captured smaller.
   */
  simulcastCapture: { width: number; height: number } | undefined;
  /** Changes of the video sender's parameters, one at a time: parameters read while another change is pending are stale. */
  private parameterChanges = Promise.resolve();
  /** Each encoding's maxBitrate as configured (undefined: the browser's choice), and the server's caps on it (0: none). */
  private configuredBitrates: Array<number | undefined> = [];
  private bitrateCaps: number[] = [];
  /** setAudioConfig's config when this transport was set up, negotiated in its offer. */
  private audioConfig: AudioConfig | undefined;
  /** The audio's bitrate as the app configured it now (undefined: the browser's choice), and what the uplink allows it. */
  private configuredAudioBps: number | undefined;
  private audioBps: number | undefined;
  private audioFollow: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly channel: number,
    private readonly videoCodec: VideoCodec,
    private readonly source: () => Promise<{
      stream: MediaStream;
      state: CaptureState;
      config: VideoConfig | undefined;
      audio: AudioConfig | undefined;
    }>,
    /** The track to send for the capture's audio track (setCaptureVolume's gain). */
    private readonly outgoingAudio: (track: MediaStreamTrack) => MediaStreamTrack,
    iceServers: IceServer[],
    onClosed: () => void,
  ) {
    super(iceServers, onClosed);
  }

  protected async prepare(): Promise<void> {
    const { stream, state, config, audio: audioConfig } = await this.source();
    this.audioConfig = audioConfig;
    const audio = stream.getAudioTracks()[0];
    const audioTransceiver = this.pc.addTransceiver(audio ?? 'audio', { direction: 'sendonly', streams: [stream] });
    audioTransceiver.setCodecPreferences(audioCodecPreferences());
    this.audioSender = audioTransceiver.sender;
    const video = stream.getVideoTracks()[0];
    const sendEncodings = encodings(video, config, this.videoCodec);
    const transceiver = this.pc.addTransceiver(video ?? 'video', { direction: 'sendonly', streams: [stream], sendEncodings });
    this.configuredBitrates = sendEncodings?.map((encoding) => encoding.maxBitrate) ?? [];
    const { width, height } = video?.getSettings() ?? {};
    if (width && height && transceiver.sender.getParameters().encodings.length > 1) this.simulcastCapture = { width, height };
    transceiver.setCodecPreferences(videoCodecPreferences(this.videoCodec));
    this.videoSender = transceiver.sender;
    await this.send(stream, state);
    // Without a config of the app's, the browser's own choice (Chromium: 32 kbit/s mono Opus, plus RED).
    if (audioConfig) await this.encodeAudio(audioConfig);
    this.audioFollow = setInterval(() => void this.followUplink().catch(() => undefined), AUDIO_FOLLOW_INTERVAL_MS);
  }

  protected override onClose(): void {
    clearInterval(this.audioFollow);
  }

  protected override shapeOffer(sdp: string): string {
    return this.audioConfig ? withOpusConfig(sdp, this.audioConfig) : sdp;
  }

  /** The audio's bitrate, now (no renegotiation). */
  async encodeAudio({ bitrate }: AudioConfig): Promise<void> {
    this.configuredAudioBps = bitrate * 1000;
    await this.applyAudioBitrate(this.audioBps);
  }

  /** Sets the audio's bitrate for the uplink's estimate now (AUDIO_SHARE_OF_UPLINK). */
  private async followUplink(): Promise<void> {
    let estimateBps = 0;
    (await this.pc.getStats()).forEach((entry: { type: string; nominated?: boolean; availableOutgoingBitrate?: number }) => {
      if (entry.type === 'candidate-pair' && entry.nominated) estimateBps = entry.availableOutgoingBitrate ?? 0;
    });
    if (!(estimateBps > 0)) return;
    const full = this.configuredAudioBps ?? BROWSER_AUDIO_BPS;
    const allowed = Math.max(MIN_AUDIO_BPS, AUDIO_SHARE_OF_UPLINK * estimateBps);
    const next = allowed >= full ? undefined : Math.round(allowed);
    const current = this.audioBps ?? full;
    // Back to the full rate whenever there is room for it, however near the limit was.
    const restored = next === undefined && this.audioBps !== undefined;
    if (restored || Math.abs((next ?? full) - current) > AUDIO_CHANGE_SHARE * current) await this.applyAudioBitrate(next);
  }

  /** The configured bitrate, or `limitBps` under it (undefined: none); without either, the browser's choice. */
  private async applyAudioBitrate(limitBps: number | undefined): Promise<void> {
    this.audioBps = limitBps;
    const sender = this.audioSender;
    const parameters = sender?.getParameters();
    const encoding = parameters?.encodings[0];
    if (!sender || !encoding) return;
    const bitrate = Math.min(this.configuredAudioBps ?? Infinity, limitBps ?? Infinity);
    if (bitrate === Infinity) delete encoding.maxBitrate;
    else encoding.maxBitrate = bitrate;
    await sender.setParameters(parameters).catch(() => undefined);
  }

  /** Sends the capture's tracks, or nothing in their place (no renegotiation: the senders stay). */
  async send(stream: MediaStream, { sendVideo, sendAudio }: CaptureState): Promise<void> {
    const video = sendVideo ? (stream.getVideoTracks()[0] ?? null) : null;
    const captured = sendAudio ? stream.getAudioTracks()[0] : undefined;
    const audio = captured ? this.outgoingAudio(captured) : null;
    if (this.videoSender && this.videoSender.track !== video) await this.videoSender.replaceTrack(video).catch(() => undefined);
    if (this.audioSender && this.audioSender.track !== audio) await this.audioSender.replaceTrack(audio).catch(() => undefined);
  }

  /** The microphone's level as the peer connection measures what it sends. */
  async soundLevel(): Promise<number> {
    let amplitude = 0;
    (await this.pc.getStats()).forEach((entry: { type: string; kind?: string; audioLevel?: number }) => {
      if (entry.type === 'media-source' && entry.kind === 'audio') amplitude = entry.audioLevel ?? 0;
    });
    return soundLevelFromAmplitude(amplitude);
  }

  /** Pauses and resumes simulcast encodings without renegotiating; a resumed one starts with a keyframe. */
  setActiveLayers(active: boolean[]): void {
    this.changeParameters((parameters) => {
      if (parameters.encodings.length < 2) return false;
      parameters.encodings.forEach((encoding, i) => (encoding.active = active[i] ?? true));
      return true;
    });
  }

  /**
   * Encodes as `config` says without renegotiating: the largest layer at the encode size (scaled
   * down from the capture), frame rate and bitrate; each smaller one half the size before, at
   * most the default bitrate for its size. The number of layers stays what was negotiated.
   */
  encode(config: VideoConfig, captureWidth: number): Promise<void> {
    return this.changeParameters((parameters) => {
      const count = parameters.encodings.length;
      const top = Math.max(1, captureWidth / config.encodeWidth);
      parameters.encodings.forEach((encoding, i) => {
        const down = 2 ** (count - 1 - i);
        encoding.scaleResolutionDownBy = top * down;
        encoding.maxFramerate = config.fps;
        this.configuredBitrates[i] = Math.min(
          config.bitrate * 1000,
          i === count - 1 ? Infinity : defaultBitrate(config.encodeWidth / down, config.encodeHeight / down),
        );
        this.capBitrate(encoding, i);
      });
      return true;
    });
  }

  /**
   * The server's caps on the encodings' bitrates (bits per second, 0: none): its players' links
   * cannot take more. Each encoding gets the lower of its configured rate and its cap.
   */
  setLayerBitrates(maxBitrates: number[]): void {
    this.bitrateCaps = maxBitrates;
    this.changeParameters((parameters) => {
      parameters.encodings.forEach((encoding, i) => this.capBitrate(encoding, i));
      return true;
    });
  }

  private capBitrate(encoding: RTCRtpEncodingParameters, i: number): void {
    const configured = this.configuredBitrates[i];
    const cap = this.bitrateCaps[i] || undefined;
    const bitrate = cap === undefined ? configured : Math.min(cap, configured ?? Infinity);
    if (bitrate === undefined) delete encoding.maxBitrate;
    else encoding.maxBitrate = bitrate;
  }

  private changeParameters(change: (parameters: RTCRtpSendParameters) => boolean): Promise<void> {
    const sender = this.videoSender;
    if (!sender) return Promise.resolve();
    this.parameterChanges = this.parameterChanges.then(async () => {
      const parameters = sender.getParameters();
      if (parameters.encodings.length > 0 && change(parameters)) await sender.setParameters(parameters).catch(() => undefined);
    });
    return this.parameterChanges;
  }
}

/**
 * Simulcast encodings for the camera's current size (none for a single layer). Each layer is sent
 * without temporal layers (L1T1; Chromium's default for simulcast VP8 is three): an uplink that
 * leaves a layer a few dozen kbit/s then still gets about the frame rate a single encoding would,
 * where three temporal layers halve it. Players are served by switching layers instead. VP9 sends
 * the same layers as one encoding of spatial layers (`LnT1`): a player moves down without a
 * keyframe, and when the uplink falls short the encoder drops its top layer without its players
 * waiting for a keyframe of another. Each layer is predicted from the one below too: with that
 * only in keyframes (`LnT1_KEY`), Chromium's player stalled for seconds at 2 % loss, browser to
 * browser as well. Under loss Chromium plays VP9 SVC worse than VP8 even so (README, Known issues).
 */
function encodings(
  video: MediaStreamTrack | undefined,
  config: VideoConfig | undefined,
  codec: VideoCodec,
): RTCRtpEncodingParameters[] | undefined {
  const { width, height } = video?.getSettings() ?? {};
  if (!width || !height) return undefined;
  // With a video config, layers are of its encode size (scaled down from the capture) and bitrate.
  const top = config ? Math.max(1, width / config.encodeWidth) : 1;
  const limits = config && { maxBitrate: config.bitrate * 1000, maxFramerate: config.fps };
  const layers = simulcastLayers(width / top, height / top, limits?.maxBitrate);
  if (layers.length === 1) return limits && [{ scaleResolutionDownBy: top, ...limits }];
  if (codec === 'VP9') {
    const maxBitrate = layers.reduce((sum, layer) => sum + layer.maxBitrate, 0);
    // The DOM typings lack scalabilityMode (WebRTC-SVC).
    const svc: RTCRtpEncodingParameters & { scalabilityMode: string } = {
      scalabilityMode: `L${layers.length}T1`,
      scaleResolutionDownBy: top,
      ...limits,
      maxBitrate,
    };
    return [svc];
  }
  return layers.map(({ rid, scaleResolutionDownBy, maxBitrate }) => ({
    rid,
    scaleResolutionDownBy: scaleResolutionDownBy * top,
    maxBitrate,
    scalabilityMode: 'L1T1',
    ...(limits && { maxFramerate: limits.maxFramerate }),
  }));
}

/**
 * RED first, then Opus: a browser sends RED (each packet repeating the frames before it, RFC
 * 2198) only when it leads the negotiated formats; a lost packet's audio then arrives with the
 * next one, with no round trip.
 */
function audioCodecPreferences(): RTCRtpCodec[] {
  const all = RTCRtpSender.getCapabilities('audio')?.codecs ?? [];
  const red = all.filter((c) => c.mimeType.toLowerCase() === 'audio/red');
  const opus = all.filter((c) => c.mimeType.toLowerCase() === 'audio/opus');
  return [...red, ...opus];
}

/**
 * Only the chosen codec (plus its retransmission format) is offered, so the server cannot pick
 * another; of VP9, profile 0 (8-bit 4:2:0), which every decoder has.
 */
function videoCodecPreferences(codec: VideoCodec): RTCRtpCodec[] {
  const all = RTCRtpSender.getCapabilities('video')?.codecs ?? [];
  const wanted = `video/${codec}`.toLowerCase();
  const profile = (c: RTCRtpCodec): boolean => codec !== 'VP9' || !/profile-id=[1-9]/.test(c.sdpFmtpLine ?? '');
  return all.filter((c) => (c.mimeType.toLowerCase() === wanted && profile(c)) || c.mimeType.toLowerCase() === 'video/rtx');
}

class BrowserPlayTransport extends BrowserTransport {
  protected readonly receives = 'rtp';
  private readonly stream = new MediaStream();
  private fallbackAudio: HTMLAudioElement | undefined;
  /** Above 100 % a media element cannot go: the sound then goes through a gain to the speakers instead. */
  private amplifier: { context: AudioContext; gain: GainNode } | undefined;
  /** Stops watching the view's size and the video's resolution. */
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly sink: PlaySink,
    /** The speaker as the app set it: muted, and which device (the default if none). */
    private readonly speaker: { muted(): boolean; device(): string | undefined },
    iceServers: IceServer[],
    onClosed: () => void,
  ) {
    super(iceServers, onClosed);
    this.pc.ontrack = (ev) => {
      this.stream.addTrack(ev.track);
      this.render();
    };
  }

  protected async prepare(): Promise<void> {
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    this.pc.addTransceiver('video', { direction: 'recvonly' });
  }

  /** The level of the audio played: from the packets' audio level extension where sent, as browsers report it per source. */
  async soundLevel(): Promise<number> {
    const receiver = this.pc.getReceivers().find((r) => r.track.kind === 'audio');
    const [source] = receiver?.getSynchronizationSources() ?? [];
    // A source that sent nothing for a while is silent (the browser keeps the last for 10 s).
    return source && performance.now() - source.timestamp <= 500 ? soundLevelFromAmplitude(source.audioLevel ?? 0) : 0;
  }

  private render(): void {
    const view = videoElement(this.sink.canvas);
    if (view) {
      if (view.srcObject !== this.stream) {
        attach(view, this.stream, false);
        this.watchFirstFrame(view);
        this.watchSizes(view);
      }
    } else if (!this.fallbackAudio) {
      // No view: the user still hears the stream.
      this.fallbackAudio = new Audio();
      attach(this.fallbackAudio, this.stream, false);
    }
    this.applyVolume();
    const device = this.speaker.device();
    if (device) void this.playOn(device);
  }

  /** Plays on a speaker (the default one for ''), where the browser can choose. */
  async playOn(deviceID: string): Promise<void> {
    const element = (videoElement(this.sink.canvas) ?? this.fallbackAudio) as
      (HTMLMediaElement & { setSinkId?(id: string): Promise<void> }) | undefined;
    await element?.setSinkId?.(deviceID).catch(() => undefined);
  }

  applyVolume(): void {
    const element = videoElement(this.sink.canvas) ?? this.fallbackAudio;
    if (!element) return;
    const volume = this.speaker.muted() ? 0 : Math.min(200, Math.max(0, this.sink.volume()));
    const amplified = volume > 100 && this.stream.getAudioTracks().length > 0;
    if (amplified && !this.amplifier) {
      const context = new AudioContext();
      const gain = context.createGain();
      context.createMediaStreamSource(this.stream).connect(gain).connect(context.destination);
      this.amplifier = { context, gain };
    } else if (!amplified && this.amplifier) {
      void this.amplifier.context.close();
      this.amplifier = undefined;
    }
    if (this.amplifier) this.amplifier.gain.gain.value = volume / 100;
    element.muted = volume === 0 || amplified;
    element.volume = Math.min(1, volume / 100);
  }

  private watchFirstFrame(view: HTMLVideoElement): void {
    const done = (): void => this.sink.onFirstVideoFrame();
    const v = view as HTMLVideoElement & { requestVideoFrameCallback?: (cb: () => void) => number };
    if (typeof v.requestVideoFrameCallback === 'function') v.requestVideoFrameCallback(done);
    else view.addEventListener('loadeddata', done, { once: true });
  }

  /** Reports the view's size in device pixels (it caps the layer) and the video's resolution as they change. */
  private watchSizes(view: HTMLVideoElement): void {
    const viewSize = (): void =>
      this.sink.onViewSize(Math.round(view.clientWidth * devicePixelRatio), Math.round(view.clientHeight * devicePixelRatio));
    const videoSize = (): void => this.sink.onVideoSize(view.videoWidth, view.videoHeight);
    const observer = new ResizeObserver(viewSize);
    observer.observe(view);
    view.addEventListener('resize', videoSize);
    this.unwatch = () => {
      observer.disconnect();
      view.removeEventListener('resize', videoSize);
    };
  }

  protected override onClose(): void {
    this.unwatch?.();
    const view = videoElement(this.sink.canvas);
    if (view && view.srcObject === this.stream) view.srcObject = null;
    if (this.fallbackAudio) this.fallbackAudio.srcObject = null;
    void this.amplifier?.context.close();
    for (const track of this.stream.getTracks()) track.stop();
  }
}

/** The error code of a refused or failed getUserMedia. */
function deviceError(err: unknown): number {
  const name = (err as Error).name;
  return name === 'NotAllowedError' || name === 'SecurityError' ? ErrorCode.DevicePermissionDenied : ErrorCode.DeviceNotFound;
}

/** The camera settings a video config asks for. */
const constraintsOf = (config: VideoConfig): MediaTrackConstraints => ({
  width: { ideal: config.captureWidth },
  height: { ideal: config.captureHeight },
  frameRate: { ideal: config.fps },
});

/** The camera settings each scenario starts with. */
function videoConstraints(scenario: Scenario): MediaTrackConstraints {
  switch (scenario) {
    case Scenario.HighQualityVideoCall:
    case Scenario.Broadcast:
      return { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
    default:
      return { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15 } };
  }
}

export class BrowserMedia implements MediaBackend {
  /** Camera+mic per publish channel, shared by preview and publishing; released when neither uses it. */
  private readonly captures = new Map<number, Promise<MediaStream>>();
  /** Channels previewing, with the view they render into (if any). */
  private readonly previews = new Map<number, HTMLVideoElement | undefined>();
  private readonly transports = new Set<BrowserTransport>();
  /** What the app turned off or muted, per channel (all on until told). */
  private readonly states = new Map<number, CaptureState>();
  private speakerMuted = false;
  /** Channels whose capture is a shared screen: kept between publish attempts, until stopScreenCapture. */
  private readonly screens = new Set<number>();
  /** setVideoMirrorMode: the local preview shown as in a mirror (the vendor's default). */
  private previewMirrored = true;
  /** enableAEC / enableANS / enableAGC: the browser's audio processing of the microphone. */
  private audioProcessing = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  /** setAudioConfig per channel. */
  private readonly audioConfigs = new Map<number, AudioConfig>();
  /** setVideoConfig per channel; the scenario's camera settings without one. */
  private readonly videoConfigs = new Map<number, VideoConfig>();
  /** Capture changes, one at a time (turning the camera on waits for the device). */
  private captureChanges = Promise.resolve();

  // Pages that are not secure contexts have no navigator.mediaDevices.
  private readonly deviceWatch = new DeviceWatch(() => navigator.mediaDevices?.enumerateDevices() ?? Promise.resolve([]));
  /** useVideoDevice per channel, useAudioDevice for the microphone and the speaker (the default ones until then). */
  private readonly chosenCameras = new Map<number, string>();
  private readonly chosenDevices = new Map<'audioinput' | 'audiooutput', string>();
  private readonly onDevicesChange = (): void => void this.devicesChanged();
  private readonly captureGain = new CaptureGain(() => this.resendAll());

  constructor(
    private readonly scenario: Scenario,
    private readonly onDeviceChange: (change: DeviceChange) => void,
  ) {
    // The first listing is what later ones are compared with.
    void this.deviceWatch.changes();
    navigator.mediaDevices?.addEventListener('devicechange', this.onDevicesChange);
  }

  /** The publish transports of a channel. */
  private publishing(channel: number): BrowserPublishTransport[] {
    return [...this.transports].filter((t): t is BrowserPublishTransport => t instanceof BrowserPublishTransport && t.channel === channel);
  }

  private get players(): BrowserPlayTransport[] {
    return [...this.transports].filter((t): t is BrowserPlayTransport => t instanceof BrowserPlayTransport);
  }

  private mirror(view: HTMLVideoElement): void {
    view.style.transform = this.previewMirrored ? 'scaleX(-1)' : '';
  }

  private stateOf(channel: number): CaptureState {
    return this.states.get(channel) ?? { camera: true, microphone: true, sendVideo: true, sendAudio: true };
  }

  private cameraConstraints(channel: number): MediaTrackConstraints {
    const config = this.videoConfigs.get(channel);
    const device = this.chosenCameras.get(channel);
    return { ...(config ? constraintsOf(config) : videoConstraints(this.scenario)), ...(device && { deviceId: { exact: device } }) };
  }

  applyAudioConfig(channel: number, config: AudioConfig): void {
    this.audioConfigs.set(channel, config);
    for (const transport of this.publishing(channel)) void transport.encodeAudio(config);
  }

  applyVideoConfig(channel: number, config: VideoConfig): void {
    this.videoConfigs.set(channel, config);
    this.captureChanges = this.captureChanges.then(async () => {
      const stream = await this.captures.get(channel)?.catch(() => undefined);
      if (!stream || this.videoConfigs.get(channel) !== config) return;
      const [video] = stream.getVideoTracks();
      const publishing = this.publishing(channel);
      const floor = publishing.find((t) => t.simulcastCapture)?.simulcastCapture;
      const capture =
        floor && floor.height > config.captureHeight ? { ...config, captureWidth: floor.width, captureHeight: floor.height } : config;
      await video?.applyConstraints(constraintsOf(capture)).catch(() => undefined);
      const captureWidth = video?.getSettings().width ?? config.captureWidth;
      for (const transport of publishing) await transport.encode(config, captureWidth);
    });
  }

  async startScreenCapture(
    channel: number,
    captureAudio: boolean,
    onEnded: () => void,
  ): Promise<{ code: 0 } | { code: number; exception: number }> {
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: captureAudio });
    } catch (err) {
      const refused = (err as Error).name === 'NotAllowedError';
      return {
        code: ErrorCode.UnsupportedRequest,
        exception: refused ? ScreenCaptureExceptionType.NotAllowed : ScreenCaptureExceptionType.Unknown,
      };
    }
    this.release(channel);
    const [video] = stream.getVideoTracks();
    // Text and lines over motion: the encoder keeps resolution and lowers the frame rate under pressure.
    if (video) {
      video.contentHint = 'detail';
      video.addEventListener('ended', () => {
        if (this.captures.get(channel) === capture) onEnded();
      });
    }
    const capture = Promise.resolve(stream);
    this.captures.set(channel, capture);
    this.screens.add(channel);
    return { code: 0 };
  }

  stopScreenCapture(channel: number): void {
    this.release(channel);
  }

  mirrorPreview(mirrored: boolean): void {
    this.previewMirrored = mirrored;
    for (const view of this.previews.values()) if (view) this.mirror(view);
  }

  /** Chromium does not change a live track's processing: a new microphone track takes the old one's place. */
  applyAudioProcessing(processing: AudioProcessing): void {
    this.audioProcessing = { ...processing };
    for (const channel of this.captures.keys()) this.replaceTrack(channel, 'audio');
  }

  private microphoneConstraints(): MediaTrackConstraints {
    const device = this.chosenDevices.get('audioinput');
    return { ...this.audioProcessing, ...(device && { deviceId: { exact: device } }) };
  }

  /**
   * A new camera or microphone track for a channel's capture, as the constraints now say (another
   * device, other processing), put in the old one's place: the senders switch to it (no
   * renegotiation) before the old one stops, so at most a frame goes missing.
   */
  private replaceTrack(channel: number, kind: 'audio' | 'video'): Promise<number> {
    const done = this.captureChanges.then(async () => {
      const stream = await this.captures.get(channel)?.catch(() => undefined);
      const [old] = kind === 'audio' ? (stream?.getAudioTracks() ?? []) : (stream?.getVideoTracks() ?? []);
      if (!stream || !old || this.screens.has(channel)) return 0;
      let track: MediaStreamTrack | undefined;
      try {
        const fresh = await navigator.mediaDevices.getUserMedia(
          kind === 'audio' ? { audio: this.microphoneConstraints() } : { video: this.cameraConstraints(channel) },
        );
        track = kind === 'audio' ? fresh.getAudioTracks()[0] : fresh.getVideoTracks()[0];
      } catch (err) {
        return deviceError(err);
      }
      if (!track) return ErrorCode.DeviceNotFound;
      track.enabled = old.enabled;
      stream.removeTrack(old);
      stream.addTrack(track);
      for (const transport of this.publishing(channel)) await transport.send(stream, this.stateOf(channel));
      old.stop();
      return 0;
    });
    this.captureChanges = done.then(() => undefined);
    return done;
  }

  listDevices(kind: DeviceKind): Promise<DeviceInfo[]> {
    return this.deviceWatch.list(kind);
  }

  /** Uses a camera (for `channel`), microphone or speaker from now on, switching what is captured or played at once. */
  async useDevice(kind: DeviceKind, deviceID: string, channel: number): Promise<number> {
    if (!(await this.deviceWatch.list(kind)).some((d) => d.deviceID === deviceID)) return ErrorCode.DeviceNotFound;
    if (kind === 'videoinput') {
      this.chosenCameras.set(channel, deviceID);
      return this.replaceTrack(channel, 'video');
    }
    this.chosenDevices.set(kind, deviceID);
    if (kind === 'audiooutput') {
      for (const player of this.players) await player.playOn(deviceID);
      return 0;
    }
    const results = await Promise.all([...this.captures.keys()].map((c) => this.replaceTrack(c, 'audio')));
    return results.find((code) => code !== 0) ?? 0;
  }

  /** Devices plugged in or out: told to the engine; a device in use that went away gives way to the default one. */
  private async devicesChanged(): Promise<void> {
    for (const change of await this.deviceWatch.changes()) {
      this.onDeviceChange(change);
      if (change.updateType !== UpdateType.Delete) continue;
      const gone = change.device.deviceID;
      if (change.kind === 'videoinput') {
        for (const [channel, device] of this.chosenCameras) {
          if (device !== gone) continue;
          this.chosenCameras.delete(channel);
          void this.replaceTrack(channel, 'video');
        }
      } else if (this.chosenDevices.get(change.kind) === gone) {
        this.chosenDevices.delete(change.kind);
        if (change.kind === 'audioinput') for (const channel of this.captures.keys()) void this.replaceTrack(channel, 'audio');
        else for (const player of this.players) void player.playOn('');
      }
    }
  }

  setCaptureVolume(volume: number): void {
    this.captureGain.setVolume(volume);
    this.resendAll();
  }

  /** Every publish transport sends its capture's tracks again, as they now are (the gain's output or the microphone's). */
  private resendAll(): void {
    this.captureChanges = this.captureChanges.then(async () => {
      for (const [channel, capture] of this.captures) {
        const stream = await capture.catch(() => undefined);
        if (stream) for (const transport of this.publishing(channel)) await transport.send(stream, this.stateOf(channel));
      }
    });
  }

  muteSpeaker(muted: boolean): void {
    this.speakerMuted = muted;
    for (const player of this.players) player.applyVolume();
  }

  applyCapture(channel: number, state: CaptureState): void {
    this.states.set(channel, state);
    this.captureChanges = this.captureChanges.then(async () => {
      const stream = await this.captures.get(channel)?.catch(() => undefined);
      if (!stream || this.states.get(channel) !== state) return; // not capturing (the state applies when it starts), or changed again
      await this.applyTo(stream, state, channel);
      for (const transport of this.publishing(channel)) await transport.send(stream, state);
    });
  }

  /** The camera's device on or off (a new track when it comes back), the microphone's track enabled or not. */
  private async applyTo(stream: MediaStream, { camera, microphone }: CaptureState, channel: number): Promise<void> {
    for (const track of stream.getAudioTracks()) track.enabled = microphone;
    const [video] = stream.getVideoTracks();
    if (!camera && video) {
      video.stop();
      stream.removeTrack(video);
    } else if (camera && !video) {
      const [track] =
        (await navigator.mediaDevices.getUserMedia({ video: this.cameraConstraints(channel) }).catch(() => undefined))?.getVideoTracks() ??
        [];
      if (track) stream.addTrack(track);
    }
  }

  private capture(channel: number): Promise<MediaStream> {
    let stream = this.captures.get(channel);
    if (!stream) {
      const { camera } = this.stateOf(channel);
      stream = navigator.mediaDevices
        .getUserMedia({ audio: this.microphoneConstraints(), video: camera && this.cameraConstraints(channel) })
        .catch((err: unknown) => Promise.reject(new CaptureError(deviceError(err), (err as Error).message)))
        .then(async (s) => (await this.applyTo(s, this.stateOf(channel), channel), s));
      this.captures.set(channel, stream);
      stream.catch(() => this.captures.delete(channel));
    }
    return stream;
  }

  createPublishTransport(channel: number, { videoCodec }: PublishMedia, iceServers: IceServer[]): MediaTransport | undefined {
    if (!videoCodecPreferences(videoCodec).some((c) => c.mimeType.toLowerCase() !== 'video/rtx')) return undefined;
    const transport: BrowserTransport = new BrowserPublishTransport(
      channel,
      videoCodec,
      async () => ({
        stream: await this.capture(channel),
        state: this.stateOf(channel),
        config: this.videoConfigs.get(channel),
        audio: this.audioConfigs.get(channel),
      }),
      // A shared screen's sound is not the microphone's.
      (track) => (this.screens.has(channel) ? track : this.captureGain.output(track)),
      iceServers,
      () => {
        this.transports.delete(transport);
        this.releaseIfUnused(channel);
      },
    );
    this.transports.add(transport);
    return transport;
  }

  createPlayTransport(sink: PlaySink, iceServers: IceServer[]): MediaTransport {
    const transport: BrowserTransport = new BrowserPlayTransport(
      sink,
      { muted: () => this.speakerMuted, device: () => this.chosenDevices.get('audiooutput') },
      iceServers,
      () => this.transports.delete(transport),
    );
    this.transports.add(transport);
    return transport;
  }

  async startPreview(canvas: Canvas | undefined, channel: number): Promise<number> {
    try {
      const stream = await this.capture(channel);
      const view = videoElement(canvas);
      if (view) {
        attach(view, stream, true); // never play your own microphone back
        this.mirror(view);
      }
      this.previews.set(channel, view);
      return 0;
    } catch (err) {
      return err instanceof CaptureError ? err.code : ErrorCode.UnsupportedRequest;
    }
  }

  stopPreview(channel: number): void {
    const view = this.previews.get(channel);
    if (view) view.srcObject = null;
    this.previews.delete(channel);
    this.releaseIfUnused(channel);
  }

  private releaseIfUnused(channel: number): void {
    if (this.publishing(channel).length === 0 && !this.previews.has(channel) && !this.screens.has(channel)) this.release(channel);
  }

  private release(channel: number): void {
    const stream = this.captures.get(channel);
    this.captures.delete(channel);
    this.screens.delete(channel);
    void stream?.then((s) => s.getTracks().forEach((t) => t.stop())).catch(() => undefined);
  }

  async destroy(): Promise<void> {
    navigator.mediaDevices?.removeEventListener('devicechange', this.onDevicesChange);
    for (const transport of [...this.transports]) transport.close();
    for (const channel of [...this.captures.keys()]) this.release(channel);
    for (const view of this.previews.values()) if (view) view.srcObject = null;
    this.previews.clear();
    this.captureGain.close();
  }
}
