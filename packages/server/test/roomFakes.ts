/**
 * A room service with nothing real around it, for the room rules' unit tests: fake client links
 * that keep what they are sent, a fake media plane whose endpoints the test connects and closes,
 * simulated time, and the store under test.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import {
  appSignProofMessage,
  hexKeyBytes,
  resumeProofMessage,
  type ClientRequest,
  type ReplyData,
  type ServerMessage,
  type MediaRole,
} from '@parley/protocol';
import { createClient } from 'redis';
import { SimulatedClock, startRedis, type RedisServer } from '@parley/testkit';
import { AppRegistry } from '../src/apps.js';
import { DEFAULT_LIMITS, randomApp, type AppConfig } from '../src/config.js';
import {
  SdpError,
  type MediaPlane,
  type MediaPublisher,
  type MediaStats,
  type MediaSubscriber,
  type MediaTap,
  type TappedPacket,
} from '../src/media/index.js';
import type { EndpointEvents, LinkQuality, PublisherEvents } from '../src/media/core/types.js';
import type { ClientLink } from '../src/rooms/liveHandles.js';
import type { RoomServiceEvents } from '../src/rooms/observer.js';
import { RoomService, type SessionRef } from '../src/rooms/roomService.js';
import type { RoomStore } from '../src/rooms/store/roomStore.js';
import { MemoryRoomStore } from '../src/rooms/store/memoryRoomStore.js';
import { RedisRoomStore } from '../src/rooms/store/redisRoomStore.js';

export class FakeLink implements ClientLink {
  readonly remoteAddress = 'fake';
  readonly sent: ServerMessage[] = [];
  closed = false;

  constructor(public lastHeardMs: number) {}

  send(message: ServerMessage): void {
    if (!this.closed) this.sent.push(message);
  }

  close(): void {
    this.closed = true;
  }

  /** The streams whose media closed, as the link was told (`role/streamID`). */
  readonly mediaClosedOf: string[] = [];

  mediaClosed(role: MediaRole, streamID: string): void {
    this.mediaClosedOf.push(`${role}/${streamID}`);
  }

  /** What it was sent of `type`. */
  of<T extends ServerMessage['type']>(type: T): Array<Extract<ServerMessage, { type: T }>> {
    return this.sent.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  }
}

class FakeEndpoint<Events extends EndpointEvents & Record<keyof Events, unknown[]>> {
  readonly observer = new EventEmitter<Events>();
  /** The events every endpoint has. */
  private get events(): EventEmitter<EndpointEvents> {
    return this.observer as unknown as EventEmitter<EndpointEvents>;
  }
  readonly answer = 'fake answer';
  closed = false;
  connected = false;
  quality: LinkQuality = { lossFraction: 0, rttMs: 20 };

  /** ICE and DTLS came up. */
  connect(): void {
    this.connected = true;
    this.events.emit('connected');
  }

  linkQuality(): LinkQuality {
    return this.quality;
  }

  async restartIce(): Promise<string> {
    return 'fake restart answer';
  }

  /** Candidates trickled to it, in order. */
  readonly candidates: string[] = [];

  addRemoteCandidates(candidates: readonly string[]): void {
    if (candidates.some((c) => !c.startsWith('candidate:'))) throw new SdpError('a candidate cannot be parsed');
    this.candidates.push(...candidates);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    this.events.emit('closed');
  }
}

export class FakeSubscriber extends FakeEndpoint<EndpointEvents> implements MediaSubscriber {
  setVideo(): void {}
  setMuted(): void {}
}

export class FakePublisher extends FakeEndpoint<PublisherEvents> implements MediaPublisher {
  readonly subscribers: FakeSubscriber[] = [];
  mediaDue = true;
  level = 0;

  speechLevel(): number {
    return this.level;
  }

  async subscribe(): Promise<MediaSubscriber> {
    const subscriber = new FakeSubscriber();
    this.subscribers.push(subscriber);
    return subscriber;
  }

  setMediaDue(due: boolean): void {
    this.mediaDue = due;
  }

  /** A tap that carries nothing and closes with the publisher. */
  tap(): MediaTap {
    const observer = new EventEmitter<{ packet: [TappedPacket]; closed: [] }>();
    const tap = {
      observer,
      audio: true,
      videoCodec: 'vp8' as const,
      onLargestLayer: true,
      closed: false,
      requestKeyFrame: () => undefined,
      close: () => undefined,
    };
    tap.close = () => {
      if (tap.closed) return;
      tap.closed = true;
      observer.emit('closed');
    };
    this.observer.once('closed', tap.close);
    return tap;
  }

  override close(): void {
    for (const subscriber of this.subscribers) subscriber.close();
    super.close();
  }
}

/** Publishers as the room service creates them; `hold()` keeps the next negotiations waiting until released. */
export class FakeMediaPlane implements MediaPlane {
  readonly publishers: FakePublisher[] = [];
  readonly stats = {} as MediaStats;
  private gate: Promise<void> | undefined;

  async publish(offer: string): Promise<MediaPublisher> {
    await this.gate;
    if (offer === 'not sdp') throw new SdpError('not an SDP offer');
    const publisher = new FakePublisher();
    this.publishers.push(publisher);
    return publisher;
  }

  /** Holds negotiations until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise((resolve) => (release = resolve));
    return () => {
      this.gate = undefined;
      release();
    };
  }

  async close(): Promise<void> {}
}

export const HEARTBEAT_TIMEOUT_MS = 10_000;

/** An empty store that reads the time from `now`, and how to let go of it. */
export type StoreFactory = (now: () => number) => Promise<{ store: RoomStore; close(): Promise<void> }>;

/** One redis-server for the test file, started when first needed. */
let redisServer: Promise<RedisServer> | undefined;

/** Stops what the stores needed (the test file's redis-server). */
export async function closeStores(): Promise<void> {
  await (await redisServer)?.stop();
}

/** Every RoomStore implementation: the room rules' tests run against each. */
export const STORES: Array<[name: string, make: StoreFactory]> = [
  ['memory', async (now) => ({ store: new MemoryRoomStore(now), close: async () => {} })],
  [
    'redis',
    async (now) => {
      const { url } = await (redisServer ??= startRedis());
      const client = createClient({ url });
      await client.connect();
      // Each world's keys apart from the others'.
      return { store: new RedisRoomStore(client, { prefix: `test-${randomUUID()}`, now }), close: async () => void (await client.quit()) };
    },
  ],
];

/** One app's room service on fakes, with helpers that speak for its users. */
export class RoomWorld {
  readonly media = new FakeMediaPlane();
  readonly app: AppConfig = randomApp(1_234);
  readonly rooms: RoomService;
  /** Everything the observer reported, in order. */
  readonly reported: Array<{ name: keyof RoomServiceEvents; event: unknown }> = [];

  /** A world on a new store of `makeStore`'s, let go of after the test. */
  static async open(t: TestContext, makeStore: StoreFactory, limits: Partial<typeof DEFAULT_LIMITS> = {}): Promise<RoomWorld> {
    const clock = new SimulatedClock(Date.UTC(2026, 0, 1));
    const { store, close } = await makeStore(() => clock.now());
    t.after(close);
    return new RoomWorld(clock, store, limits);
  }

  private constructor(
    readonly clock: SimulatedClock,
    store: RoomStore,
    limits: Partial<typeof DEFAULT_LIMITS>,
  ) {
    this.rooms = new RoomService({
      apps: new AppRegistry([this.app]),
      store,
      clock: this.clock,
      media: this.media,
      limits: { ...DEFAULT_LIMITS, ...limits },
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      onlineCountIntervalMs: 1_000,
      networkQualityIntervalMs: 2_000,
      activeSpeakerIntervalMs: 300,
      iceServers: () => undefined,
      log: pino({ level: 'silent' }),
    });
    for (const name of ['roomCreated', 'roomClosed', 'userJoined', 'userLeft', 'streamCreated', 'streamClosed'] as const) {
      (this.rooms.observer as EventEmitter).on(name, (event: unknown) => this.reported.push({ name, event }));
    }
  }

  link(): FakeLink {
    return new FakeLink(this.clock.now());
  }

  loginRequest(
    nonce: string,
    roomID: string,
    userID: string,
    config: Partial<ClientRequest<'login'>['config']> = {},
    rejoin?: boolean,
  ): ClientRequest<'login'> {
    const proof = createHmac('sha256', hexKeyBytes(this.app.appSign))
      .update(appSignProofMessage(nonce, this.app.appID, roomID, userID))
      .digest('hex');
    return {
      type: 'login',
      id: 1,
      appID: this.app.appID,
      roomID,
      user: { userID, userName: userID },
      config: { isUserStatusNotify: true, maxMemberCount: 0, ...config },
      auth: { appSignProof: proof },
      ...(rejoin && { rejoin }),
    };
  }

  /** Logs `userID` into `roomID` on a new link; throws unless it succeeds. */
  async login(roomID: string, userID: string, config: Partial<ClientRequest<'login'>['config']> = {}): Promise<User> {
    const link = this.link();
    const outcome = await this.rooms.login(link, 'nonce', this.loginRequest('nonce', roomID, userID, config));
    if (outcome.code !== 0) throw new Error(`login of ${userID} failed: ${outcome.code} ${outcome.message}`);
    return { link, ref: { appID: this.app.appID, sessionID: outcome.data.sessionID }, login: outcome.data };
  }

  resumeRequest(user: User, nonce: string, lastSeq: number): ClientRequest<'resume'> {
    const { sessionID } = user.ref;
    const proof = createHmac('sha256', hexKeyBytes(user.login.resumeToken)).update(resumeProofMessage(nonce, sessionID)).digest('hex');
    return { type: 'resume', id: 2, appID: this.app.appID, sessionID, proof, lastSeq };
  }

  /** Publishes `streamID` for `user` and connects its media; throws unless it succeeds. */
  async publish(user: User, streamID: string): Promise<FakePublisher> {
    const outcome = await this.rooms.publish(user.ref, publishRequest(streamID));
    if (outcome.code !== 0) throw new Error(`publish of ${streamID} failed: ${outcome.code} ${outcome.message}`);
    const publisher = this.media.publishers.at(-1)!;
    publisher.connect();
    await this.rooms.settled();
    return publisher;
  }

  /** Moves simulated time on by `ms` and lets the operations it started finish. */
  async pass(ms: number): Promise<void> {
    await this.rooms.settled();
    this.clock.advance(this.clock.now() + ms);
    await this.rooms.settled();
  }

  /** The observer's reports of `name`. */
  reports<K extends keyof RoomServiceEvents>(name: K): Array<RoomServiceEvents[K][0]> {
    return this.reported.filter((r) => r.name === name).map((r) => r.event as RoomServiceEvents[K][0]);
  }
}

export interface User {
  link: FakeLink;
  ref: SessionRef;
  login: ReplyData<'login'>;
}

export const publishRequest = (streamID: string, sdp = 'offer'): ClientRequest<'publish'> => ({
  type: 'publish',
  id: 3,
  streamID,
  sdp,
  extraInfo: '',
});

export const playRequest = (streamID: string, attempt = 1): ClientRequest<'play'> => ({
  type: 'play',
  id: 4,
  streamID,
  sdp: 'offer',
  attempt,
});
