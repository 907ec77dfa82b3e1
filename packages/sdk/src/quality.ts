/**
 * Stream quality as the vendor's SDK reports it every few seconds (onPublisherQualityUpdate,
 * onPlayerQualityUpdate): rates over the last interval from two samples of a peer connection's
 * statistics (W3C getStats, which browsers and werift both give), and a level from the
 * round-trip time and the loss.
 */
import { qualityLevel, StreamQualityLevel, VideoCodecID } from '@parley/protocol';

/** One entry of a W3C stats report. */
export interface StatsEntry {
  type: string;
  id: string;
}

/** What a peer connection has sent and received so far (cumulative), and its latest round trip and loss. */
export interface MediaSample {
  atMs: number;
  /** Video frames the camera (or the app) gave, and sent (of the layer that sent most). */
  framesCaptured: number;
  framesSent: number;
  videoBytesSent: number;
  audioBytesSent: number;
  framesReceived: number;
  framesDecoded: number;
  videoBytesReceived: number;
  audioBytesReceived: number;
  /** Received packets (audio and video); of those expected, the ones that never came, and the ones that came only as a retransmission. */
  packetsReceived: number;
  packetsLost: number;
  packetsRepaired: number;
  /** Video freezes (Chromium's definition) and their total length. */
  freezeCount: number;
  freezeSeconds: number;
  /** The latest round-trip time in ms, if known. */
  rttMs: number | undefined;
  /** Sending: the share of packets lost that the receiver last reported (RTCP), 0–1, if known. */
  remoteLossFraction: number | undefined;
  /** Receiving: how long the jitter buffer holds audio before it plays, ms, if known. */
  playoutDelayMs: number | undefined;
  /** MIME type of the video codec, e.g. "video/VP8". */
  videoCodec: string | undefined;
}

export interface PublishStreamQuality {
  videoCaptureFPS: number;
  videoEncodeFPS: number;
  videoSendFPS: number;
  videoKBPS: number;
  audioKBPS: number;
  /** ms */
  rtt: number;
  /** 0–1 */
  packetLostRate: number;
  level: StreamQualityLevel;
  isHardwareEncode: boolean;
  videoCodecID: VideoCodecID;
  totalSendBytes: number;
  audioSendBytes: number;
  videoSendBytes: number;
}

export interface PlayStreamQuality {
  videoRecvFPS: number;
  videoDecodeFPS: number;
  videoRenderFPS: number;
  videoKBPS: number;
  audioKBPS: number;
  /** ms */
  rtt: number;
  /** 0–1 */
  packetLostRate: number;
  /** The end-to-end delay estimate: half the round trip (publisher to server, server to player, taken alike) twice, plus the playout buffer; ms. */
  delay: number;
  level: StreamQualityLevel;
  videoCumulativeBreakCount: number;
  /** ms */
  videoCumulativeBreakTime: number;
  totalRecvBytes: number;
  audioRecvBytes: number;
  videoRecvBytes: number;
  videoCodecID: VideoCodecID;
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** A sample from a stats report taken at `atMs`. */
export function sampleStats(report: Iterable<StatsEntry>, atMs: number): MediaSample {
  const sample: MediaSample = {
    atMs,
    framesCaptured: 0,
    framesSent: 0,
    videoBytesSent: 0,
    audioBytesSent: 0,
    framesReceived: 0,
    framesDecoded: 0,
    videoBytesReceived: 0,
    audioBytesReceived: 0,
    packetsReceived: 0,
    packetsLost: 0,
    packetsRepaired: 0,
    freezeCount: 0,
    freezeSeconds: 0,
    rttMs: undefined,
    remoteLossFraction: undefined,
    playoutDelayMs: undefined,
    videoCodec: undefined,
  };
  const entries = [...report] as Array<StatsEntry & Record<string, unknown>>;
  const codecs = new Map(entries.filter((e) => e.type === 'codec').map((e) => [e.id, String(e.mimeType ?? '')]));
  let pairRtt: number | undefined;
  let reportRtt: number | undefined;
  for (const e of entries) {
    const video = e.kind === 'video';
    const bytes = (field: 'bytesSent' | 'bytesReceived', header: 'headerBytesSent' | 'headerBytesReceived'): number =>
      num(e[field]) + num(e[header]);
    switch (e.type) {
      case 'media-source':
        if (video) sample.framesCaptured = Math.max(sample.framesCaptured, num(e.frames));
        break;
      case 'outbound-rtp':
        if (video) {
          sample.framesSent = Math.max(sample.framesSent, num(e.framesSent));
          sample.videoBytesSent += bytes('bytesSent', 'headerBytesSent');
          sample.videoCodec ??= codecs.get(String(e.codecId));
        } else {
          sample.audioBytesSent += bytes('bytesSent', 'headerBytesSent');
        }
        break;
      case 'remote-inbound-rtp':
        if (typeof e.fractionLost === 'number') sample.remoteLossFraction = Math.max(sample.remoteLossFraction ?? 0, e.fractionLost);
        if (typeof e.roundTripTime === 'number') reportRtt = Math.max(reportRtt ?? 0, e.roundTripTime * 1000);
        break;
      case 'inbound-rtp':
        sample.packetsReceived += num(e.packetsReceived);
        sample.packetsLost += Math.max(0, num(e.packetsLost));
        sample.packetsRepaired += num(e.retransmittedPacketsReceived);
        if (video) {
          sample.framesReceived += num(e.framesReceived);
          sample.framesDecoded += num(e.framesDecoded);
          sample.videoBytesReceived += bytes('bytesReceived', 'headerBytesReceived');
          sample.freezeCount += num(e.freezeCount);
          sample.freezeSeconds += num(e.totalFreezesDuration);
          sample.videoCodec ??= codecs.get(String(e.codecId));
        } else {
          sample.audioBytesReceived += bytes('bytesReceived', 'headerBytesReceived');
          const emitted = num(e.jitterBufferEmittedCount);
          if (emitted > 0) sample.playoutDelayMs = (num(e.jitterBufferDelay) / emitted) * 1000;
        }
        break;
      case 'candidate-pair':
        if (typeof e.currentRoundTripTime === 'number' && (e.nominated === true || e.state === 'succeeded')) {
          pairRtt = e.currentRoundTripTime * 1000;
        }
        break;
    }
  }
  sample.rttMs = pairRtt ?? reportRtt;
  return sample;
}

/** The vendor's codec ids: H264 is its default (0), VP8 is 2, and its layered codec (SVC, 1) is ours VP9's. */
const CODEC_IDS: Record<string, VideoCodecID> = {
  'video/h264': VideoCodecID.Default,
  'video/vp8': VideoCodecID.VP8,
  'video/vp9': VideoCodecID.SVC,
};
const codecID = (mimeType: string | undefined): VideoCodecID => CODEC_IDS[mimeType?.toLowerCase() ?? ''] ?? VideoCodecID.Unknown;

const perSecond = (amount: number, from: MediaSample, to: MediaSample): number => (amount * 1000) / Math.max(1, to.atMs - from.atMs);
const kbps = (bytes: number, from: MediaSample, to: MediaSample): number => (perSecond(bytes, from, to) * 8) / 1000;

export function publishQuality(from: MediaSample, to: MediaSample): PublishStreamQuality {
  const videoBytes = to.videoBytesSent - from.videoBytesSent;
  const audioBytes = to.audioBytesSent - from.audioBytesSent;
  const sendFps = perSecond(to.framesSent - from.framesSent, from, to);
  // Without a camera (encoded custom capture) every frame sent was captured.
  const captureFps = to.framesCaptured > 0 ? perSecond(to.framesCaptured - from.framesCaptured, from, to) : sendFps;
  return {
    videoCaptureFPS: captureFps,
    videoEncodeFPS: sendFps,
    videoSendFPS: sendFps,
    videoKBPS: kbps(videoBytes, from, to),
    audioKBPS: kbps(audioBytes, from, to),
    rtt: to.rttMs ?? 0,
    packetLostRate: to.remoteLossFraction ?? 0,
    level: qualityLevel(to.rttMs, to.remoteLossFraction, videoBytes + audioBytes > 0),
    isHardwareEncode: false,
    videoCodecID: codecID(to.videoCodec),
    totalSendBytes: to.videoBytesSent + to.audioBytesSent,
    audioSendBytes: to.audioBytesSent,
    videoSendBytes: to.videoBytesSent,
  };
}

export function playQuality(from: MediaSample, to: MediaSample): PlayStreamQuality {
  const videoBytes = to.videoBytesReceived - from.videoBytesReceived;
  const audioBytes = to.audioBytesReceived - from.audioBytesReceived;
  // The link's loss, before repairs: what never came and what came only as a retransmission (a part of what was received).
  const lost = to.packetsLost - from.packetsLost;
  const expected = to.packetsReceived - from.packetsReceived + lost;
  const loss = expected > 0 ? Math.min(1, Math.max(0, (lost + to.packetsRepaired - from.packetsRepaired) / expected)) : undefined;
  const decodeFps = perSecond(to.framesDecoded - from.framesDecoded, from, to);
  return {
    videoRecvFPS: perSecond(to.framesReceived - from.framesReceived, from, to),
    videoDecodeFPS: decodeFps,
    videoRenderFPS: decodeFps,
    videoKBPS: kbps(videoBytes, from, to),
    audioKBPS: kbps(audioBytes, from, to),
    rtt: to.rttMs ?? 0,
    packetLostRate: loss ?? 0,
    delay: (to.rttMs ?? 0) + (to.playoutDelayMs ?? 0),
    level: qualityLevel(to.rttMs, loss, videoBytes + audioBytes > 0),
    videoCumulativeBreakCount: to.freezeCount,
    videoCumulativeBreakTime: Math.round(to.freezeSeconds * 1000),
    totalRecvBytes: to.videoBytesReceived + to.audioBytesReceived,
    audioRecvBytes: to.audioBytesReceived,
    videoRecvBytes: to.videoBytesReceived,
    videoCodecID: codecID(to.videoCodec),
  };
}

/** Samples a transport now and every `intervalMs`, and reports the quality over each interval. */
export class QualityMonitor {
  private last: MediaSample | undefined;
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(
    private readonly sample: () => Promise<MediaSample>,
    intervalMs: number,
    private readonly report: (from: MediaSample, to: MediaSample) => void,
  ) {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), intervalMs);
  }

  private async tick(): Promise<void> {
    const sample = await this.sample().catch(() => undefined);
    if (!sample || this.closed) return;
    if (this.last) this.report(this.last, sample);
    this.last = sample;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }
}

/** How many recent frame intervals the mean is taken over. */
const FREEZE_MEAN_FRAMES = 30;

/** Freezes of rendered video as Chromium counts them: a frame interval over max(3 × the recent mean, the mean + 150 ms). */
export class FreezeCounter {
  private lastFrameMs = -1;
  private readonly intervals: number[] = [];
  private freezes = 0;
  private frozenMs = 0;

  onFrame(nowMs: number): void {
    if (this.lastFrameMs >= 0) {
      const interval = nowMs - this.lastFrameMs;
      if (this.intervals.length > 0) {
        const mean = this.intervals.reduce((sum, i) => sum + i, 0) / this.intervals.length;
        if (interval > Math.max(3 * mean, mean + 150)) {
          this.freezes++;
          this.frozenMs += interval;
        }
      }
      this.intervals.push(interval);
      if (this.intervals.length > FREEZE_MEAN_FRAMES) this.intervals.shift();
    }
    this.lastFrameMs = nowMs;
  }

  get count(): number {
    return this.freezes;
  }

  get seconds(): number {
    return this.frozenMs / 1000;
  }
}
