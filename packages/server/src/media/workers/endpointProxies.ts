/**
 * The media plane's endpoints and taps as the main thread holds them while they live on a media
 * worker: each forwards its calls to its worker and keeps what the worker last reported, so its
 * synchronous reads (connected, linkQuality, speechLevel) need no round trip. Those readings lag
 * one call: a call returns what the worker measured at the previous one, and asks for the next.
 * When the worker is gone, every proxy on it closes.
 */
import { EventEmitter } from 'node:events';
import type {
  EndpointEvents,
  LinkQuality,
  MediaEndpoint,
  MediaPublisher,
  MediaSubscriber,
  MediaTap,
  PlayMuted,
  PlayVideo,
  PublisherEvents,
  SenderClock,
  TappedPacket,
} from '../core/types.js';
import { parseRemoteCandidates } from '../werift/weriftPeer.js';
import type { Answered, MediaWorker } from './workerThread.js';
import type { TapFormat, WorkerReport } from './workerProtocol.js';

class EndpointProxy<Events extends EndpointEvents & Record<keyof Events, unknown[]>> implements MediaEndpoint<Events> {
  readonly observer = new EventEmitter<Events>();
  readonly answer: string;
  private state: 'new' | 'connected' | 'closed' = 'new';
  private quality: LinkQuality = { lossFraction: undefined, rttMs: undefined };

  constructor(
    protected readonly worker: MediaWorker,
    protected readonly id: number,
    answered: Answered,
  ) {
    this.answer = answered.answer;
    if (answered.closed) this.state = 'closed';
    else worker.listen('endpoint', id, (report) => (report ? this.onReport(report) : this.ended()));
  }

  private get events(): EventEmitter<EndpointEvents> {
    return this.observer as unknown as EventEmitter<EndpointEvents>;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  linkQuality(): LinkQuality {
    if (!this.closed) this.worker.send({ op: 'readLink', endpoint: this.id });
    return this.quality;
  }

  async restartIce(offer: string): Promise<string> {
    return (await this.worker.request({ op: 'restartIce', endpoint: this.id, offer })).answer;
  }

  addRemoteCandidates(candidates: readonly string[]): void {
    parseRemoteCandidates(candidates); // throws SdpError here, as the endpoint itself would
    if (!this.closed) this.worker.send({ op: 'addCandidates', endpoint: this.id, candidates });
  }

  close(): void {
    if (this.closed) return;
    this.worker.send({ op: 'close', endpoint: this.id });
    this.ended();
  }

  protected onReport(report: WorkerReport): void {
    if (report.op === 'link') this.quality = report.quality;
    if (report.op !== 'endpoint' || this.closed) return;
    if (report.event === 'closed') return this.ended();
    if (report.event === 'connected') this.state = 'connected';
    this.events.emit(report.event);
  }

  private ended(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.worker.forget('endpoint', this.id);
    this.events.emit('closed');
  }
}

export class PublisherProxy extends EndpointProxy<PublisherEvents> implements MediaPublisher {
  private level = 0;

  constructor(
    worker: MediaWorker,
    id: number,
    answered: Answered,
    private readonly format: TapFormat,
  ) {
    super(worker, id, answered);
  }

  /** Publishes `offer` on `worker`; rejects as the worker's plane refused it. */
  static async create(worker: MediaWorker, offer: string): Promise<PublisherProxy> {
    const id = worker.newId();
    const answered = await worker.request({ op: 'publish', endpoint: id, offer });
    return new PublisherProxy(worker, id, answered, answered.tapFormat ?? { audio: false, videoCodec: undefined });
  }

  speechLevel(): number {
    if (!this.closed) this.worker.send({ op: 'readLevel', endpoint: this.id });
    return this.level;
  }

  /** On the publisher's worker, whose fanout feeds it. */
  async subscribe(offer: string, video?: PlayVideo): Promise<MediaSubscriber> {
    const id = this.worker.newId();
    const answered = await this.worker.request({ op: 'subscribe', endpoint: id, publisher: this.id, offer, video });
    return new SubscriberProxy(this.worker, id, answered);
  }

  tap(): MediaTap {
    return new TapProxy(this.worker, this.id, this.format, this.closed);
  }

  setMediaDue(due: boolean): void {
    this.worker.send({ op: 'setMediaDue', endpoint: this.id, due });
  }

  protected override onReport(report: WorkerReport): void {
    if (report.op === 'level') this.level = report.level;
    else if (report.op === 'activeLayers' && !this.closed) this.observer.emit('activeLayers', report.active);
    else if (report.op === 'layerCaps' && !this.closed) this.observer.emit('layerCaps', report.maxBitrates);
    else super.onReport(report);
  }
}

class SubscriberProxy extends EndpointProxy<EndpointEvents> implements MediaSubscriber {
  setVideo(video: PlayVideo): void {
    this.worker.send({ op: 'setVideo', endpoint: this.id, video });
  }

  setMuted(muted: PlayMuted): void {
    this.worker.send({ op: 'setMuted', endpoint: this.id, muted });
  }
}

class TapProxy implements MediaTap {
  readonly observer = new EventEmitter<{ packet: [TappedPacket]; closed: [] }>();
  readonly audio: boolean;
  readonly videoCodec: MediaTap['videoCodec'];
  onLargestLayer = false;
  private ended = false;
  private readonly id: number;
  private readonly senderClocks: Partial<Record<TappedPacket['kind'], SenderClock>> = {};

  constructor(
    private readonly worker: MediaWorker,
    publisher: number,
    format: TapFormat,
    publisherClosed: boolean,
  ) {
    ({ audio: this.audio, videoCodec: this.videoCodec } = format);
    this.id = worker.newId();
    if (publisherClosed) {
      this.ended = true;
      return;
    }
    worker.listen('tap', this.id, (report) => {
      if (report?.op === 'tapped') {
        this.onLargestLayer = report.onLargestLayer;
        const { payload, senderClock, kind } = report.packet;
        // The same report as the packet before carried is the same object, as in the worker (a feed keeps only new ones).
        const last = this.senderClocks[kind];
        const clock =
          senderClock && last?.unixMs === senderClock.unixMs && last.rtpTimestamp === senderClock.rtpTimestamp ? last : senderClock;
        this.senderClocks[kind] = clock;
        const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
        this.observer.emit('packet', { ...report.packet, payload: bytes, senderClock: clock });
      } else if (!report || report.op === 'tapClosed') this.end();
    });
    worker.send({ op: 'tap', publisher, tap: this.id });
  }

  get closed(): boolean {
    return this.ended;
  }

  requestKeyFrame(): void {
    if (!this.ended) this.worker.send({ op: 'tapKeyFrame', tap: this.id });
  }

  close(): void {
    if (this.ended) return;
    this.worker.send({ op: 'tapClose', tap: this.id });
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.worker.forget('tap', this.id);
    this.observer.emit('closed');
  }
}
