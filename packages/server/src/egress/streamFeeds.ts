/**
 * The streams' feeds that the egress (recordings, CDN relays) take, one per stream however many
 * take it: lent by stream and given back, closed when the last one gives it back.
 */
import type { MediaTap } from '../media/index.js';
import { StreamFeed, type StreamFeedOptions } from './streamFeed.js';

export class StreamFeeds {
  private readonly feeds = new Map<string, { feed: StreamFeed; users: number }>();

  constructor(
    /** A tap on the stream's media, undefined while it has none. */
    private readonly tap: (appID: number, streamID: string) => Promise<MediaTap | undefined>,
    private readonly options: StreamFeedOptions = { keyFrameIntervalMs: 1000, maxWaitMs: 500 },
  ) {}

  /** Lends the stream's feed; undefined while the stream has no media. Every lease is given back by `release`. */
  async lease(appID: number, streamID: string): Promise<StreamFeed | undefined> {
    const key = `${appID}/${streamID}`;
    let entry = this.feeds.get(key);
    if (!entry || entry.feed.closed) {
      const tap = await this.tap(appID, streamID);
      if (!tap) return undefined;
      entry = this.feeds.get(key);
      if (entry && !entry.feed.closed) {
        tap.close(); // another lease opened it meanwhile
      } else {
        const feed = new StreamFeed(tap, this.options);
        entry = { feed, users: 0 };
        this.feeds.set(key, entry);
        feed.observer.once('closed', () => {
          if (this.feeds.get(key)?.feed === feed) this.feeds.delete(key);
        });
      }
    }
    entry.users++;
    return entry.feed;
  }

  release(appID: number, streamID: string): void {
    const key = `${appID}/${streamID}`;
    const entry = this.feeds.get(key);
    if (!entry || --entry.users > 0) return;
    this.feeds.delete(key);
    entry.feed.close();
  }
}
