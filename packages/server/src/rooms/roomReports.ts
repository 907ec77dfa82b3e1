/**
 * What the room service tells rooms on its own, at intervals: online user counts, how the server
 * sees each user's network, and who speaks. Read from the store and this server's media; each
 * session on this server is told what concerns it.
 */
import { qualityLevel, SPEAKING_LEVEL, StreamQualityLevel, worseLevel } from '@parley/protocol';
import type { MediaEndpoint } from '../media/index.js';
import type { LiveSession } from './liveHandles.js';
import type { RoomContext } from './roomContext.js';

export interface ReportIntervals {
  /** How often rooms are told their online user count when it changed. */
  onlineCountIntervalMs: number;
  /** How often users are told how the server sees their links and those of whom they play. */
  networkQualityIntervalMs: number;
  /** How often rooms' active speakers are judged, and told when they changed. */
  activeSpeakerIntervalMs: number;
}

type Link = Pick<MediaEndpoint, 'linkQuality'> | undefined;

function levelOf(media: Link): StreamQualityLevel {
  if (!media) return StreamQualityLevel.Unknown;
  const { rttMs, lossFraction } = media.linkQuality();
  return qualityLevel(rttMs, lossFraction, true);
}

const worst = (media: Link[]): StreamQualityLevel =>
  media.reduce<StreamQualityLevel>((level, m) => worseLevel(level, levelOf(m)), StreamQualityLevel.Unknown);

export class RoomReports {
  private readonly stops: Array<() => void>;

  constructor(
    private readonly ctx: RoomContext,
    intervals: ReportIntervals,
  ) {
    const { clock } = ctx;
    const run = (report: () => Promise<void>) => () => void report().catch((err: unknown) => ctx.log.error({ err }, 'room report failed'));
    this.stops = [
      clock.every(
        intervals.onlineCountIntervalMs,
        run(() => this.tellOnlineCounts()),
      ),
      clock.every(
        intervals.networkQualityIntervalMs,
        run(() => this.tellNetworkQuality()),
      ),
      clock.every(
        intervals.activeSpeakerIntervalMs,
        run(() => this.tellActiveSpeakers()),
      ),
    ];
  }

  stop(): void {
    for (const stop of this.stops) stop();
  }

  /** This server's sessions, by room (taken now: the reports await between rooms). */
  private rooms(): LiveSession[][] {
    return [...this.ctx.live.rooms()].map((sessions) => [...sessions]);
  }

  private async tellOnlineCounts(): Promise<void> {
    for (const sessions of this.rooms()) {
      const { appID, roomID } = sessions[0]!;
      const count = await this.ctx.store.memberCount(appID, roomID);
      for (const session of sessions) this.tellOnlineCount(session, count);
    }
  }

  /** Tells a session its room's online count if it was not told it already. */
  tellOnlineCount(session: LiveSession, count: number): void {
    if (this.ctx.live.session(session.sessionID) !== session || session.toldOnlineCount === count) return;
    session.toldOnlineCount = count;
    session.link?.send({ type: 'onlineUserCount', roomID: session.roomID, count });
  }

  /**
   * Tells each user that publishes or plays how the server sees its uplink (the worst of its
   * publications') and downlink (the worst of its plays'), and tells the same of it to those who
   * play its streams.
   */
  private async tellNetworkQuality(): Promise<void> {
    const { store, live } = this.ctx;
    for (const sessions of this.rooms()) {
      const users = [];
      for (const session of sessions) {
        const publications = await store.publicationsOfSession(session.appID, session.sessionID);
        const plays = await store.playsOfSession(session.appID, session.sessionID);
        if (publications.length > 0 || plays.length > 0) users.push({ session, publications, plays });
      }
      for (const { session, publications, plays } of users) {
        const upstream = worst(publications.map((p) => live.publisherMedia(p.publicationID)));
        const downstream = worst(plays.map((p) => live.playMedia(p.playID)));
        const { roomID, user } = session;
        const message = { type: 'networkQuality', roomID, userID: user.userID, upstream, downstream } as const;
        session.link?.send(message);
        const published = new Set(publications.map((p) => p.streamID));
        for (const other of users) {
          if (other.session !== session && other.plays.some((p) => published.has(p.streamID))) other.session.link?.send(message);
        }
      }
    }
  }

  /** Tells each room who speaks in it (loudest first) when that changed: the publications whose audio was loud enough. */
  private async tellActiveSpeakers(): Promise<void> {
    const { store, live } = this.ctx;
    for (const sessions of this.rooms()) {
      const { appID, roomID } = sessions[0]!;
      const speakers = [];
      for (const publication of await store.liveStreams(appID, roomID)) {
        const soundLevel = live.publisherMedia(publication.publicationID)?.speechLevel() ?? 0;
        if (soundLevel >= SPEAKING_LEVEL) speakers.push({ userID: publication.user.userID, streamID: publication.streamID, soundLevel });
      }
      if (
        !live.speakersChanged(
          appID,
          roomID,
          speakers.map((s) => s.streamID),
        )
      )
        continue;
      speakers.sort((a, b) => b.soundLevel - a.soundLevel);
      for (const session of live.inRoom(appID, roomID)) session.link?.send({ type: 'activeSpeakers', roomID, speakers });
    }
  }
}
