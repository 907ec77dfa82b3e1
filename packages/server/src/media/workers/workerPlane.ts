/**
 * The media plane on every core: media workers (threads), each with its own WeriftMediaPlane and
 * its own UDP port (Node 20's sockets cannot share one), while signalling and room state stay on
 * the main thread. A publisher goes to the worker with the fewest endpoints; its subscribers and
 * taps live on its worker, fed by its fanout, so a room's streams spread over the cores with no
 * packet crossing threads on the way to players. A worker that dies is started again on its
 * ports; its endpoints move to the live workers by their clients' ICE restarts (endpointProxies).
 */
import { EventEmitter } from 'node:events';
import { RelayUnavailable, SdpError, type MediaPlane, type MediaPublisher, type MediaStats } from '../core/types.js';
import type { WeriftPlaneOptions } from '../werift/weriftPlane.js';
import { PublisherProxy, type WorkerHome } from './endpointProxies.js';
import { SummedStats, newBoard } from './statsBoard.js';
import { MediaWorker } from './workerThread.js';
import type { MediaWorkerData } from './workerProtocol.js';

export interface WorkerPlaneOptions extends Omit<WeriftPlaneOptions, 'onSocketError' | 'relay'> {
  /**
   * How many media workers (at least 1). With `udpPort` (or `tcpPort`) worker i takes that port
   * plus i; with `portRange` the range is split between them.
   */
  workers: number;
  /** How long after a worker died its replacement is started (default 100 ms; then doubling while it fails, to 10 s). */
  restartDelayMs?: number;
  /** How long an endpoint of a worker that died waits for its client's ICE restart to move it (default 15 s). */
  moveTimeoutMs?: number;
}

const MAX_RESTART_DELAY_MS = 10_000;

/** A worker's errors as the plane's callers know them. */
const errorOf = (name: string, message: string): Error =>
  name === 'SdpError' ? new SdpError(message) : name === 'RelayUnavailable' ? new RelayUnavailable(message) : new Error(message);

type PlaneOptions = MediaWorkerData['options'];

/** Slot i of `workers`: the plane's options with its own ports. */
function slotOptions(plane: PlaneOptions, workers: number, i: number): PlaneOptions {
  const offset = (port: number | undefined): number | undefined => (port ? port + i : port);
  const range = plane.portRange;
  const share = range && Math.floor((range[1] - range[0] + 1) / workers);
  return {
    ...plane,
    udpPort: offset(plane.udpPort),
    tcpPort: offset(plane.tcpPort),
    ...(range && share && { portRange: [range[0] + i * share, range[0] + (i + 1) * share - 1] }),
  };
}

export class WorkerMediaPlane implements MediaPlane {
  /** Told when a worker dies (`restarted` once its replacement runs) or cannot be started again. */
  readonly observer = new EventEmitter<{
    workerExit: [slot: number, reason: string];
    workerRestarted: [slot: number];
    workerRestartFailed: [slot: number, reason: string];
    closed: [];
  }>();
  private readonly summed: SummedStats;
  private closing = false;
  private readonly restarts = new Set<NodeJS.Timeout>();
  private readonly home: WorkerHome;

  private constructor(
    private readonly plane: PlaneOptions,
    private readonly restartDelayMs: number,
    moveTimeoutMs: number,
    /** The worker in each slot (a dead one until its replacement runs), and its stats board. */
    private readonly slots: Array<{ worker: MediaWorker; board: Float64Array }>,
  ) {
    this.summed = new SummedStats(() => slots.map((slot) => slot.board));
    slots.forEach((_, i) => this.watch(i));
    this.home = {
      isOpen: () => !this.closing,
      moveTimeoutMs,
      next: () => this.liveWorker(),
    };
  }

  static async open({ workers, restartDelayMs = 100, moveTimeoutMs = 15_000, ...plane }: WorkerPlaneOptions): Promise<WorkerMediaPlane> {
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError('workers must be a whole number ≥ 1');
    const range = plane.portRange;
    if (range && range[1] - range[0] + 1 < workers) throw new RangeError('portRange has fewer ports than workers');
    const started = await Promise.allSettled(
      Array.from({ length: workers }, async (_, i) => {
        const board = newBoard();
        return { worker: await MediaWorker.start({ options: slotOptions(plane, workers, i), board }, errorOf), board };
      }),
    );
    const slots = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(slots.map(({ worker }) => worker.stop()));
      throw failed.reason;
    }
    return new WorkerMediaPlane(plane, restartDelayMs, moveTimeoutMs, slots);
  }

  get stats(): Readonly<MediaStats> {
    return this.summed.stats;
  }

  /** Each worker's media ports, in slot order. */
  get ports(): { udp: Array<number | undefined>; tcp: Array<number | undefined> } {
    return { udp: this.slots.map(({ worker }) => worker.udpPort), tcp: this.slots.map(({ worker }) => worker.tcpPort) };
  }

  /** The endpoints open on each worker, in slot order. */
  get endpointCounts(): number[] {
    return this.slots.map(({ worker }) => (worker.running ? worker.load : 0));
  }

  get fastPathNote(): string {
    return this.slots[0]!.worker.fastPathNote;
  }

  async publish(offer: string): Promise<MediaPublisher> {
    const least = this.leastLoaded();
    if (!least) throw new Error('no media worker is running');
    return PublisherProxy.create(least, offer, this.home);
  }

  /** Ends slot's worker at once, as a crash would: its endpoints move, and a new worker takes its place. */
  stopWorker(slot: number): void {
    this.slots[slot]?.worker.kill();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.observer.emit('closed');
    for (const timer of this.restarts) clearTimeout(timer);
    await Promise.all(this.slots.map(({ worker }) => worker.stop()));
  }

  private leastLoaded(): MediaWorker | undefined {
    const running = this.slots.map(({ worker }) => worker).filter((worker) => worker.running);
    return running.length === 0 ? undefined : running.reduce((best, worker) => (worker.load < best.load ? worker : best));
  }

  /** The live worker with the fewest endpoints; with none running, the next to start (undefined if the plane closes first). */
  private async liveWorker(): Promise<MediaWorker | undefined> {
    for (;;) {
      if (this.closing) return undefined;
      const least = this.leastLoaded();
      if (least) return least;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.observer.off('workerRestarted', done);
          this.observer.off('closed', done);
          resolve();
        };
        this.observer.on('workerRestarted', done);
        this.observer.on('closed', done);
      });
    }
  }

  private watch(slot: number): void {
    this.slots[slot]!.worker.observer.once('exit', (reason) => {
      if (this.closing) return;
      this.summed.retire(this.slots[slot]!.board);
      this.slots[slot]!.board.fill(0);
      this.observer.emit('workerExit', slot, reason);
      this.restart(slot, this.restartDelayMs);
    });
  }

  private restart(slot: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      const { board } = this.slots[slot]!;
      MediaWorker.start({ options: slotOptions(this.plane, this.slots.length, slot), board }, errorOf).then(
        (worker) => {
          if (this.closing) return void worker.stop();
          this.slots[slot] = { worker, board };
          this.watch(slot);
          this.observer.emit('workerRestarted', slot);
        },
        (err: Error) => {
          if (this.closing) return;
          this.observer.emit('workerRestartFailed', slot, err.message);
          this.restart(slot, Math.min(delayMs * 2, MAX_RESTART_DELAY_MS));
        },
      );
    }, delayMs);
    this.restarts.add(timer);
  }
}
