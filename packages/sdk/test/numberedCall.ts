/**
 * A call whose every video frame carries its number (in 4 bytes after the fixture's frame), so
 * that what the player gets can be checked frame by frame against what was sent: byte for byte,
 * in order, on time. For the forged-traffic test and the soak bench, with the flood they send
 * from the call's own addresses (see the test kit's forgery and spoof).
 */
import { PlayerState, PublisherState, VideoBufferType, type ParleyEngine } from '@parley/sdk';
import { forgedDatagrams, SpoofingSocket, trackConnections, udpFlowsTo } from '@parley/testkit';
import { audioFixture, sleep, startTestServer, videoFixture, type TestClient, type TestServer } from './helpers.js';

const KEYFRAME_INTERVAL = 30;
export const LOOPBACK = '127.0.0.1';

/** Room and media state changes, not the media reports (quality, levels, keyframe requests) that come all the time. */
const CHANGES =
  /^(roomStateChanged|roomUserUpdate|roomStreamUpdate|publisherStateUpdate|playerStateUpdate|roomStreamExtraInfoUpdate|remote\w+StateUpdate)$/;

export interface FrameCheck {
  /** Frames sent in the window. */
  frames: number;
  missing: number[];
  altered: number[];
  /** Later than the on-time limit, or missing. */
  late: number;
  inOrder: boolean;
  /** Send to render, ms, sorted (missing ones as Infinity). */
  delays: number[];
}

export interface NumberedCall {
  pub: TestClient;
  player: TestClient;
  /** The UDP ports the publisher's and the player's media come from, as the server sees them. */
  publisherPort: number;
  playerPort: number;
  /** What the publisher sent and the player got of the frames sent between `fromMs` and `toMs`. */
  check(fromMs: number, toMs: number, onTimeMs: number): FrameCheck;
  /** A mark in both clients' events; what it returns lists the state and room changes either has seen since. */
  mark(): () => string[];
  stop(): void;
}

export interface NumberedFrames {
  /** By number: the frame sent, and when. */
  sent: Map<number, { data: Uint8Array; atMs: number }>;
  stop(): void;
}

/** Sends the fixtures at 30 fps (each frame ending in its number) and 50 audio packets a second. */
export function publishNumberedFrames(engine: ParleyEngine): NumberedFrames {
  const sent = new Map<number, { data: Uint8Array; atMs: number }>();
  let number = 0;
  let fixtureFrame = 0;
  const started = Date.now();
  const onKeyFrameRequest = (): void => {
    fixtureFrame = Math.ceil(fixtureFrame / KEYFRAME_INTERVAL) * KEYFRAME_INTERVAL;
  };
  engine.on('customVideoCaptureKeyFrameRequested', onKeyFrameRequest);
  const video = setInterval(() => {
    const { data } = videoFixture.frames[fixtureFrame % videoFixture.frames.length]!;
    const numbered = new Uint8Array(data.length + 4);
    numbered.set(data);
    new DataView(numbered.buffer).setUint32(data.length, number);
    sent.set(number, { data: numbered, atMs: Date.now() });
    engine.sendCustomVideoCaptureEncodedData(
      numbered,
      { codec: 'vp8', isKeyFrame: fixtureFrame % KEYFRAME_INTERVAL === 0, width: videoFixture.width, height: videoFixture.height },
      Date.now() - started,
    );
    number++;
    fixtureFrame++;
  }, 1000 / 30);
  let packet = 0;
  const audio = setInterval(() => {
    engine.sendCustomAudioCaptureEncodedData(audioFixture[packet++ % audioFixture.length]!, { codec: 'opus' }, Date.now() - started);
  }, 20);
  return {
    sent,
    stop() {
      clearInterval(video);
      clearInterval(audio);
      engine.off('customVideoCaptureKeyFrameRequested', onKeyFrameRequest);
    },
  };
}

export type ReceivedFrames = Array<{ number: number; data: Uint8Array; atMs: number }>;

/** Collects the numbered frames the engine's players render, as they come. */
export function receiveNumberedFrames(engine: ParleyEngine): ReceivedFrames {
  const received: ReceivedFrames = [];
  engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
  engine.setCustomVideoRenderHandler({
    onRemoteVideoFrameEncodedDataReceived: (data) => {
      const number = new DataView(data.buffer, data.byteOffset).getUint32(data.length - 4);
      received.push({ number, data: data.slice(), atMs: Date.now() });
    },
  });
  return received;
}

/** What a player got of the frames sent between `fromMs` and `toMs`. */
export function checkFrames(
  published: NumberedFrames,
  received: ReceivedFrames,
  fromMs: number,
  toMs: number,
  onTimeMs: number,
): FrameCheck {
  const window = [...published.sent].filter(([, { atMs }]) => atMs >= fromMs && atMs <= toMs);
  const got = new Map(received.map((frame) => [frame.number, frame]));
  const delays = window.map(([number, { atMs }]) => (got.get(number)?.atMs ?? Infinity) - atMs).sort((a, b) => a - b);
  const order = received.map((frame) => frame.number);
  return {
    frames: window.length,
    missing: window.filter(([number]) => !got.has(number)).map(([number]) => number),
    altered: window
      .filter(([number, { data }]) => {
        const frame = got.get(number);
        return frame !== undefined && Buffer.compare(Buffer.from(frame.data), Buffer.from(data)) !== 0;
      })
      .map(([number]) => number),
    late: delays.filter((delay) => delay > onTimeMs).length,
    inOrder: order.every((number, i) => i === 0 || number > order[i - 1]!),
    delays,
  };
}

/**
 * The flow in use of a peer connection that started since `known`: of the new flows from `host`
 * to its media port (its candidates' checks among them), the one that has carried the most
 * (connection tracking must be on: see trackConnections).
 */
async function newFlow(host: string, mediaPort: number, known: number[]): Promise<number> {
  await sleep(1500);
  const fresh = udpFlowsTo(host, mediaPort).filter((flow) => !known.includes(flow.port));
  if (fresh.length === 0) throw new Error('no new flow to the media port');
  return fresh.reduce((busiest, flow) => (flow.packets > busiest.packets ? flow : busiest)).port;
}

/** `client()` makes a client of the server whose media port is `host:mediaPort`; both log in to `roomID`. */
export async function numberedCall(client: () => TestClient, host: string, mediaPort: number, roomID: string): Promise<NumberedCall> {
  const [pub, player] = [client(), client()];
  if ((await pub.login(roomID, 'pub')) !== 0 || (await player.login(roomID, 'viewer')) !== 0) throw new Error('call login failed');
  const streamID = `s-${roomID}`;
  pub.engine.startPublishingStream(streamID);
  await pub.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  const publisherPort = await newFlow(host, mediaPort, []);
  const publishing = publishNumberedFrames(pub.engine);

  const received = receiveNumberedFrames(player.engine);
  player.engine.startPlayingStream(streamID);
  await player.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
  const playerPort = await newFlow(host, mediaPort, [publisherPort]);
  await player.waitFor('playerRecvVideoFirstFrame');

  return {
    pub,
    player,
    publisherPort,
    playerPort,
    check: (fromMs, toMs, onTimeMs) => checkFrames(publishing, received, fromMs, toMs, onTimeMs),
    mark() {
      const from = [pub.events.length, player.events.length] as const;
      return () =>
        [pub, player].flatMap((c, i) =>
          c.events
            .slice(from[i])
            .filter((e) => CHANGES.test(e.event))
            .map((e) => `${i === 0 ? 'publisher' : 'player'}: ${e.event} ${JSON.stringify(e.args)}`),
        );
    },
    stop: () => publishing.stop(),
  };
}

/**
 * A test server on 127.0.0.1 and a numbered call in `roomID`, flowing for a second, with
 * connection tracking on while it lasts; `closeLater` gets what must be undone.
 */
export async function loopbackNumberedCall(
  closeLater: (close: () => unknown) => void,
  roomID: string,
): Promise<{ env: TestServer; mediaPort: number; call: NumberedCall }> {
  const tracking = trackConnections();
  closeLater(() => tracking.close());
  const env = await startTestServer();
  closeLater(() => env.close());
  const mediaPort = env.server.media.udpPort!;
  const call = await numberedCall(env.client, LOOPBACK, mediaPort, roomID);
  closeLater(() => call.stop());
  await sleep(1000);
  return { env, mediaPort, call };
}

export interface Flood {
  /** Forged datagrams sent so far, by kind. */
  readonly sent: Map<string, number>;
  /** Sends `count` forged datagrams, `rate` a second, spread over the four directions. */
  send(count: number, rate: number): Promise<void>;
  close(): void;
}

/**
 * Forged datagrams in four directions: from the publisher's and the player's address to the
 * server's media port, and from that port to each of them.
 */
export async function floodFromCallAddresses(call: NumberedCall, host: string, mediaPort: number): Promise<Flood> {
  const directions: Array<{ to: number; socket: SpoofingSocket; forged: ReturnType<typeof forgedDatagrams> }> = [];
  try {
    for (const { from, to } of [
      { from: call.publisherPort, to: mediaPort },
      { from: call.playerPort, to: mediaPort },
      { from: mediaPort, to: call.publisherPort },
      { from: mediaPort, to: call.playerPort },
    ]) {
      directions.push({ to, socket: await SpoofingSocket.open({ host, port: from }), forged: forgedDatagrams() });
    }
  } catch (err) {
    for (const { socket } of directions) socket.close();
    throw err;
  }
  const sent = new Map<string, number>();
  const TICK_MS = 10;
  return {
    sent,
    async send(count, rate) {
      const start = Date.now();
      const perTick = Math.max(1, Math.round((rate * TICK_MS) / 1000));
      for (let done = 0, tick = 0; done < count; tick++) {
        const sends: Array<Promise<void>> = [];
        for (let i = 0; i < perTick && done < count; i++, done++) {
          const direction = directions[done % directions.length]!;
          const { kind, datagram } = direction.forged.next().value!;
          sent.set(kind, (sent.get(kind) ?? 0) + 1);
          sends.push(direction.socket.send(datagram, direction.to, host));
        }
        await Promise.all(sends);
        await sleep(Math.max(0, start + (tick + 1) * TICK_MS - Date.now()));
      }
    },
    close() {
      for (const { socket } of directions) socket.close();
    },
  };
}
