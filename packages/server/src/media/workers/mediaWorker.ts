/**
 * A media worker: a thread with its own WeriftMediaPlane (its own UDP port, its own fast path)
 * whose endpoints the main thread drives through WorkerCommands and hears of through
 * WorkerReports. Its stats go to the shared board every STATS_COPY_MS.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WeriftMediaPlane } from '../werift/weriftPlane.js';
import type { MediaPublisher, MediaSubscriber, MediaTap } from '../core/types.js';
import type { WeriftPublisher } from '../werift/weriftPublisher.js';
import { writeBoard } from './statsBoard.js';
import type { MediaWorkerData, WorkerCommand, WorkerReport } from './workerProtocol.js';

const STATS_COPY_MS = 50;

const port = parentPort!;
const { options, board } = workerData as MediaWorkerData;
/** Set once the worker fails: nothing more is reported (its endpoints are to move, not close). */
let failing = false;
const post = (report: WorkerReport, transfer?: ArrayBuffer[]): void => {
  if (!failing) port.postMessage(report, transfer);
};
/** How long a failing worker's sockets may take to close before it ends anyway. */
const FAIL_CLOSE_MS = 1000;

const publishers = new Map<number, WeriftPublisher>();
const subscribers = new Map<number, MediaSubscriber>();
const taps = new Map<number, MediaTap>();
const endpointOf = (id: number): MediaPublisher | MediaSubscriber | undefined => publishers.get(id) ?? subscribers.get(id);

function watch(id: number, endpoint: MediaPublisher | MediaSubscriber): void {
  endpoint.observer.on('connected', () => post({ op: 'endpoint', endpoint: id, event: 'connected' }));
  endpoint.observer.on('stalled', () => post({ op: 'endpoint', endpoint: id, event: 'stalled' }));
  endpoint.observer.once('closed', () => {
    publishers.delete(id);
    subscribers.delete(id);
    post({ op: 'endpoint', endpoint: id, event: 'closed' });
  });
}

function tap(publisherId: number, id: number): void {
  const publisher = publishers.get(publisherId);
  if (!publisher) return void post({ op: 'tapClosed', tap: id });
  const tap = publisher.tap();
  if (tap.closed) return void post({ op: 'tapClosed', tap: id });
  taps.set(id, tap);
  tap.observer.on('packet', (packet) => {
    // A copy of the payload alone: a view's whole buffer (the datagram, or a pool) would be cloned with it.
    const payload = Buffer.from(packet.payload);
    post({ op: 'tapped', tap: id, packet: { ...packet, payload }, onLargestLayer: tap.onLargestLayer }, [payload.buffer as ArrayBuffer]);
  });
  tap.observer.once('closed', () => {
    taps.delete(id);
    post({ op: 'tapClosed', tap: id });
  });
}

/** Runs a command that answers SDP, reporting its answer or why it was refused. */
async function answer(
  request: number,
  run: () => Promise<Omit<Extract<WorkerReport, { op: 'answered' }>, 'op' | 'request'>>,
): Promise<void> {
  try {
    post({ op: 'answered', request, ...(await run()) });
  } catch (err) {
    const { name, message } = err instanceof Error ? err : new Error(String(err));
    post({ op: 'refused', request, name, message });
  }
}

async function handle(plane: WeriftMediaPlane, command: WorkerCommand): Promise<void> {
  switch (command.op) {
    case 'publish':
      return answer(command.request, async () => {
        const publisher = await plane.publish(command.offer, command.layerSsrcs);
        publishers.set(command.endpoint, publisher);
        publisher.onLayerSsrcs = (layers) => post({ op: 'layerSsrcs', endpoint: command.endpoint, layers });
        watch(command.endpoint, publisher);
        publisher.observer.on('activeLayers', (active) => post({ op: 'activeLayers', endpoint: command.endpoint, active }));
        publisher.observer.on('layerCaps', (maxBitrates) => post({ op: 'layerCaps', endpoint: command.endpoint, maxBitrates }));
        return { answer: publisher.answer, closed: publisher.closed, tapFormat: publisher.tapFormat };
      });
    case 'subscribe':
      return answer(command.request, async () => {
        const publisher = publishers.get(command.publisher);
        // Its publisher closed meanwhile: as a closed publisher's subscribe() would, the subscriber is closed at once.
        if (!publisher) return { answer: '', closed: true };
        const subscriber = await publisher.subscribe(command.offer, command.video);
        if (!subscriber.closed) {
          subscribers.set(command.endpoint, subscriber);
          watch(command.endpoint, subscriber);
        }
        return { answer: subscriber.answer, closed: subscriber.closed };
      });
    case 'restartIce':
      return answer(command.request, async () => {
        const endpoint = endpointOf(command.endpoint);
        if (!endpoint) throw new Error('the endpoint is closed');
        return { answer: await endpoint.restartIce(command.offer), closed: endpoint.closed };
      });
    case 'addCandidates':
      return endpointOf(command.endpoint)?.addRemoteCandidates(command.candidates);
    case 'setMediaDue':
      return publishers.get(command.endpoint)?.setMediaDue(command.due);
    case 'setVideo':
      return subscribers.get(command.endpoint)?.setVideo(command.video);
    case 'setMuted':
      return subscribers.get(command.endpoint)?.setMuted(command.muted);
    case 'readLink': {
      const endpoint = endpointOf(command.endpoint);
      return endpoint && post({ op: 'link', endpoint: command.endpoint, quality: endpoint.linkQuality() });
    }
    case 'readLevel': {
      const publisher = publishers.get(command.endpoint);
      return publisher && post({ op: 'level', endpoint: command.endpoint, level: publisher.speechLevel() });
    }
    case 'close':
      return endpointOf(command.endpoint)?.close();
    case 'tap':
      return tap(command.publisher, command.tap);
    case 'tapKeyFrame':
      return taps.get(command.tap)?.requestKeyFrame();
    case 'tapClose':
      return taps.get(command.tap)?.close();
    case 'fail':
      return fail(plane);
    case 'shutdown':
      clearInterval(statsCopy);
      await plane.close();
      writeBoard(plane.stats, board);
      return post({ op: 'shutDown' });
  }
}

/**
 * Ends the worker as a failure does, with its sockets closed first and nothing more reported: Node
 * 20 aborts the whole process when a thread ends while a UDP receive is under way (a fatal
 * FromJust in UDPWrap::OnRecv on the ending isolate), so a worker never ends with its sockets open.
 */
function fail(plane: WeriftMediaPlane): void {
  if (failing) return;
  failing = true;
  clearInterval(statsCopy);
  setTimeout(() => process.exit(1), FAIL_CLOSE_MS).unref();
  void plane.close().finally(() => process.exit(1));
}

let statsCopy: NodeJS.Timeout | undefined;
try {
  const plane = await WeriftMediaPlane.open(options);
  // A fault outside a command's handling leaves the worker in doubt: it fails, and its endpoints move.
  process.on('uncaughtException', () => fail(plane));
  process.on('unhandledRejection', () => fail(plane));
  statsCopy = setInterval(() => writeBoard(plane.stats, board), STATS_COPY_MS);
  // A command that throws concerns its endpoint alone (requests answer `refused`): the worker carries on.
  port.on('message', (command: WorkerCommand) => void handle(plane, command).catch(() => undefined));
  post({ op: 'ready', udpPort: plane.sockets.udpPort, tcpPort: plane.sockets.tcpPort, fastPathNote: plane.fastPathNote });
} catch (err) {
  post({ op: 'failed', message: err instanceof Error ? err.message : String(err) });
  port.close();
}
