/**
 * The media connection of one published or played stream and what keeps it up. Publishers and
 * players differ only in what they ask the server and what they report; the rest is here:
 *
 *   idle → connecting: a transport is negotiated (offer → server → answer → ICE and DTLS up)
 *   connecting → flowing
 *   flowing → restarting: the media due (RTP on a play, the server's RTCP on a publish) has not
 *     arrived for `mediaStallMs`, the server says its media does not arrive there, or ICE
 *     failed: ICE restarts on the same transport (DTLS, SRTP and the media above stay), one
 *     every few seconds while none brings media back
 *   restarting → flowing: packets arrive again after a restart's answer
 *   flowing → restarting (quiet): the server moved the transport's media to another of its
 *     threads: ICE restarts at once, and the owner hears nothing unless it fails (then as below)
 *   restarting → connecting: the restart is refused, or brings nothing back within the connect
 *     timeout, or the server still receives nothing: a new transport
 *   restarting, signalling lost: the restart waits for it; once the session is resumed and the
 *     server still has the stream, it goes on (`resume`), keeping the transport and what the
 *     server holds of it (its players notice nothing)
 *   any → waiting → connecting: a failed attempt or transport, after the backoff
 *   any → idle: stop(), or a failure no retry can fix (the owner is told)
 */
import { ErrorCode, LivenessJudge, type MediaRole } from '@parley/protocol';
import type { EngineContext } from './context.js';
import type { MediaTransport } from './platform.js';
import { negotiate } from './negotiation.js';
import { QualityMonitor, type MediaSample } from './quality.js';
import { ReconnectPolicy } from './reconnectPolicy.js';
import type { Reply, SignallingClient } from './signalling.js';

/** What the server says of a transport: it receives nothing on it, or it moved its media to another of its threads. */
export type MediaNotice = 'stalled' | 'moved';

export interface MediaLinkOwner {
  readonly role: MediaRole;
  /** The stream as the server knows it. */
  streamID(): string;
  /** Its room's signalling client while logged in, else null. */
  signalling(): SignallingClient | null;
  /** A new transport for attempt number `attempt`; undefined when this platform cannot make one. */
  createTransport(attempt: number): MediaTransport | undefined;
  /** Asks the server to publish or play with `offer`. */
  exchange(signalling: SignallingClient, offer: string, attempt: number): Promise<Reply<'publish' | 'play'>>;
  /** Whether the server must be sending now (the stream carries media this side takes): liveness is judged only then. */
  mediaDue(): boolean;
  /** Media flows: once connected, and again after a stall. */
  flowing(): void;
  /** Media stopped, or an attempt failed in a way another may fix: the link tries again by itself. */
  interrupted(): void;
  /** The link gave up (refused by the server, impossible here, or out of its retry window) and is idle. */
  failed(code: number, message: string): void;
  quality(from: MediaSample, to: MediaSample): void;
}

export interface MediaLinkOptions {
  /** An interrupted attempt's code (PublishInterrupted, PlayInterrupted): with Disconnected and ConnectionBroken, what a new attempt may fix. */
  interruptedCode: number;
  /** The longest wait between attempts (default: the reconnect policy's). */
  maxRetryDelayMs?: number;
  /** Give up with `code` when media has not flowed for `afterMs` of retrying; without it, retry for ever. */
  giveUp?: { afterMs: number; code: number };
}

type Timer = ReturnType<typeof setTimeout>;
/** What a connected transport has: its quality reports and the watch on what arrives. */
type Connected = { attempt: number; transport: MediaTransport; quality: QualityMonitor; watch: Timer };
type Phase =
  | { kind: 'idle' }
  /** For the backoff before the next attempt, or (no timer) for signalling: the owner calls connect() once back. */
  | { kind: 'waiting'; timer?: Timer }
  | { kind: 'connecting'; attempt: number; transport: MediaTransport }
  | ({ kind: 'flowing' } & Connected)
  | Restarting;
/**
 * `round`: restarts so far; `mediaAtAnswer`: the count of media once the latest restart's answer
 * was applied (growth past it is recovery); `unanswered`: the latest restart's offer, while its
 * request was lost with the signalling; `quiet`: the owner was not told (the server moved the
 * media), and is only if the restart fails.
 */
type Restarting = {
  kind: 'restarting';
  quiet: boolean;
  deadline: Timer;
  round: number;
  roundTimer?: Timer;
  mediaAtAnswer?: number;
  unanswered?: string;
} & Connected;

/** How long one ICE restart is given to bring media back before the next one. */
const RESTART_ROUND_MS = 2_000;

export class MediaLink {
  private phase: Phase = { kind: 'idle' };
  private attempts = 0;
  private readonly policy: ReconnectPolicy;
  /** Attempts since media last flowed, and since when. */
  private retries: { count: number; sinceMs: number } | undefined;
  /** When the latest ICE restart began; a stall the server still reports within the connect timeout means it did not help. */
  private lastRestartMs = -Infinity;
  private readonly retryable: ReadonlySet<number>;

  constructor(
    private readonly ctx: EngineContext,
    private readonly owner: MediaLinkOwner,
    private readonly options: MediaLinkOptions,
  ) {
    this.policy = new ReconnectPolicy({ windowMs: options.giveUp?.afterMs ?? Infinity, maxDelayMs: options.maxRetryDelayMs });
    this.retryable = new Set([options.interruptedCode, ErrorCode.Disconnected, ErrorCode.ConnectionBroken]);
  }

  /** The number of the latest attempt (the server names plays by it). */
  get attempt(): number {
    return this.attempts;
  }

  /** The transport while connected (media flowing or being restarted). */
  get transport(): MediaTransport | undefined {
    return this.phase.kind === 'flowing' || this.phase.kind === 'restarting' ? this.phase.transport : undefined;
  }

  /** A new attempt now, dropping whatever there is. */
  connect(): void {
    this.release();
    const signalling = this.owner.signalling();
    if (!signalling) {
      this.phase = { kind: 'waiting' };
      return;
    }
    const attempt = ++this.attempts;
    const transport = this.owner.createTransport(attempt);
    if (!transport) return this.owner.failed(ErrorCode.UnsupportedRequest, '');
    this.phase = { kind: 'connecting', attempt, transport };
    void negotiate(
      transport,
      (offer) => this.owner.exchange(signalling, offer, attempt),
      this.ctx.timeouts.mediaConnectTimeoutMs,
      this.options.interruptedCode,
    ).then((result) => {
      if (this.phase.kind !== 'connecting' || this.phase.attempt !== attempt) return;
      if (result.code === 0) return this.connected(attempt, transport);
      this.release();
      if (!this.retryable.has(result.code)) return this.owner.failed(result.code, 'message' in result ? result.message : '');
      this.owner.interrupted();
      this.retryLater();
    });
  }

  /** Drops the transport and tries again after the backoff, or gives up once the retry window is over. */
  retryLater(): void {
    this.release();
    const now = Date.now();
    this.retries ??= { count: 0, sinceMs: now };
    const delay = this.policy.nextDelay(this.retries.count++, now - this.retries.sinceMs);
    if (delay === null) {
      this.retries = undefined;
      return this.owner.failed(this.options.giveUp!.code, `${this.owner.role} retry window exceeded`);
    }
    this.phase = { kind: 'waiting', timer: setTimeout(() => this.connect(), delay) };
  }

  /**
   * The server receives nothing on this transport: restart its ICE, or give it up if a restart
   * just failed to help. Or it moved the transport's media: restart its ICE now, quietly (a
   * restart under way starts a new round: its answer came from where the media was).
   */
  serverNotice(notice: MediaNotice): void {
    const { phase } = this;
    if (notice === 'moved') {
      if (phase.kind === 'flowing') this.restartIce(phase, true);
      else if (phase.kind === 'restarting') this.restartRound(phase);
      return;
    }
    if (phase.kind !== 'flowing') return;
    if (Date.now() - this.lastRestartMs < this.ctx.timeouts.mediaConnectTimeoutMs) {
      this.owner.interrupted();
      return this.retryLater();
    }
    this.restartIce(phase);
  }

  /**
   * The signalling session is back (resumed) and the server still has this stream: true when the
   * transport is kept, flowing or with its ICE restart going on (a new round, over the resumed
   * session); false when there is none to keep, and the owner must connect anew.
   */
  resume(): boolean {
    const phase = this.phase;
    if (phase.kind === 'flowing') return true;
    if (phase.kind !== 'restarting') return false;
    clearTimeout(phase.roundTimer);
    this.restartRound(phase, phase.unanswered);
    return true;
  }

  /** Back to idle, dropping everything. */
  stop(): void {
    this.release();
    this.retries = undefined;
  }

  private connected(attempt: number, transport: MediaTransport): void {
    this.retries = undefined;
    const quality = new QualityMonitor(
      () => transport.stats(),
      this.ctx.timeouts.qualityIntervalMs,
      (from, to) => this.owner.quality(from, to),
    );
    const judge = new LivenessJudge(this.ctx.timeouts.mediaStallMs);
    const watch = setInterval(() => void this.watch(transport, judge), judge.sampleIntervalMs);
    this.phase = { kind: 'flowing', attempt, transport, quality, watch };
    transport.onStateChange((state) => {
      if (state === 'failed' && this.phase.kind === 'flowing' && this.phase.transport === transport) this.restartIce(this.phase);
    });
    this.owner.flowing();
  }

  private async watch(transport: MediaTransport, judge: LivenessJudge): Promise<void> {
    const sample = await transport.mediaProgress().catch(() => undefined);
    const phase = this.phase;
    if (sample === undefined || this.transport !== transport) return;
    const change = judge.observe(sample, Date.now(), this.owner.mediaDue());
    if (phase.kind === 'flowing' && change?.kind === 'stalled') this.restartIce(phase);
    else if (phase.kind === 'restarting' && phase.mediaAtAnswer !== undefined && sample.media > phase.mediaAtAnswer) {
      this.recovered(phase);
    }
  }

  /**
   * Media stopped on a connected transport (Requesting), or was moved (`quiet`: nothing shown):
   * ICE restarts until media comes back or the deadline passes.
   */
  private restartIce(connected: Connected, quiet = false): void {
    if (!quiet) this.owner.interrupted();
    this.lastRestartMs = Date.now();
    const phase: Restarting = {
      ...connected,
      kind: 'restarting',
      quiet,
      round: 0,
      deadline: setTimeout(() => this.restartFailed(phase), this.ctx.timeouts.mediaConnectTimeoutMs),
    };
    this.phase = phase;
    this.restartRound(phase);
  }

  /**
   * One ICE restart: new credentials both sides, checks start over. An `unanswered` offer (its
   * request was lost with the signalling) is sent again as it is: the server either never had it
   * or answers it again, and the agent's credentials and candidates' generation stay those the
   * server answers for (another restart on top would leave the agent a generation ahead of the
   * server's answer, whose candidates it would then ignore).
   */
  private restartRound(phase: Restarting, unanswered?: string): void {
    const round = ++phase.round;
    phase.mediaAtAnswer = undefined;
    phase.unanswered = undefined;
    const current = (): boolean => this.phase === phase && phase.round === round;
    const signalling = this.owner.signalling();
    if (!signalling) return; // reconnecting: the deadline brings a new transport, unless the owner connects sooner
    const { transport } = phase;
    void (async () => {
      const offer = unanswered ?? (await transport.restartIce());
      const reply = await signalling.request('restartIce', { streamID: this.owner.streamID(), role: this.owner.role, sdp: offer });
      if (!current()) return;
      // The signalling broke meanwhile: the round goes on once the session is resumed (see resume), or the deadline passes.
      if (reply.code === ErrorCode.Disconnected) {
        phase.unanswered = offer;
        return;
      }
      if (reply.code !== 0 || !('data' in reply)) return this.restartFailed(phase);
      await transport.applyAnswer(reply.data.sdp);
      const { media } = await transport.mediaProgress();
      if (!current()) return;
      phase.mediaAtAnswer = media;
      // Checks that found no path are not repeated by every agent: a round that has not brought media back gives way to another.
      phase.roundTimer = setTimeout(() => current() && this.restartRound(phase), RESTART_ROUND_MS);
    })().catch(() => {
      if (current()) this.restartFailed(phase);
    });
  }

  /** ICE restarts did not bring media back: a new transport, the owner told now if it was not. */
  private restartFailed(phase: Restarting): void {
    if (phase.quiet) this.owner.interrupted();
    this.retryLater();
  }

  private recovered({ deadline, roundTimer, attempt, transport, quality, watch, quiet }: Restarting): void {
    clearTimeout(deadline);
    clearTimeout(roundTimer);
    this.retries = undefined;
    this.phase = { kind: 'flowing', attempt, transport, quality, watch };
    if (!quiet) this.owner.flowing();
  }

  private release(): void {
    const phase = this.phase;
    this.phase = { kind: 'idle' };
    if (phase.kind === 'waiting') clearTimeout(phase.timer);
    if (phase.kind === 'restarting') {
      clearTimeout(phase.deadline);
      clearTimeout(phase.roundTimer);
    }
    if (phase.kind === 'flowing' || phase.kind === 'restarting') {
      phase.quality.close();
      clearInterval(phase.watch);
    }
    if (phase.kind === 'connecting' || phase.kind === 'flowing' || phase.kind === 'restarting') phase.transport.close();
  }
}
