import { readFileSync } from 'node:fs';
import { startServer, randomApp, type AppConfig, type ParleyServer, type ServerOptions, type Limits } from '@parley/server';
import {
  ParleyEngine,
  PublisherState,
  RoomStateChangedReason,
  UpdateType,
  readIvf,
  readOggOpus,
  type IvfFile,
  type ParleyEventName,
  type ParleyEvents,
  type EngineProfile,
} from '@parley/sdk';

/** Every engine event, recorded by TestClient: a new event does not compile until it is listed. */
const EVENTS: Record<ParleyEventName, true> = {
  roomStateChanged: true,
  roomUserUpdate: true,
  roomStreamUpdate: true,
  publisherStateUpdate: true,
  publisherRelayCDNStateUpdate: true,
  mixerRelayCDNStateUpdate: true,
  playerStateUpdate: true,
  playerRecvVideoFirstFrame: true,
  playerVideoSizeChanged: true,
  customVideoCaptureKeyFrameRequested: true,
  roomTokenWillExpire: true,
  IMRecvBroadcastMessage: true,
  IMRecvBarrageMessage: true,
  IMRecvCustomCommand: true,
  roomExtraInfoUpdate: true,
  roomStreamExtraInfoUpdate: true,
  roomOnlineUserCountUpdate: true,
  publisherQualityUpdate: true,
  playerQualityUpdate: true,
  networkQuality: true,
  activeSpeakerUpdate: true,
  remoteCameraStateUpdate: true,
  remoteMicStateUpdate: true,
  remoteSpeakerStateUpdate: true,
  screenCaptureExceptionOccurred: true,
  videoDeviceStateChanged: true,
  audioDeviceStateChanged: true,
  capturedSoundLevelUpdate: true,
  remoteSoundLevelUpdate: true,
};
export const ALL_EVENTS = Object.keys(EVENTS) as ParleyEventName[];
/** Events about the media rather than the room: keyframe requests, quality reports, played streams' devices. */
const MEDIA_REPORTS = new Set<ParleyEventName>([
  'customVideoCaptureKeyFrameRequested',
  'publisherQualityUpdate',
  'playerQualityUpdate',
  'networkQuality',
  'activeSpeakerUpdate',
  'remoteCameraStateUpdate',
  'remoteMicStateUpdate',
  'remoteSpeakerStateUpdate',
  'capturedSoundLevelUpdate',
  'remoteSoundLevelUpdate',
]);

export interface Recorded {
  event: ParleyEventName;
  args: unknown[];
}

/** An engine plus everything it reported, in order, and the room as its callbacks describe it. */
export class TestClient {
  readonly events: Recorded[] = [];
  /** Users and streams of others, built from ADD/DELETE callbacks only. */
  readonly view = { users: new Set<string>(), streams: new Set<string>() };
  /** Callbacks that contradict the view: an ADD of something present, a DELETE of something absent. */
  readonly anomalies: string[] = [];
  private waiters: Array<() => void> = [];
  readonly engine: ParleyEngine;

  constructor(profile: EngineProfile) {
    this.engine = ParleyEngine.createEngine(profile);
    const track = (set: Set<string>, type: UpdateType, ids: string[], what: string): void => {
      for (const id of ids) {
        if (type === UpdateType.Add ? set.has(id) : !set.has(id)) this.anomalies.push(`${UpdateType[type]} ${what} ${id}`);
        if (type === UpdateType.Add) set.add(id);
        else set.delete(id);
      }
    };
    this.engine.on('roomUserUpdate', (_, type, users) =>
      track(
        this.view.users,
        type,
        users.map((u) => u.userID),
        'user',
      ),
    );
    this.engine.on('roomStreamUpdate', (_, type, streams) =>
      track(
        this.view.streams,
        type,
        streams.map((s) => s.streamID),
        'stream',
      ),
    );
    this.engine.on('roomStateChanged', (_, reason) => {
      if (
        reason === RoomStateChangedReason.Logout ||
        reason === RoomStateChangedReason.KickOut ||
        reason === RoomStateChangedReason.ReconnectFailed
      ) {
        this.view.users.clear();
        this.view.streams.clear();
      }
    });
    for (const event of ALL_EVENTS) {
      this.engine.on(event, (...args: unknown[]) => {
        this.events.push({ event, args });
        for (const wake of this.waiters.splice(0)) wake();
      });
    }
  }

  of<K extends ParleyEventName>(event: K): ParleyEvents[K][] {
    return this.events.filter((e) => e.event === event).map((e) => e.args as ParleyEvents[K]);
  }

  /** Resolves with the first recorded args of `event` matching `match` (already recorded or future). */
  async waitFor<K extends ParleyEventName>(
    event: K,
    match: (...args: ParleyEvents[K]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<ParleyEvents[K]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.of(event).find((args) => match(...args));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${event}; saw ${JSON.stringify(this.events.map((e) => [e.event, ...e.args]))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The broadcast messages received, in order. */
  broadcasts(): string[] {
    return this.of('IMRecvBroadcastMessage').flatMap(([, list]) => list.map((m) => m.message));
  }

  /** Sends a broadcast message; resolves with the error code and messageID. */
  broadcast(roomID: string, message: string): Promise<[number, number]> {
    return new Promise((resolve) => this.engine.sendBroadcastMessage(roomID, message, (code, id) => resolve([code, id])));
  }

  /** Starts publishing and waits until the stream is live. */
  async publish(streamID: string): Promise<void> {
    this.engine.startPublishingStream(streamID);
    await this.waitFor('publisherStateUpdate', (id, state) => id === streamID && state === PublisherState.Publishing);
  }

  login(
    roomID: string,
    userID: string,
    config: { isUserStatusNotify?: boolean; maxMemberCount?: number; token?: string } = {},
  ): Promise<number> {
    return new Promise((resolve) =>
      this.engine.loginRoom(roomID, { userID, userName: userID }, { isUserStatusNotify: true, ...config }, resolve),
    );
  }

  destroy(): Promise<void> {
    return new Promise((resolve) => ParleyEngine.destroyEngine(this.engine, resolve));
  }
}

export interface TestServer {
  server: ParleyServer;
  app: AppConfig;
  client(overrides?: Partial<EngineProfile>): TestClient;
  /** New clients, one per userID, logged in to `roomID` (in order); fails if a login does. */
  inRoom(roomID: string, ...userIDs: string[]): Promise<TestClient[]>;
  /** The userIDs the server has in `roomID`, sorted ([] for no room). */
  roomUserIDs(roomID: string): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Every test client comes from 127.0.0.1, where real users would come from many addresses, so
 * the per-address limits are lifted unless a test sets them.
 */
const ONE_ADDRESS_MANY_USERS: Partial<Limits> = {
  framesPerSecondPerIp: 1e6,
  frameBurstPerIp: 1e6,
  connectionsPerSecondPerIp: 1e6,
  connectionBurstPerIp: 1e6,
  loginsPerSecondPerIp: 1e6,
  loginBurstPerIp: 1e6,
};

export async function startTestServer(
  options: Pick<
    ServerOptions,
    'host' | 'heartbeatTimeoutMs' | 'media' | 'limits' | 'onlineCountIntervalMs' | 'networkQualityIntervalMs' | 'mixing'
  > = {},
): Promise<TestServer> {
  const app = randomApp(1_000_001);
  const limits = { ...ONE_ADDRESS_MANY_USERS, ...options.limits };
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [app], logLevel: 'silent', staticDir: false, ...options, limits });
  const clients: TestClient[] = [];
  const client = (overrides: Partial<EngineProfile> = {}): TestClient => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url, ...overrides });
    clients.push(c);
    return c;
  };
  return {
    server,
    app,
    client,
    async inRoom(roomID, ...userIDs) {
      const joined: TestClient[] = [];
      for (const userID of userIDs) {
        const c = client();
        const code = await c.login(roomID, userID);
        if (code !== 0) throw new Error(`${userID} could not log in to ${roomID}: ${code}`);
        joined.push(c);
      }
      return joined;
    },
    roomUserIDs: async (roomID) => ((await server.rooms.describeRoom(app.appID, roomID))?.users.map((u) => u.userID) ?? []).sort(),
    async close() {
      await Promise.all(clients.map((c) => c.destroy()));
      await server.close();
    },
  };
}

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
export const videoFixture = readIvf(fixture('video.ivf'));
export const audioFixture = readOggOpus(fixture('audio.ogg'));

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length &&
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0
  );
}

/** The fixture has a keyframe every this many frames. */
const KEYFRAME_INTERVAL = 30;

/**
 * Publishes the fixture files in a loop in real time (30 fps video, 20 ms audio), as a bot would.
 * A keyframe request is answered by skipping ahead to the fixture's next keyframe. `referenceTime`
 * stamps each frame (ms; by default the time since start). Returns a function that stops it.
 */
export function loopFixtures(engine: ParleyEngine, referenceTime?: () => number): () => void {
  let frame = 0;
  const started = Date.now();
  const now = referenceTime ?? ((): number => Date.now() - started);
  const onKeyFrameRequest = (): void => {
    frame = Math.ceil(frame / KEYFRAME_INTERVAL) * KEYFRAME_INTERVAL;
  };
  engine.on('customVideoCaptureKeyFrameRequested', onKeyFrameRequest);
  const video = setInterval(() => {
    const { data } = videoFixture.frames[frame % videoFixture.frames.length]!;
    engine.sendCustomVideoCaptureEncodedData(
      data,
      { codec: 'vp8', isKeyFrame: frame % KEYFRAME_INTERVAL === 0, width: videoFixture.width, height: videoFixture.height },
      now(),
    );
    frame++;
  }, 1000 / 30);
  let packet = 0;
  const audio = setInterval(() => {
    engine.sendCustomAudioCaptureEncodedData(audioFixture[packet % audioFixture.length]!, { codec: 'opus' }, now());
    packet++;
  }, 20);
  return () => {
    clearInterval(video);
    clearInterval(audio);
    engine.off('customVideoCaptureKeyFrameRequested', onKeyFrameRequest);
  };
}

/**
 * Sends a clip (VP8 at 30 fps with a keyframe every 30 frames, 20 ms Opus packets) in a loop, each
 * frame at its time in the clip and stamped with it, as a capture device would: audio and video
 * stay together (keyframe requests wait for the clip's next keyframe, a second at most, rather
 * than skipping ahead). `clip` is asked per frame, so a sender may switch clips. Returns a
 * function that stops it.
 */
export function sendClipInSync(engine: ParleyEngine, clip: () => { video: IvfFile; audio: Uint8Array[] }): () => void {
  const start = performance.now();
  let frame = 0;
  let packet = 0;
  const timer = setInterval(() => {
    const now = performance.now() - start;
    for (; frame * (1000 / 30) <= now; frame++) {
      const { video } = clip();
      const { data } = video.frames[frame % video.frames.length]!;
      const params = { codec: 'vp8' as const, isKeyFrame: frame % 30 === 0, width: video.width, height: video.height };
      engine.sendCustomVideoCaptureEncodedData(data, params, frame * (1000 / 30));
    }
    for (; packet * 20 <= now; packet++) {
      const { audio } = clip();
      engine.sendCustomAudioCaptureEncodedData(audio[packet % audio.length]!, { codec: 'opus' }, packet * 20);
    }
  }, 5);
  return () => clearInterval(timer);
}

/** The 32-byte header of an IVF stream of VP8 frames (each then follows a 12-byte header: size, timestamp). */
export function ivfHeader(width: number, height: number, frames = 0): Buffer {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'ascii');
  header.writeUInt16LE(32, 6);
  header.write('VP80', 8, 'ascii');
  header.writeUInt16LE(width, 12);
  header.writeUInt16LE(height, 14);
  header.writeUInt32LE(30, 16);
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames, 24);
  return header;
}

/**
 * A call running in the background: `pub` publishes the fixtures in `roomID`, `viewer` plays them
 * and counts frames. `untouched()` tells whether either saw any room event since the call was up.
 */
export async function liveCall(
  env: { client(): TestClient },
  roomID: string,
): Promise<{
  pub: TestClient;
  viewer: TestClient;
  frames(): number;
  /** Room events (not media reports such as keyframe requests and quality) seen by either since the call started. */
  roomEventsSinceStart(): string[][];
  stop(): void;
}> {
  const pub = env.client();
  const viewer = env.client();
  let frames = 0;
  viewer.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames++ });
  if ((await pub.login(roomID, 'pub')) !== 0 || (await viewer.login(roomID, 'viewer')) !== 0) throw new Error('call login failed');
  const streamID = `s-${roomID}`;
  pub.engine.startPublishingStream(streamID);
  await pub.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  const stop = loopFixtures(pub.engine);
  viewer.engine.startPlayingStream(streamID);
  await viewer.waitFor('playerRecvVideoFirstFrame');
  const start = [pub.events.length, viewer.events.length] as const;
  const since = (c: TestClient, from: number): string[] =>
    c.events
      .slice(from)
      .map((e) => e.event)
      .filter((e) => !MEDIA_REPORTS.has(e));
  return { pub, viewer, frames: () => frames, roomEventsSinceStart: () => [since(pub, start[0]), since(viewer, start[1])], stop };
}
