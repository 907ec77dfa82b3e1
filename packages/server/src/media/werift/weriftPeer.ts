/**
 * What publishers and subscribers share: a werift peer connection that answers a client's offer
 * (non-trickle: the answer carries all candidates), announces only the configured address, and
 * reports connected/closed exactly once.
 */
import { EventEmitter } from 'node:events';
import {
  CandidatePairState,
  candidateFromSdp,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  SessionDescription,
  useAbsSendTime,
  useAudioLevelIndication,
  useH264,
  useNACK,
  useOPUS,
  useRepairedRtpStreamId,
  useSdesMid,
  useSdesRTPStreamId,
  useTransportWideCC,
  useVP8,
  useVP9,
  type PeerConfig,
  type Protocol,
  type RTCRtpHeaderExtensionParameters,
  type RTCDtlsTransport,
  type RTCIceTransport,
  type RTCRtpTransceiver,
} from 'werift';
import { LivenessJudge } from '@parley/protocol';
import { SdpError, type EndpointEvents, type MediaStats } from '../core/types.js';
import {
  guardMedia,
  iceAgentInternals,
  iceTransportInternals,
  livenessSample,
  messageInternals,
  onEachIceAgent,
  withoutDefaultStunServer,
  type IceAgentInternals,
  type MediaReceived,
} from '@parley/protocol/rtp';
import type { IceSockets } from '../sockets/iceSockets.js';
import type { FastPath } from '../fastpath/fastPath.js';

export interface PeerOptions {
  sockets: IceSockets;
  listenIp: string;
  announcedIp?: string;
  connectTimeoutMs: number;
  /** A connected peer from which the media due (see `WeriftPeer.mediaKind`) does not arrive for this long is stalled. */
  mediaStallMs: number;
  /** The plane's numbers, which every peer adds to. */
  stats: MediaStats;
  /** How forwarded packets are sealed and sent. */
  fastPath: FastPath;
}

export interface NegotiatedCodecs {
  /** Opus; `audioRed` the RED format around it when the publisher sends RED. */
  audio?: RTCRtpCodecParameters;
  audioRed?: RTCRtpCodecParameters;
  video?: RTCRtpCodecParameters;
}

/** Adds generic NACK to a negotiated codec's feedback (the answer then offers it) unless it is there. */
export function addNack(codec: RTCRtpCodecParameters): void {
  if (!codec.rtcpFeedback.some((f) => f.type === 'nack' && !f.parameter)) codec.rtcpFeedback.push(useNACK());
}

/** `parameters` (an fmtp value, "a=1;b=2") with `set` merged in. */
export function withFormatParameters(parameters: string | undefined, set: Record<string, string>): string {
  const merged = new Map<string, string>();
  for (const pair of (parameters ?? '').split(';')) {
    const [key, value] = pair.split('=');
    if (key?.trim()) merged.set(key.trim(), value?.trim() ?? '');
  }
  for (const [key, value] of Object.entries(set)) merged.set(key, value);
  return [...merged].map(([key, value]) => `${key}=${value}`).join(';');
}

const rtx = (): RTCRtpCodecParameters => new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 });

/** What the server accepts from publishers. Players are offered exactly what their publisher sends. */
export const publishCodecs = (): Codecs => ({
  audio: [useOPUS(), new RTCRtpCodecParameters({ mimeType: 'audio/red', clockRate: 48000, channels: 2 })],
  video: [useVP8(), useVP9(), useH264(), rtx()],
});

export type Codecs = { audio: RTCRtpCodecParameters[]; video: RTCRtpCodecParameters[] };
export type HeaderExtensions = { audio: RTCRtpHeaderExtensionParameters[]; video: RTCRtpHeaderExtensionParameters[] };

/**
 * What publishers may send: transport-wide sequence numbers and send times for their congestion
 * control, the MID, the RIDs that name simulcast streams (repaired: their retransmissions), and
 * the level of each audio packet.
 */
export const publishHeaderExtensions = (): HeaderExtensions => ({
  audio: [useSdesMid(), useTransportWideCC(), useAudioLevelIndication()],
  video: [useSdesMid(), useSdesRTPStreamId(), useRepairedRtpStreamId(), useTransportWideCC(), useAbsSendTime()],
});

/** How long the server's own check of a client's new address may take to succeed. */
const REBINDING_CHECK_MS = 1000;

/** Trickled `candidate:` lines (with or without `a=`) as werift takes them; throws SdpError if one cannot be parsed or has no address. */
export function parseRemoteCandidates(candidates: readonly string[]): ReturnType<typeof candidateFromSdp>[] {
  let parsed;
  try {
    parsed = candidates.map((line) => candidateFromSdp(line.replace(/^a=/, '').replace(/^candidate:/, '')));
  } catch {
    throw new SdpError('a candidate cannot be parsed');
  }
  if (parsed.some((candidate) => !candidate.ip || !Number.isInteger(candidate.port))) throw new SdpError('a candidate has no address');
  return parsed;
}

export const isLoopback = (ip: string): boolean => ip.startsWith('127.') || ip === '::1';

export abstract class WeriftPeer<Events extends EndpointEvents & Record<keyof Events, unknown[]> = EndpointEvents> {
  readonly observer = new EventEmitter<Events>();
  /** The events every endpoint has, as this class emits them. */
  private get endpointObserver(): EventEmitter<EndpointEvents> {
    return this.observer as unknown as EventEmitter<EndpointEvents>;
  }
  protected readonly pc: RTCPeerConnection;
  protected readonly stats: MediaStats;
  /** What has authenticated from the client so far. */
  protected readonly received: MediaReceived;
  /** Whether the client must be sending now; a publisher that muted all it sends need not. */
  protected mediaDue = true;
  answer = '';
  /** `restarting`: an ICE restart's checks are under way or failed; the next restart or the deadline decides. */
  private state:
    { kind: 'new' } | { kind: 'connected' } | { kind: 'restarting'; round: number; deadline: NodeJS.Timeout } | { kind: 'closed' } = {
    kind: 'new',
  };
  private restartRounds = 0;
  private readonly connectTimer: NodeJS.Timeout;
  /** Since connected: whether media still arrives. */
  private liveness: LivenessJudge | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  /** ICE restarts are applied one at a time: the next waits for this one. */
  private restartQueue: Promise<unknown> = Promise.resolve();
  /** The ICE protocols whose incoming checks are followed (see followClientChecks). */
  private readonly followed = new WeakSet<object>();
  /** A move of the pair in use to the client's new address is under way. */
  private following = false;

  protected constructor(
    protected readonly options: PeerOptions,
    codecs: Codecs,
    headerExtensions: HeaderExtensions = { audio: [], video: [] },
  ) {
    const { listenIp, sockets } = options;
    this.stats = options.stats;
    const config: Partial<PeerConfig> = {
      codecs,
      headerExtensions,
      // No STUN/TURN: the server's own address is what clients must reach.
      iceServers: [],
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
      ...sockets.peerConfig,
      // The server only accepts ICE-TCP connections (its passive candidate); it opens none.
      iceFilterCandidatePair: (pair) =>
        pair.localCandidate.tcptype !== 'active' && (!isLoopback(listenIp) || isLoopback(pair.remoteCandidate.host)),
    };
    const guarded = guardMedia(
      onEachIceAgent(withoutDefaultStunServer(new RTCPeerConnection(config)), (agent) => sockets.adopt(agent)),
      this.stats.drops,
      options.fastPath.gcmOpener,
    );
    this.pc = guarded.pc;
    this.received = guarded.received;
    // Until connected; then the ICE transport's own states are followed (see watchTransport).
    this.pc.connectionStateChange.subscribe((s) => {
      if (this.state.kind !== 'new') return;
      if (s === 'connected') {
        this.state = { kind: 'connected' };
        clearTimeout(this.connectTimer);
        this.watchTransport();
        this.endpointObserver.emit('connected');
      } else if (s === 'failed' || s === 'closed') {
        this.close();
      }
    });
    this.connectTimer = setTimeout(() => this.close(), options.connectTimeoutMs);
  }

  get closed(): boolean {
    return this.state.kind === 'closed';
  }

  /** werift's DTLS transport (one for all, bundled). */
  private get transport(): RTCDtlsTransport | undefined {
    return this.pc.getTransceivers()[0]?.sender.dtlsTransport;
  }

  /** werift's ICE connection. */
  private get iceConnection(): IceAgentInternals | undefined {
    const connection = this.transport?.iceTransport.connection;
    return connection && iceAgentInternals(connection);
  }

  /** The packets the client must send while connected: RTP from a publisher, RTCP from a player. */
  protected abstract readonly mediaKind: 'rtp' | 'rtcp';

  /**
   * Once connected: keeps consent on every pair the ICE connection settles on (after a restart
   * too), and watches what arrives. Authenticated packets are counted as they are decrypted and
   * sampled here, so the packet path pays next to nothing.
   */
  private watchTransport(): void {
    const transport = this.transport;
    if (!transport) return;
    this.followClientChecks();
    // The client closed the association (an authenticated close_notify or fatal alert).
    transport.onStateChange.subscribe((state) => {
      if (state === 'closed' || state === 'failed') this.close();
    });
    transport.iceTransport.onStateChange.subscribe((state) => {
      // werift also says 'completed' when a restart's gathering ends: only a nominated pair is a connection.
      if ((state === 'connected' || state === 'completed') && this.iceConnection?.nominated) {
        if (this.state.kind === 'restarting') {
          clearTimeout(this.state.deadline);
          this.state = { kind: 'connected' };
        }
        this.followClientChecks();
      } else if ((state === 'failed' && this.state.kind !== 'restarting') || state === 'closed') {
        // Consent lost (no restart under way), or closed.
        this.close();
      }
    });
    const judge = new LivenessJudge(this.options.mediaStallMs);
    this.liveness = judge;
    this.livenessTimer = setInterval(() => {
      const change = judge.observe(livenessSample(this.received, this.mediaKind), performance.now(), this.mediaDue);
      if (change?.kind === 'stalled') {
        this.stats.mediaStalls[change.cause]++;
        this.endpointObserver.emit('stalled');
      }
    }, judge.sampleIntervalMs).unref();
  }

  /**
   * The client's new ICE credentials (an offer made after `restartIce()`) for the transport it
   * has: werift restarts its ICE agent on the same sockets, and DTLS, SRTP and the media above
   * carry on once a new pair is chosen. The answer is the first one with our new credentials.
   */
  restartIce(offer: string): Promise<string> {
    const restart = this.restartQueue.catch(() => undefined).then(() => this.applyIceRestart(offer));
    this.restartQueue = restart;
    return restart;
  }

  private async applyIceRestart(offer: string): Promise<string> {
    const iceTransport = this.transport?.iceTransport;
    if (!this.connected || !iceTransport) throw new SdpError('the media connection is not up');
    let media;
    try {
      media = SessionDescription.parse(offer).media[0];
    } catch {
      throw new SdpError('offer cannot be parsed');
    }
    const ice = media?.iceParams;
    if (!media || !ice?.usernameFragment || !ice.password) throw new SdpError('offer has no ICE credentials');
    const connection = iceTransport.connection;
    // A repeated request (the reply was lost) gets the same answer.
    if (ice.usernameFragment === connection.remoteUsername && ice.password === connection.remotePassword) return this.answer;
    const before = { ufrag: connection.localUsername, pwd: connection.localPassword, generation: connection.generation };
    if (this.state.kind === 'restarting') clearTimeout(this.state.deadline);
    const round = ++this.restartRounds;
    this.state = { kind: 'restarting', round, deadline: setTimeout(() => this.close(), this.options.connectTimeoutMs) };
    iceTransport.setRemoteParams({ usernameFragment: ice.usernameFragment, password: ice.password, iceLite: false });
    await iceTransport.gather();
    for (const candidate of media.iceCandidates) await iceTransport.addRemoteCandidate(candidate);
    await iceTransport.addRemoteCandidate(undefined);
    void this.checkUntilConnected(iceTransport, round);
    this.liveness?.rearm(performance.now());
    this.answer = this.answer
      .replaceAll(`a=ice-ufrag:${before.ufrag}`, `a=ice-ufrag:${connection.localUsername}`)
      .replaceAll(`a=ice-pwd:${before.pwd}`, `a=ice-pwd:${connection.localPassword}`)
      // A werift client pairs only with candidates of its current generation.
      .replaceAll(
        ` generation ${before.generation} ufrag ${before.ufrag}`,
        ` generation ${connection.generation} ufrag ${connection.localUsername}`,
      );
    return this.answer;
  }

  /**
   * Runs a restart's ICE checks. werift gives up on its own checks after about 1.5 s, and a path
   * that is still down fails them all; the client's checks may yet arrive (its agent keeps
   * checking, or it restarts again), so werift is set to wait for them again, until this round
   * connects, another replaces it, or the deadline closes the peer.
   */
  private async checkUntilConnected(iceTransport: RTCIceTransport, round: number): Promise<void> {
    const current = (): boolean => this.state.kind === 'restarting' && this.state.round === round;
    while (current()) {
      try {
        await iceTransport.start();
        return;
      } catch {
        // werift leaves the failed start's gate set, which would hold the next one for ever.
        iceTransportInternals(iceTransport).waitStart = undefined;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  addRemoteCandidates(candidates: readonly string[]): void {
    const iceTransport = this.transport?.iceTransport;
    const parsed = parseRemoteCandidates(candidates);
    // werift checks each pair it forms at once; a closed peer has nothing to add to.
    if (!iceTransport || this.closed) return;
    for (const candidate of parsed) void iceTransport.addRemoteCandidate(candidate);
  }

  /** The round trip of the ICE pair in use (consent checks measure it), if known. */
  protected rttMs(): number | undefined {
    const rtt = this.iceConnection?.nominated?.rtt;
    return typeof rtt === 'number' ? rtt * 1000 : undefined;
  }

  /**
   * What the client's checks (signed: see the protocol's mediaGuard) tell once connected:
   *
   * - Consent: werift keeps it (RFC 7675) by a check of its own every 5 s, sent once, and ends
   *   the connection 30 s after the last answer: at 50 % loss each way one in five connections
   *   died within a minute while media flowed both ways. The client checks the pair every few
   *   seconds too, repeating lost checks: each of its checks that arrives on the pair in use
   *   starts werift's consent over. A client that is gone sends none, and consent then lapses.
   * - A NAT rebinding: a client behind a NAT that changed its address or port goes on checking
   *   its pair in use, now from the new one, while werift would go on sending to the old one (it
   *   never replaces a nominated pair) until the client restarts ICE. A check that nominates
   *   (USE-CANDIDATE: the client's pair in use, as browsers and the Node.js SDK send it, not a
   *   check of a second path) from another address moves the pair in use there, once the
   *   server's own check of that address succeeds (only the client can answer it), as mediasoup
   *   follows a client's nominated tuple.
   */
  private followClientChecks(): void {
    const connection = this.iceConnection;
    const protocol = connection?.nominated?.protocol;
    if (!connection || !protocol || this.followed.has(protocol)) return;
    this.followed.add(protocol);
    protocol.onRequestReceived.subscribe((message, [host, port]) => {
      const pair = connection.nominated;
      if (!pair || pair.protocol !== protocol || (connection.state !== 'connected' && connection.state !== 'completed')) return;
      if (host === pair.remoteCandidate.host && port === pair.remoteCandidate.port) connection.queryConsent();
      else if (messageInternals(message).attributesKeys.includes('USE-CANDIDATE') && !this.following) {
        this.following = true;
        void this.followRebinding(connection, protocol, host, port).finally(() => (this.following = false));
      }
    });
  }

  private async followRebinding(connection: IceAgentInternals, protocol: Protocol, host: string, port: number): Promise<void> {
    // werift has just learned the address from the check (a peer-reflexive pair) and checks it back.
    const moved = connection.checkList.find(
      (p) => p.protocol === protocol && p.remoteCandidate.host === host && p.remoteCandidate.port === port,
    );
    for (
      const deadline = performance.now() + REBINDING_CHECK_MS;
      moved && moved.state !== CandidatePairState.SUCCEEDED && performance.now() < deadline;
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (!moved || moved.state !== CandidatePairState.SUCCEEDED || this.closed || connection.nominated?.protocol !== protocol) return;
    moved.nominated = true;
    connection.nominated = moved;
    connection.queryConsent();
    this.stats.natRebindings++;
  }

  /** Came up and is not closed (an ICE restart may be under way). */
  get connected(): boolean {
    return this.state.kind === 'connected' || this.state.kind === 'restarting';
  }

  /** Applies the client's offer, lets `prepare` set up transceivers, and produces the answer. */
  protected async negotiate(offer: string, prepare: (t: RTCRtpTransceiver) => void): Promise<void> {
    // A refused offer closes the peer: its connect timeout and ICE agent go with it.
    try {
      if (!/^v=0\r?\n/.test(offer) || !/^m=(audio|video) /m.test(offer)) throw new SdpError('offer has no audio or video section');
      // One stream is at most one audio and one video track.
      if ((offer.match(/^m=audio /gm)?.length ?? 0) > 1 || (offer.match(/^m=video /gm)?.length ?? 0) > 1) {
        throw new SdpError('offer has more than one audio or video section');
      }
      await this.pc.setRemoteDescription({ type: 'offer', sdp: offer });
      // An ICE restart's offer answered by a new peer connection (the endpoint's media moved to
      // another worker) comes from an agent in a later generation: ours starts in it, as werift
      // pairs only candidates of its agent's current generation (a werift client's too).
      const generation = Number(/^a=candidate:.* generation (\d+)/m.exec(offer)?.[1] ?? 0);
      for (const t of this.pc.getTransceivers()) t.dtlsTransport.iceTransport.connection.generation = generation;
      for (const t of this.pc.getTransceivers()) prepare(t);
      if (!this.pc.getTransceivers().some((t) => t.codecs.length > 0)) throw new SdpError('no codec in common');
      // The server takes the DTLS server role: werift as DTLS client waits 100 ms before its first
      // flight, while a browser client starts at once (Chromium first frame −30 to −60 ms).
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription({ type: 'answer', sdp: answer.sdp.replace(/^a=setup:active\b/gm, 'a=setup:passive') });
    } catch (err) {
      this.close();
      throw err instanceof SdpError ? err : new SdpError(`offer rejected: ${(err as Error).message}`);
    }
    if (this.pc.iceGatheringState !== 'complete') {
      await this.pc.iceGatheringStateChange.watch((s) => s === 'complete');
    }
    this.answer = this.announcedSdp(this.pc.localDescription?.sdp ?? '');
  }

  /** Keeps the candidates clients can use (not ICE-TCP active ones), on the announced address if set. */
  private announcedSdp(sdp: string): string {
    const { listenIp, announcedIp } = this.options;
    return sdp
      .split('\r\n')
      .filter((line) => !line.startsWith('a=candidate:') || !line.includes(' tcptype active'))
      .map((line) => (announcedIp && line.startsWith('a=candidate:') ? line.replace(` ${listenIp} `, ` ${announcedIp} `) : line))
      .join('\r\n');
  }

  close(): void {
    if (this.state.kind === 'closed') return;
    if (this.state.kind === 'restarting') clearTimeout(this.state.deadline);
    this.state = { kind: 'closed' };
    clearTimeout(this.connectTimer);
    clearInterval(this.livenessTimer);
    this.onClose();
    void this.pc.close().catch(() => undefined);
    this.endpointObserver.emit('closed');
  }

  protected abstract onClose(): void;
}
