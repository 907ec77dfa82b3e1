/**
 * Publishing and playing: the rules of streams in rooms, with the media plane doing the media. A
 * streamID is reserved app-wide before its (asynchronous) negotiation, so that racing publishers
 * lose cleanly; a negotiation's media is installed only if its publication or play is still the
 * one that asked for it.
 */
import { randomUUID } from 'node:crypto';
import {
  carriesMedia,
  ErrorCode,
  RemoteDeviceState,
  UpdateType,
  validateStreamExtraInfo,
  validateStreamID,
  type ClientRequest,
  type MediaRole,
  type ReplyData,
  type StreamDevices,
  type StreamInfo,
} from '@parley/protocol';
import type { Limits } from '../config.js';
import { RelayUnavailable, SdpError, type MediaPlane, type MediaPublisher, type MediaSubscriber, type MediaTap } from '../media/index.js';
import { fail, ok, type Failure, type FailureCode, type Outcome } from '../outcome.js';
import { refOf, type RoomContext } from './roomContext.js';
import type { StreamEndReason } from './observer.js';
import type { EventToLog, PlayRecord, PublicationRecord, SessionRecord, SessionToken } from './store/roomStore.js';

export type StreamLimits = Pick<Limits, 'maxPublicationsPerSession' | 'maxPlaysPerSession'>;

export const streamInfoOf = (p: PublicationRecord): StreamInfo => ({ user: p.user, streamID: p.streamID, extraInfo: p.extraInfo });
export const streamDevicesOf = (p: PublicationRecord): StreamDevices => ({ streamID: p.streamID, ...p.devices });
/** Whether a stream's devices are not all Open (the others are not listed to clients). */
export const devicesChanged = ({ camera, microphone, speaker }: PublicationRecord['devices']): boolean =>
  camera !== RemoteDeviceState.Open || microphone !== RemoteDeviceState.Open || speaker !== RemoteDeviceState.Open;

/** What an endpoint says of its transport, as the client is told it. */
const MEDIA_NOTICE_TYPE = { stalled: 'mediaStalled', moved: 'mediaMoved' } as const;
const MEDIA_NOTICES = Object.keys(MEDIA_NOTICE_TYPE) as Array<keyof typeof MEDIA_NOTICE_TYPE>;
export class RoomStreams {
  constructor(
    private readonly ctx: RoomContext,
    private readonly media: MediaPlane,
    private readonly limits: StreamLimits,
    private readonly heartbeatTimeoutMs: number,
  ) {}

  async publish(appID: number, sessionID: string, req: ClientRequest<'publish'>): Promise<Outcome<ReplyData<'publish'>>> {
    const { store, queues } = this.ctx;
    const invalid = validateStreamID(req.streamID);
    if (invalid) return fail(invalid as FailureCode, 'invalid streamID');
    const reserved = await queues.run(appID, async () => {
      const session = await store.session(appID, sessionID);
      if (!session) return fail(ErrorCode.NotLoggedIn, 'not logged in');
      const denied = publishDenied(session.token, req.streamID, this.ctx.clock.now());
      if (denied) return denied;
      if (validateStreamExtraInfo(req.extraInfo)) return fail(ErrorCode.StreamExtraInfoTooLong, 'stream extra info too long');
      const stream = { streamID: req.streamID, extraInfo: req.extraInfo, devices: req.devices, mediaNode: this.ctx.nodes.nodeId };
      const outcome = await store.reserveStream(session, stream, this.limits.maxPublicationsPerSession);
      // The same session publishing its stream again is a publisher re-establishing its media after
      // an interruption: the stream stays announced and its players are told to play it again.
      if (outcome.code === 0) this.detachMedia(outcome.data.publication);
      return outcome;
    });
    if (reserved.code !== 0) return reserved;
    const { publication } = reserved.data;

    let media: MediaPublisher;
    try {
      media = await this.media.publish(req.sdp);
    } catch (err) {
      if (reserved.data.reserved) void queues.run(appID, () => this.dropPublication(publication, 'stopped'));
      return this.mediaFailure(err, ErrorCode.PublishInterrupted);
    }
    return queues.run(appID, async () => {
      const current = await store.publication(appID, req.streamID);
      if (current?.publicationID !== publication.publicationID || current.negotiation !== publication.negotiation) {
        media.close(); // unpublished, logged out or superseded meanwhile
        return fail(ErrorCode.PublishInterrupted, 'publish cancelled');
      }
      this.installMedia(current, media);
      return ok({ sdp: media.answer });
    });
  }

  private installMedia(publication: PublicationRecord, media: MediaPublisher): void {
    const { live, queues } = this.ctx;
    const { appID, sessionID, streamID, publicationID } = publication;
    const handle = live.publication(publication);
    handle.media = media;
    handle.cancelOrphan?.();
    handle.cancelOrphan = undefined;
    media.setMediaDue(carriesMedia(publication.devices));
    const current = (): boolean => live.publisherMedia(publicationID) === media;
    media.observer.once('connected', () => void queues.run(appID, () => this.announce(publication, media)));
    media.observer.once('closed', () => {
      void queues.run(appID, async () => {
        if (!current()) return;
        this.detachMedia(publication);
        live.session(sessionID)?.link?.mediaClosed?.('publish', streamID);
      });
    });
    media.observer.on('activeLayers', (active) => {
      if (current()) live.send(sessionID, { type: 'publishLayers', streamID, active });
    });
    media.observer.on('layerCaps', (maxBitrates) => {
      if (current()) live.send(sessionID, { type: 'publishBitrates', streamID, maxBitrates });
    });
    for (const event of MEDIA_NOTICES) {
      media.observer.on(event, () => {
        if (current()) live.send(sessionID, { type: MEDIA_NOTICE_TYPE[event], streamID, role: 'publish' });
      });
    }
  }

  /** The publisher's media is connected: the room is told of the stream. */
  private async announce(publication: PublicationRecord, media: MediaPublisher): Promise<void> {
    const { store, live, observer } = this.ctx;
    if (live.publisherMedia(publication.publicationID) !== media) return;
    const current = await store.publication(publication.appID, publication.streamID);
    if (current?.publicationID !== publication.publicationID || current.live) return;
    const from = publication.sessionID;
    const announced = await store.announcePublication(publication.appID, current, [
      { event: { type: 'streamUpdate', updateType: UpdateType.Add, streams: [streamInfoOf(current)] }, from },
      { event: { type: 'streamDevicesUpdate', streams: [streamDevicesOf(current)] }, from },
    ]);
    const room = announced && (await store.room(publication.appID, publication.roomID));
    if (!announced || !room) return;
    for (const logged of announced.logged) await this.ctx.feeds.logged(room, logged);
    observer.emit('streamCreated', { ...refOf(room, announced.logged[0]!), stream: streamInfoOf(announced.publication) });
  }

  /**
   * Closes a publication's media, keeping the publication: its players are told to play again,
   * and its publisher gets a heartbeat timeout to publish again before the stream goes.
   */
  private detachMedia(publication: PublicationRecord): void {
    const { live, clock, queues } = this.ctx;
    const handle = live.publication(publication);
    const media = handle.media;
    handle.media = undefined;
    handle.cancelOrphan?.();
    handle.cancelOrphan = clock.after(this.heartbeatTimeoutMs, () => {
      void queues.run(publication.appID, () => this.dropPublication(publication, 'mediaLost'));
    });
    media?.close();
  }

  /** Ends a publication if it is still this one: announced, its room is told; its media and players close. */
  async dropPublication(publication: PublicationRecord, why: StreamEndReason): Promise<void> {
    const { store, live, observer } = this.ctx;
    // Told as the players' app last saw it (its extra info may have changed since this record was read).
    const current = (await store.publication(publication.appID, publication.streamID)) ?? publication;
    const stream = streamInfoOf(current);
    const ended: EventToLog = {
      event: { type: 'streamUpdate', updateType: UpdateType.Delete, streams: [stream] },
      from: publication.sessionID,
    };
    const dropped = await store.dropPublication(publication.appID, publication, ended);
    if (!dropped) return;
    const media = live.publisherMedia(dropped.publication.publicationID);
    live.removePublication(dropped.publication.publicationID);
    const room = dropped.logged && (await store.room(publication.appID, publication.roomID));
    if (room && dropped.logged) {
      await this.ctx.feeds.logged(room, dropped.logged);
      observer.emit('streamClosed', { ...refOf(room, dropped.logged), stream, reason: why });
    }
    // Closing the media closes every subscriber, which tells each player (see play()).
    media?.close();
  }

  async unpublish(appID: number, sessionID: string, streamID: string): Promise<Outcome<ReplyData<'unpublish'>>> {
    return this.ctx.queues.run(appID, async () => {
      const publication = await this.ctx.store.publication(appID, streamID);
      // Stopping what is not running is not an error.
      if (publication?.sessionID === sessionID) await this.dropPublication(publication, 'stopped');
      return ok({});
    });
  }

  async play(appID: number, sessionID: string, req: ClientRequest<'play'>): Promise<Outcome<ReplyData<'play'>>> {
    const { store, live, queues } = this.ctx;
    const invalid = validateStreamID(req.streamID);
    if (invalid) return fail(invalid as FailureCode, 'invalid streamID');
    const started = await queues.run(appID, async () => {
      if (!(await store.session(appID, sessionID))) return fail(ErrorCode.NotLoggedIn, 'not logged in');
      const previous = await store.play(appID, sessionID, req.streamID);
      if (previous) await this.dropPlay(previous);
      const { maxPlaysPerSession } = this.limits;
      if ((await store.playsOfSession(appID, sessionID)).length >= maxPlaysPerSession) {
        return fail(ErrorCode.PlayFailed, `at most ${maxPlaysPerSession} streams played per user`);
      }
      const publication = await this.liveStream(appID, sessionID, req.streamID);
      const local = publication && live.publisherMedia(publication.publicationID);
      const elsewhere = publication && !local && publication.mediaNode !== this.ctx.nodes.nodeId;
      if (!publication) return fail(ErrorCode.StreamNotFound, `stream ${req.streamID} does not exist`);
      // Announced, its publisher re-establishing its media: the player tries again.
      if (!local && !elsewhere) return fail(ErrorCode.PlayInterrupted, `stream ${req.streamID} is being re-established`);
      const play: PlayRecord = { playID: randomUUID(), appID, sessionID, streamID: req.streamID, attempt: req.attempt };
      const added = await store.addPlay(play, maxPlaysPerSession);
      return added.code === 0 ? ok({ play, publication, local }) : added;
    });
    if (started.code !== 0) return started;
    const { play, publication } = started.data;

    let media;
    try {
      const source = started.data.local ?? (await this.relayed(publication));
      media = await source.subscribe(req.sdp, req.video);
    } catch (err) {
      void queues.run(appID, () => this.dropPlay(play));
      return this.mediaFailure(err, ErrorCode.PlayFailed);
    }
    return queues.run(appID, async () => {
      if ((await store.play(appID, sessionID, req.streamID))?.playID !== play.playID || media.closed) {
        media.close();
        await this.dropPlay(play);
        return fail(ErrorCode.StreamNotFound, `stream ${req.streamID} ended`);
      }
      live.setPlayMedia(play, media);
      if (req.muted) media.setMuted(req.muted);
      media.observer.once('closed', () => void queues.run(appID, () => this.playEnded(play, publication)));
      for (const event of MEDIA_NOTICES) {
        media.observer.on(event, () => {
          if (live.playMedia(play.playID) === media)
            live.send(sessionID, { type: MEDIA_NOTICE_TYPE[event], streamID: play.streamID, role: 'play' });
        });
      }
      return ok({ sdp: media.answer });
    });
  }

  /** A tap on a live stream's media, here or relayed from its node; undefined while it has none. */
  async tap(appID: number, streamID: string): Promise<MediaTap | undefined> {
    const publication = await this.ctx.store.publication(appID, streamID);
    if (!publication?.live) return undefined;
    const local = this.ctx.live.publisherMedia(publication.publicationID);
    if (local) return local.tap();
    if (publication.mediaNode === this.ctx.nodes.nodeId) return undefined; // its publisher is re-establishing its media
    try {
      return (await this.relayed(publication)).tap();
    } catch {
      return undefined;
    }
  }

  /** A stream whose media is on another server, relayed here. Rejects with RelayUnavailable. */
  private async relayed(publication: PublicationRecord): Promise<MediaPublisher> {
    const { appID, streamID, publicationID, mediaNode } = publication;
    const relay = this.media.relay;
    const from = relay && (await this.ctx.nodes.relayAddressOf(mediaNode));
    if (!relay || !from) throw new RelayUnavailable(`the server ${mediaNode} of stream ${streamID} is not in the cluster`);
    return relay.publisher(from, { appID, streamID, publicationID });
  }

  /** The stream `streamID` if it is announced in the session's room. */
  private async liveStream(appID: number, sessionID: string, streamID: string): Promise<PublicationRecord | undefined> {
    const { store } = this.ctx;
    const [session, publication] = await Promise.all([store.session(appID, sessionID), store.publication(appID, streamID)]);
    return publication?.live && publication.roomID === session?.roomID ? publication : undefined;
  }

  /** A play's media closed under it: the player is told whether to play again. */
  private async playEnded(play: PlayRecord, publication: PublicationRecord): Promise<void> {
    const { store, live } = this.ctx;
    if ((await store.play(play.appID, play.sessionID, play.streamID))?.playID !== play.playID) return;
    await this.dropPlay(play);
    // Still announced means its publisher is re-establishing media: play again soon. Else it is gone.
    const stillAnnounced = (await this.liveStream(play.appID, play.sessionID, play.streamID))?.publicationID === publication.publicationID;
    const code = stillAnnounced ? ErrorCode.PlayInterrupted : ErrorCode.StreamNotFound;
    live.send(play.sessionID, { type: 'playStopped', streamID: play.streamID, attempt: play.attempt, code });
  }

  async dropPlay(play: PlayRecord): Promise<void> {
    await this.ctx.store.dropPlay(play);
    this.ctx.live.takePlayMedia(play.playID)?.close();
  }

  async unplay(appID: number, sessionID: string, streamID: string): Promise<Outcome<ReplyData<'unplay'>>> {
    return this.ctx.queues.run(appID, async () => {
      const play = await this.ctx.store.play(appID, sessionID, streamID);
      if (play) await this.dropPlay(play);
      return ok({});
    });
  }

  /** Ends everything a session publishes and plays, as it ends. */
  async endSessionStreams(session: SessionRecord, why: StreamEndReason): Promise<void> {
    const { store } = this.ctx;
    for (const play of await store.playsOfSession(session.appID, session.sessionID)) await this.dropPlay(play);
    for (const publication of await store.publicationsOfSession(session.appID, session.sessionID))
      await this.dropPublication(publication, why);
  }

  /** The media a session publishes (`publish`) or plays as `streamID`. */
  private async endpointOf(
    appID: number,
    sessionID: string,
    role: MediaRole,
    streamID: string,
  ): Promise<MediaPublisher | MediaSubscriber | undefined> {
    const { store, live } = this.ctx;
    return this.ctx.queues.run(appID, async () => {
      if (role === 'play') {
        const play = await store.play(appID, sessionID, streamID);
        return play && live.playMedia(play.playID);
      }
      const publication = await store.publication(appID, streamID);
      return publication?.sessionID === sessionID ? live.publisherMedia(publication.publicationID) : undefined;
    });
  }

  /** New ICE credentials for the transport of a stream the session publishes or plays; nothing else changes. */
  async restartIce(appID: number, sessionID: string, req: ClientRequest<'restartIce'>): Promise<Outcome<ReplyData<'restartIce'>>> {
    const media = await this.endpointOf(appID, sessionID, req.role, req.streamID);
    const interrupted = interruptedCode(req.role);
    if (!media?.connected) return fail(interrupted, `no connected media transport for ${req.role} of ${req.streamID}`);
    try {
      return ok({ sdp: await media.restartIce(req.sdp) });
    } catch (err) {
      return this.mediaFailure(err, interrupted);
    }
  }

  /** Candidates a client trickled after its offer, for the transport of a stream it publishes or plays. */
  async addRemoteCandidates(
    appID: number,
    sessionID: string,
    role: MediaRole,
    streamID: string,
    candidates: readonly string[],
  ): Promise<Outcome<Record<string, never>>> {
    const media = await this.endpointOf(appID, sessionID, role, streamID);
    const interrupted = interruptedCode(role);
    if (!media) return fail(interrupted, `no media transport for ${role} of ${streamID}`);
    try {
      media.addRemoteCandidates(candidates);
      return ok({});
    } catch (err) {
      return this.mediaFailure(err, interrupted);
    }
  }

  /** A player's new choice of layer or view size (`playVideo`), or of what not to receive (`mutePlay`). */
  async changePlay(
    appID: number,
    sessionID: string,
    req: ClientRequest<'playVideo'> | ClientRequest<'mutePlay'>,
  ): Promise<Outcome<Record<string, never>>> {
    const play = await this.ctx.store.play(appID, sessionID, req.streamID);
    const media = play && this.ctx.live.playMedia(play.playID);
    if (!media) return fail(ErrorCode.StreamNotFound, `not playing ${req.streamID}`);
    if (req.type === 'playVideo') media.setVideo(req.video);
    else media.setMuted(req.muted);
    return ok({});
  }

  /** Stops a stream and refuses it until allowed again: its publisher gets 1003025, its players see it deleted. */
  async forbid(appID: number, streamID: string): Promise<void> {
    const { store, live } = this.ctx;
    await store.forbidStream(appID, streamID);
    const publication = await store.publication(appID, streamID);
    if (!publication) return;
    live.send(publication.sessionID, { type: 'publishStopped', streamID, code: ErrorCode.StreamForbidden });
    await this.dropPublication(publication, 'forbidden');
  }

  private mediaFailure(err: unknown, fallback: FailureCode): Failure {
    if (err instanceof SdpError) return fail(ErrorCode.InvalidSdp, err.message);
    // The publisher's server is gone or has moved the stream: the player tries again, and finds it where it is then.
    if (err instanceof RelayUnavailable) return fail(ErrorCode.PlayInterrupted, err.message);
    this.ctx.log.error({ err }, 'media plane failure');
    return fail(fallback, 'media negotiation failed');
  }
}

/** What a request on a stream's media transport fails with when that transport is not there (or not up). */
const interruptedCode = (role: MediaRole): FailureCode => (role === 'publish' ? ErrorCode.PublishInterrupted : ErrorCode.PlayInterrupted);

/** A token session may publish only with privilege 2, only listed streams (if listed), and only before it expires. */
function publishDenied(token: SessionToken | undefined, streamID: string, nowMs: number): Failure | undefined {
  if (!token) return undefined;
  if (token.expire <= nowMs / 1000) return fail(ErrorCode.PublishPrivilegeDenied, 'token expired: renew it to publish');
  const privileges = token.privileges;
  if (!privileges) return undefined;
  if (privileges.privilege['2'] !== 1) return fail(ErrorCode.PublishPrivilegeDenied, 'token does not allow publishing');
  const list = privileges.stream_id_list;
  if (list && list.length > 0 && !list.includes(streamID)) {
    return fail(ErrorCode.PublishPrivilegeDenied, `token does not allow publishing ${streamID}`);
  }
  return undefined;
}
