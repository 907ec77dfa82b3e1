/**
 * The media plane's endpoints and taps as the main thread holds them while they live on a media
 * worker: each forwards its calls to its worker and keeps what the worker last reported, so its
 * synchronous reads (connected, linkQuality, speechLevel) need no round trip. Those readings lag
 * one call: a call returns what the worker measured at the previous one, and asks for the next.
 *
 * When a worker dies, its endpoints move: each emits `moved` (the client restarts ICE at once) and
 * waits for that restart's offer, which opens it anew on a live worker — a publisher on the one
 * with the fewest endpoints, its subscribers on their publisher's. The new peer connection has the
 * new worker's DTLS certificate, so the client makes a new DTLS association on the same transport
 * (as browsers do when a renegotiation changes the fingerprint). An endpoint whose restart does
 * not come in time closes. Taps end with their worker.
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
import type { LayerSsrcs } from '../werift/weriftPublisher.js';
import type { TapFormat, WorkerReport } from './workerProtocol.js';

/** Where moved endpoints go (WorkerMediaPlane). */
export interface WorkerHome {
  /** False once the plane closes: endpoints then close with their worker. */
  isOpen(): boolean;
  /** How long a moved endpoint waits for its client's ICE restart before it closes. */
  readonly moveTimeoutMs: number;
  /** The live worker with the fewest endpoints, once one runs; undefined if the plane closes first. */
  next(): Promise<MediaWorker | undefined>;
}

/** Where an endpoint lives now. */
interface Placement {
  worker: MediaWorker;
  id: number;
}

type Opened = Placement & { answered: Answered };

/** Publishes `offer` on `worker` (`layerSsrcs`: a moved publisher's, as its earlier worker learned them). */
async function openPublisher(worker: MediaWorker, offer: string, layerSsrcs?: LayerSsrcs[]): Promise<Opened> {
  const id = worker.newId();
  return { worker, id, answered: await worker.request({ op: 'publish', endpoint: id, offer, layerSsrcs }) };
}

/** Plays the publisher at `publisher` with `offer`, on its worker. */
async function openSubscriber(publisher: Placement, offer: string, video: PlayVideo | undefined): Promise<Opened> {
  const { worker } = publisher;
  const id = worker.newId();
  return { worker, id, answered: await worker.request({ op: 'subscribe', endpoint: id, publisher: publisher.id, offer, video }) };
}

type ProxyState =
  | { kind: 'new' | 'connected' }
  /** Its worker died: waiting for the client's restart offer (`opening` while it is being answered). */
  | { kind: 'moving'; deadline: NodeJS.Timeout; opening?: Promise<string> }
  | { kind: 'closed' };

abstract class EndpointProxy<Events extends EndpointEvents & Record<keyof Events, unknown[]>> implements MediaEndpoint<Events> {
  readonly observer = new EventEmitter<Events>();
  readonly answer: string;
  protected state: ProxyState = { kind: 'new' };
  protected worker: MediaWorker;
  protected id: number;
  private quality: LinkQuality = { lossFraction: undefined, rttMs: undefined };
  /** The restart offer that moved it, and its answer, until it connects: the same offer again (a lost reply) gets the same answer. */
  private move: { offer: string; answer: string } | undefined;

  constructor(
    { worker, id }: Placement,
    answered: Answered,
    protected readonly home: WorkerHome,
  ) {
    this.answer = answered.answer;
    this.worker = worker;
    this.id = id;
    this.attach(answered);
  }

  protected get events(): EventEmitter<EndpointEvents> {
    return this.observer as unknown as EventEmitter<EndpointEvents>;
  }

  get closed(): boolean {
    return this.state.kind === 'closed';
  }

  /** A moved endpoint counts: it was, and waits for the ICE restart that connects it again. */
  get connected(): boolean {
    return this.state.kind === 'connected' || this.state.kind === 'moving';
  }

  /** On a running worker (not moving, not closed): commands reach it. */
  protected get placed(): boolean {
    return this.state.kind === 'new' || this.state.kind === 'connected';
  }

  linkQuality(): LinkQuality {
    if (this.placed) this.worker.send({ op: 'readLink', endpoint: this.id });
    return this.quality;
  }

  async restartIce(offer: string): Promise<string> {
    const { state } = this;
    if (this.move?.offer === offer) return this.move.answer;
    if (state.kind !== 'moving') return (await this.worker.request({ op: 'restartIce', endpoint: this.id, offer })).answer;
    if (!state.opening) {
      state.opening = this.reopen(state, offer);
      return state.opening;
    }
    // A later round's offer: once the first is answered, it restarts the new endpoint's ICE.
    await state.opening.catch(() => undefined);
    return this.restartIce(offer);
  }

  addRemoteCandidates(candidates: readonly string[]): void {
    parseRemoteCandidates(candidates); // throws SdpError here, as the endpoint itself would
    if (this.placed) this.worker.send({ op: 'addCandidates', endpoint: this.id, candidates });
  }

  close(): void {
    if (this.closed) return;
    if (this.placed) this.worker.send({ op: 'close', endpoint: this.id });
    this.ended();
  }

  /** Opens a moved endpoint on a live worker with the restart's offer; undefined when it cannot (its plane or publisher closed). */
  protected abstract openAnew(offer: string): Promise<Opened | undefined>;
  /** Opened on its new worker: what it was told before is told again. */
  protected reopened(): void {}

  protected onReport(report: WorkerReport): void {
    if (report.op === 'link') this.quality = report.quality;
    if (report.op !== 'endpoint' || !this.placed) return;
    if (report.event === 'closed') return this.ended();
    if (report.event === 'connected') {
      this.state = { kind: 'connected' };
      this.move = undefined;
    }
    this.events.emit(report.event);
  }

  protected ended(): void {
    const { state } = this;
    if (state.kind === 'closed') return;
    if (state.kind === 'moving') clearTimeout(state.deadline);
    this.state = { kind: 'closed' };
    this.worker.forget('endpoint', this.id);
    this.events.emit('closed');
  }

  private attach(answered: Answered): void {
    if (answered.closed) return this.ended();
    this.worker.listen('endpoint', this.id, (report) => (report ? this.onReport(report) : this.lost()));
  }

  /** Its worker is gone: it moves, unless it never connected (there is no ICE to restart) or the plane is closing. */
  private lost(): void {
    if (this.state.kind !== 'connected' || !this.home.isOpen()) return this.ended();
    const deadline = setTimeout(() => this.ended(), this.home.moveTimeoutMs).unref();
    this.state = { kind: 'moving', deadline };
    this.events.emit('moved');
  }

  /** Opens the endpoint again on a live worker with the client's restart offer; the answer carries that worker's fingerprint. */
  private async reopen(moving: ProxyState & { kind: 'moving' }, offer: string): Promise<string> {
    const opened = await this.openAnew(offer).catch((err: Error) => {
      // Refused (a bad offer) or the new worker died too: the endpoint ends, and the client negotiates anew.
      this.ended();
      throw err;
    });
    if (!opened) {
      this.ended();
      throw new Error('the media of this endpoint cannot move: its media plane or publisher closed');
    }
    const { worker, id, answered } = opened;
    if (this.state !== moving) {
      worker.send({ op: 'close', endpoint: id });
      throw new Error('the endpoint closed while it moved');
    }
    clearTimeout(moving.deadline);
    this.state = { kind: 'new' };
    this.worker = worker;
    this.id = id;
    this.move = { offer, answer: answered.answer };
    this.attach(answered);
    if (this.placed) this.reopened();
    return answered.answer;
  }
}

export class PublisherProxy extends EndpointProxy<PublisherEvents> implements MediaPublisher {
  private level = 0;
  private mediaDue: boolean | undefined;
  private layerSsrcs: LayerSsrcs[] | undefined;
  /** Its players: a moving one has no worker to close it when the publisher closes. */
  private readonly subscribers = new Set<SubscriberProxy>();
  /** Subscribers waiting for it to be placed again after a move. */
  private readonly awaitingPlacement: Array<(placement: Placement | undefined) => void> = [];

  private constructor(
    placement: Placement,
    answered: Answered,
    home: WorkerHome,
    private readonly format: TapFormat,
  ) {
    super(placement, answered, home);
  }

  /** Publishes `offer` on `worker`; rejects as the worker's plane refused it. */
  static async create(worker: MediaWorker, offer: string, home: WorkerHome): Promise<PublisherProxy> {
    const opened = await openPublisher(worker, offer);
    return new PublisherProxy(opened, opened.answered, home, opened.answered.tapFormat ?? { audio: false, videoCodec: undefined });
  }

  speechLevel(): number {
    if (this.placed) this.worker.send({ op: 'readLevel', endpoint: this.id });
    return this.level;
  }

  /** On the publisher's worker, whose fanout feeds it. */
  async subscribe(offer: string, video?: PlayVideo): Promise<MediaSubscriber> {
    const placement = await this.placement();
    if (!placement) throw new Error('the publisher closed');
    const opened = await openSubscriber(placement, offer, video);
    const subscriber = new SubscriberProxy(opened, opened.answered, this.home, this, video);
    if (!subscriber.closed) {
      this.subscribers.add(subscriber);
      subscriber.observer.once('closed', () => this.subscribers.delete(subscriber));
    }
    return subscriber;
  }

  tap(): MediaTap {
    return new TapProxy(this.worker, this.id, this.format, !this.placed);
  }

  setMediaDue(due: boolean): void {
    this.mediaDue = due;
    if (this.placed) this.worker.send({ op: 'setMediaDue', endpoint: this.id, due });
  }

  /** Where it lives, once it does again after a move; undefined when it closed. */
  placement(): Promise<Placement | undefined> {
    if (this.placed) return Promise.resolve({ worker: this.worker, id: this.id });
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.awaitingPlacement.push(resolve));
  }

  protected async openAnew(offer: string): Promise<Opened | undefined> {
    const worker = await this.home.next();
    return worker && openPublisher(worker, offer, this.layerSsrcs);
  }

  protected override reopened(): void {
    if (this.mediaDue !== undefined) this.setMediaDue(this.mediaDue);
    this.settleWaiters();
  }

  protected override ended(): void {
    super.ended();
    this.settleWaiters();
    for (const subscriber of this.subscribers) subscriber.publisherClosed();
  }

  protected override onReport(report: WorkerReport): void {
    if (report.op === 'level') this.level = report.level;
    else if (report.op === 'layerSsrcs') this.layerSsrcs = report.layers;
    else if (report.op === 'activeLayers' && !this.closed) this.observer.emit('activeLayers', report.active);
    else if (report.op === 'layerCaps' && !this.closed) this.observer.emit('layerCaps', report.maxBitrates);
    else super.onReport(report);
  }

  private settleWaiters(): void {
    const placement = this.placed ? { worker: this.worker, id: this.id } : undefined;
    for (const resolve of this.awaitingPlacement.splice(0)) resolve(placement);
  }
}

class SubscriberProxy extends EndpointProxy<EndpointEvents> implements MediaSubscriber {
  private muted: PlayMuted | undefined;

  constructor(
    placement: Placement,
    answered: Answered,
    home: WorkerHome,
    private readonly publisher: PublisherProxy,
    private video: PlayVideo | undefined,
  ) {
    super(placement, answered, home);
  }

  /** On a worker its publisher's closing closes it; moving, it has no worker to do that. */
  publisherClosed(): void {
    if (this.state.kind === 'moving') this.ended();
  }

  setVideo(video: PlayVideo): void {
    this.video = video;
    if (this.placed) this.worker.send({ op: 'setVideo', endpoint: this.id, video });
  }

  setMuted(muted: PlayMuted): void {
    this.muted = muted;
    if (this.placed) this.worker.send({ op: 'setMuted', endpoint: this.id, muted });
  }

  protected async openAnew(offer: string): Promise<Opened | undefined> {
    const publisher = await this.publisher.placement();
    return publisher && openSubscriber(publisher, offer, this.video);
  }

  protected override reopened(): void {
    if (this.muted) this.setMuted(this.muted);
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
