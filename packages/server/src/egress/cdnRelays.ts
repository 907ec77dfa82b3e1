/**
 * The CDN relays of published streams (addPublishCdnUrl / removePublishCdnUrl): per stream, its
 * URLs' relays and the feed they share, and the publisher told of every change of their states
 * (onPublisherRelayCDNStateUpdate). A stream's relays end with it.
 */
import type { Logger } from 'pino';
import { ErrorCode, StreamRelayCDNUpdateReason, type ServerMessage } from '@parley/protocol';
import { fail, ok, type Outcome } from '../outcome.js';
import { CdnRelay, DEFAULT_CDN_RELAY_OPTIONS, type CdnRelayOptions } from './cdnRelay.js';
import type { StreamFeed } from './streamFeed.js';
import type { StreamFeeds } from './streamFeeds.js';

/** The vendor's limit of relays per stream. */
const MAX_URLS_PER_STREAM = 10;
/** How often a stream whose media is being re-established is looked at again. */
const FEED_RETRY_MS = 1000;

/** What the relays need of the room service. */
export interface CdnRooms {
  /** The session that publishes the stream, if it is live. */
  publisherOf(appID: number, streamID: string): Promise<string | undefined>;
  /** Sends a message to a session connected here. */
  tell(appID: number, sessionID: string, message: ServerMessage): void;
}

interface RelayedStream {
  appID: number;
  streamID: string;
  sessionID: string;
  readonly relays: Map<string, CdnRelay>;
  feed: StreamFeed | undefined;
  retry: NodeJS.Timeout | undefined;
}

export class CdnRelays {
  private readonly streams = new Map<string, RelayedStream>();
  private readonly options: CdnRelayOptions;

  constructor(
    private readonly rooms: CdnRooms,
    private readonly feeds: StreamFeeds,
    private readonly log: Logger,
    options: Partial<CdnRelayOptions> = {},
  ) {
    this.options = { ...DEFAULT_CDN_RELAY_OPTIONS, ...options };
  }

  async add(session: { appID: number; sessionID: string }, streamID: string, url: string): Promise<Outcome<Record<string, never>>> {
    const { appID, sessionID } = session;
    if ((await this.rooms.publisherOf(appID, streamID)) !== sessionID) {
      return fail(ErrorCode.PublisherUpdateCdnTargetError, `stream ${streamID} is not published by this user`);
    }
    const key = `${appID}/${streamID}`;
    let stream = this.streams.get(key);
    if (stream?.relays.has(url)) return ok({});
    if (stream && stream.relays.size >= MAX_URLS_PER_STREAM) {
      return fail(ErrorCode.PublisherUpdateCdnTargetError, `at most ${MAX_URLS_PER_STREAM} CDN URLs per stream`);
    }
    if (!stream) {
      stream = { appID, streamID, sessionID, relays: new Map(), feed: undefined, retry: undefined };
      this.streams.set(key, stream);
    }
    const relayed = stream;
    const relay = new CdnRelay(url, this.options, () => this.tellStates(relayed));
    stream.relays.set(url, relay);
    this.log.info({ appID, streamID }, 'cdn relay added');
    this.tellStates(stream);
    if (stream.feed) relay.attach(stream.feed);
    else await this.follow(stream);
    return ok({});
  }

  async remove(session: { appID: number; sessionID: string }, streamID: string, url: string): Promise<Outcome<Record<string, never>>> {
    const stream = this.streams.get(`${session.appID}/${streamID}`);
    if (stream?.sessionID !== session.sessionID) return ok({}); // removing what is not relayed is not an error
    const relay = stream.relays.get(url);
    if (!relay) return ok({});
    relay.stop(StreamRelayCDNUpdateReason.Disconnected);
    stream.relays.delete(url);
    if (stream.relays.size === 0) this.drop(stream);
    return ok({});
  }

  /** The stream ended: its relays stop. */
  streamEnded(appID: number, streamID: string): void {
    const stream = this.streams.get(`${appID}/${streamID}`);
    if (!stream) return;
    for (const relay of stream.relays.values()) relay.stop();
    this.drop(stream);
  }

  /** Leases the stream's feed for its relays, and again whenever it goes (its media re-established), while they last. */
  private async follow(stream: RelayedStream): Promise<void> {
    clearTimeout(stream.retry);
    stream.retry = undefined;
    const feed = await this.feeds.lease(stream.appID, stream.streamID);
    if (this.streams.get(`${stream.appID}/${stream.streamID}`) !== stream) {
      if (feed) this.feeds.release(stream.appID, stream.streamID);
      return;
    }
    stream.feed = feed;
    for (const relay of stream.relays.values()) relay.attach(feed);
    if (!feed) {
      stream.retry = setTimeout(() => void this.follow(stream), FEED_RETRY_MS);
      return;
    }
    feed.observer.once('closed', () => {
      if (stream.feed !== feed) return;
      stream.feed = undefined;
      this.feeds.release(stream.appID, stream.streamID);
      for (const relay of stream.relays.values()) relay.attach(undefined);
      if (this.streams.get(`${stream.appID}/${stream.streamID}`) === stream)
        stream.retry = setTimeout(() => void this.follow(stream), FEED_RETRY_MS);
    });
  }

  private drop(stream: RelayedStream): void {
    this.streams.delete(`${stream.appID}/${stream.streamID}`);
    clearTimeout(stream.retry);
    if (stream.feed) this.feeds.release(stream.appID, stream.streamID);
    stream.feed = undefined;
  }

  private tellStates(stream: RelayedStream): void {
    const infoList = [...stream.relays.values()].map((relay) => relay.info());
    this.rooms.tell(stream.appID, stream.sessionID, { type: 'relayCdnState', streamID: stream.streamID, infoList });
  }

  close(): void {
    for (const stream of [...this.streams.values()]) {
      for (const relay of stream.relays.values()) relay.stop();
      this.drop(stream);
    }
  }
}
