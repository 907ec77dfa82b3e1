/**
 * One stream's frames for every recording that takes it: one tap on the publisher, its packets
 * assembled into frames once, each frame placed on the sender's clock, and keyframe requests to
 * the publisher at most one per interval however many recordings ask (a publisher flooded with
 * PLIs spends its uplink on keyframes).
 */
import { EventEmitter } from 'node:events';
import { FrameAssembler, type AssembledFrame, type MediaTap, type SenderClock, type TappedPacket } from '../media/index.js';
import type { VideoCodecName } from './segmentFile.js';

export type TrackKind = 'audio' | 'video';

const CLOCK_RATE: Record<TrackKind, number> = { audio: 48_000, video: 90_000 };

/** How often held packets are checked for gaps that waited long enough. */
const RELEASE_INTERVAL_MS = 50;

export interface StreamFeedOptions {
  /** At most one keyframe request per this many ms. */
  keyFrameIntervalMs: number;
  /** How long a missing packet is waited for (the publisher's repair takes a round trip or two). */
  maxWaitMs: number;
}

/**
 * Where an RTP stream's timestamps are on a wall clock: the sender's (RTCP sender reports), or the
 * server's at arrival until one came. A sender may time its reports by when it sent (werift does)
 * rather than by when it captured (libwebrtc does): a late send says the clock is later than it
 * is. Of the reports of the last window the one that places the stream earliest is taken, so a
 * stalled sender moves nothing while the clocks' slow drift is still followed.
 */
interface TrackClock {
  anchor: SenderClock;
  source: 'sender' | 'arrival';
  reports: Array<{ report: SenderClock; atMs: number }>;
}

/** How long sender reports count towards a track's clock. */
const REPORT_WINDOW_MS = 10_000;

export class StreamFeed {
  /** `videoLayerChanged`: video now comes from another layer, whose timestamps and clock are its own (frames of the previous one held anywhere are void). */
  readonly observer = new EventEmitter<{ frame: [TrackKind, AssembledFrame]; videoLayerChanged: []; closed: [] }>();
  /** The tracks it carries that can be recorded. */
  readonly audio: boolean;
  readonly video: VideoCodecName | undefined;
  private readonly assemblers: Partial<Record<TrackKind, FrameAssembler>> = {};
  private readonly clocks: Partial<Record<TrackKind, TrackClock>> = {};
  private videoLayer = -1;
  private lastKeyFrameRequestMs = -Infinity;
  private pendingKeyFrameRequest: NodeJS.Timeout | undefined;
  private readonly releaseTimer: NodeJS.Timeout;
  private ended = false;
  /** Keyframe requests sent to the publisher. */
  keyFrameRequests = 0;

  constructor(
    private readonly tap: MediaTap,
    private readonly options: StreamFeedOptions,
  ) {
    this.audio = tap.audio;
    this.video = tap.videoCodec === 'vp8' || tap.videoCodec === 'h264' ? tap.videoCodec : undefined;
    const emit = (kind: TrackKind) => (frame: AssembledFrame) => this.observer.emit('frame', kind, frame);
    const { maxWaitMs } = options;
    if (this.audio) this.assemblers.audio = new FrameAssembler('opus', { maxWaitMs }, emit('audio'), () => undefined);
    if (this.video) this.assemblers.video = new FrameAssembler(this.video, { maxWaitMs }, emit('video'), () => this.requestKeyFrame());
    tap.observer.on('packet', (packet) => this.onPacket(packet));
    tap.observer.once('closed', () => this.close());
    this.releaseTimer = setInterval(() => {
      const now = performance.now();
      for (const assembler of Object.values(this.assemblers)) assembler.release(now);
    }, RELEASE_INTERVAL_MS);
    if (this.video) this.requestKeyFrame();
  }

  get closed(): boolean {
    return this.ended;
  }

  private onPacket(packet: TappedPacket): void {
    const assembler = this.assemblers[packet.kind];
    if (!assembler) return;
    if (packet.kind === 'video' && packet.layer !== this.videoLayer) {
      // Another layer: its own sequence numbers, timestamps and sender reports.
      const changed = this.videoLayer >= 0;
      this.videoLayer = packet.layer;
      assembler.reset();
      delete this.clocks.video;
      if (changed) this.observer.emit('videoLayerChanged');
    }
    this.updateClock(packet);
    assembler.push(packet, performance.now());
  }

  private updateClock({ kind, senderClock, timestamp }: TappedPacket): void {
    const clock = this.clocks[kind];
    if (!senderClock) {
      if (!clock) this.clocks[kind] = { anchor: { unixMs: Date.now(), rtpTimestamp: timestamp }, source: 'arrival', reports: [] };
      return;
    }
    // Per packet: the report the last one carried is nothing new (the newest is kept last).
    if (clock?.reports[clock.reports.length - 1]?.report === senderClock) return;
    const now = performance.now();
    const reports = (clock?.source === 'sender' ? clock.reports : []).filter((r) => now - r.atMs < REPORT_WINDOW_MS);
    reports.push({ report: senderClock, atMs: now });
    // Each report's placing of the newest report's timestamp: the earliest is the least delayed.
    const at = (r: SenderClock): number => r.unixMs + (((senderClock.rtpTimestamp - r.rtpTimestamp) | 0) * 1000) / CLOCK_RATE[kind];
    const anchor = reports.reduce((best, r) => (at(r.report) < at(best) ? r.report : best), senderClock);
    this.clocks[kind] = { anchor, source: 'sender', reports };
  }

  /** Where an RTP timestamp of a track is on the wall clock (Unix ms), as its latest sender report (or arrival) places it. */
  unixMsOf(kind: TrackKind, rtpTimestamp: number): number {
    const clock = this.clocks[kind];
    if (!clock) return Date.now();
    const ticks = (rtpTimestamp - clock.anchor.rtpTimestamp) | 0; // wraps: the nearest in either direction
    return clock.anchor.unixMs + (ticks * 1000) / CLOCK_RATE[kind];
  }

  /** Whether its video is of the stream's largest layer. */
  get videoOnLargestLayer(): boolean {
    return this.tap.onLargestLayer;
  }

  /** Whether a track's timing comes from the sender's reports. */
  senderTimed(kind: TrackKind): boolean {
    return this.clocks[kind]?.source === 'sender';
  }

  /** Asks the publisher for a keyframe: at once if none was asked for within the interval, else once at its end. */
  requestKeyFrame(): void {
    if (this.ended || !this.video || this.pendingKeyFrameRequest) return;
    const wait = this.lastKeyFrameRequestMs + this.options.keyFrameIntervalMs - performance.now();
    const send = (): void => {
      this.pendingKeyFrameRequest = undefined;
      this.lastKeyFrameRequestMs = performance.now();
      this.keyFrameRequests++;
      this.tap.requestKeyFrame();
    };
    if (wait <= 0) send();
    else this.pendingKeyFrameRequest = setTimeout(send, wait);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.releaseTimer);
    clearTimeout(this.pendingKeyFrameRequest);
    this.tap.close();
    this.observer.emit('closed');
  }
}
