/**
 * The main thread's side of one media worker: starts the thread, sends its commands, matches its
 * answers to their requests, and hands each report to the endpoint or tap it names. When the
 * thread ends (stopped, or dead of an error), every pending request is rejected, every listener
 * hears `undefined` once, and `exit` is emitted.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { MediaWorkerData, WorkerCommand, WorkerReport } from './workerProtocol.js';

export type Answered = Extract<WorkerReport, { op: 'answered' }>;
type Request = Extract<WorkerCommand, { request: number }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A report for one endpoint or tap; `undefined` when its worker is gone. */
export type Listener = (report: WorkerReport | undefined) => void;

/** Under tsx (the server's own tests) the worker runs from source too; built, from dist. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const SCRIPT = new URL(FROM_SOURCE ? './mediaWorker.ts' : './mediaWorker.js', import.meta.url);
/** How long a stopping worker may take to close its peer connections before it is ended. */
const SHUTDOWN_TIMEOUT_MS = 5_000;

/** An error a worker refused a request with, as the plane's callers know it (SdpError, RelayUnavailable …). */
export type ErrorOf = (name: string, message: string) => Error;

export class MediaWorker {
  readonly observer = new EventEmitter<{ exit: [reason: string] }>();
  private readonly pending = new Map<number, { resolve(answered: Answered): void; reject(err: Error): void }>();
  private readonly endpoints = new Map<number, Listener>();
  private readonly taps = new Map<number, Listener>();
  private nextId = 1;
  private state: 'running' | 'stopping' | 'gone' = 'running';

  private constructor(
    private readonly thread: Worker,
    readonly udpPort: number | undefined,
    readonly tcpPort: number | undefined,
    readonly fastPathNote: string,
    private readonly errorOf: ErrorOf,
  ) {
    thread.on('message', (report: WorkerReport) => this.onReport(report));
    thread.once('error', (err) => this.gone(`failed: ${err.message}`));
    thread.once('exit', (code) => this.gone(`exited with code ${code}`));
  }

  /** Starts a worker and waits until its sockets are open; rejects with why they are not. */
  static start(data: MediaWorkerData, errorOf: ErrorOf): Promise<MediaWorker> {
    const thread = FROM_SOURCE
      ? // Node 20 does not hand a thread the loader hooks --import set up: the worker registers tsx's itself.
        new Worker(`import('tsx/esm/api').then(({ register }) => (register(), import(${JSON.stringify(SCRIPT.href)})));`, {
          eval: true,
          workerData: data,
        })
      : new Worker(SCRIPT, { workerData: data });
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => {
        thread.off('message', onReady);
        void thread.terminate();
        reject(err);
      };
      const onReady = (report: WorkerReport): void => {
        if (report.op === 'failed') return fail(new Error(report.message));
        if (report.op !== 'ready') return;
        thread.off('message', onReady);
        thread.off('error', fail);
        resolve(new MediaWorker(thread, report.udpPort, report.tcpPort, report.fastPathNote, errorOf));
      };
      thread.on('message', onReady);
      thread.once('error', fail);
    });
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** Endpoints open on it: what placement weighs. */
  get load(): number {
    return this.endpoints.size;
  }

  /** A name for a new endpoint or tap, unique on this worker. */
  newId(): number {
    return this.nextId++;
  }

  send(command: WorkerCommand): void {
    if (this.state === 'running') this.thread.postMessage(command);
  }

  /** Sends a command that answers SDP; rejects with the worker's error, or if the worker is gone first. */
  request(command: DistributiveOmit<Request, 'request'>): Promise<Answered> {
    if (this.state !== 'running') return Promise.reject(new Error('the media worker is gone'));
    const request = this.newId();
    return new Promise((resolve, reject) => {
      this.pending.set(request, { resolve, reject });
      this.thread.postMessage({ ...command, request });
    });
  }

  /**
   * Hands the reports for endpoint `id` to `listener` until it is closed. The one to register is
   * the endpoint's proxy, as its request is answered: ports deliver one message at a time, with the
   * promise reactions of one run before the next, so none of its reports comes before it.
   */
  listen(kind: 'endpoint' | 'tap', id: number, listener: Listener): void {
    if (this.state === 'gone') return listener(undefined);
    (kind === 'endpoint' ? this.endpoints : this.taps).set(id, listener);
  }

  forget(kind: 'endpoint' | 'tap', id: number): void {
    (kind === 'endpoint' ? this.endpoints : this.taps).delete(id);
  }

  /** Closes its peer connections and ends the thread (at the latest after SHUTDOWN_TIMEOUT_MS). */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    const shutDown = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS);
      this.thread.on('message', (report: WorkerReport) => report.op === 'shutDown' && (clearTimeout(timer), resolve()));
    });
    this.thread.postMessage({ op: 'shutdown' } satisfies WorkerCommand);
    await shutDown;
    await this.thread.terminate();
  }

  /** Ends the thread as a failure would, its peer connections with it (see WorkerMediaPlane.stopWorker). */
  kill(): void {
    if (this.state === 'running') this.thread.postMessage({ op: 'fail' } satisfies WorkerCommand);
  }

  private onReport(report: WorkerReport): void {
    switch (report.op) {
      case 'answered':
      case 'refused': {
        const pending = this.pending.get(report.request);
        this.pending.delete(report.request);
        if (report.op === 'answered') pending?.resolve(report);
        else pending?.reject(this.errorOf(report.name, report.message));
        return;
      }
      case 'endpoint':
      case 'activeLayers':
      case 'layerCaps':
      case 'layerSsrcs':
      case 'link':
      case 'level':
        return this.endpoints.get(report.endpoint)?.(report);
      case 'tapped':
      case 'tapClosed':
        return this.taps.get(report.tap)?.(report);
      default:
        return;
    }
  }

  private gone(reason: string): void {
    if (this.state === 'gone') return;
    this.state = 'gone';
    for (const { reject } of this.pending.values()) reject(new Error(`the media worker ${reason}`));
    this.pending.clear();
    for (const listeners of [this.endpoints, this.taps]) {
      const all = [...listeners.values()];
      listeners.clear();
      for (const listener of all) listener(undefined);
    }
    this.observer.emit('exit', reason);
  }
}
