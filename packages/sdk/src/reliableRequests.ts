/**
 * Requests that must not be lost across a reconnect (broadcast messages, custom commands, extra
 * info): numbered per engine, sent in order, and sent again after a reconnect until answered.
 * The server does each number once, so a request whose reply was lost is not done twice.
 */
import { ErrorCode, type ClientMessage } from '@parley/protocol';
import type { Reply, RequestBody, SignallingClient } from './signalling.js';

type ReliableType = Extract<ClientMessage, { clientSeq: number }>['type'];

interface Unanswered {
  type: ReliableType;
  body: object;
  resolve(reply: Reply<ReliableType>): void;
}

export class ReliableRequests {
  private nextSeq = 1;
  /** Sent or waiting to be sent, in order. */
  private readonly unanswered: Unanswered[] = [];
  private signalling: SignallingClient | null = null;

  send<T extends ReliableType>(type: T, body: Omit<RequestBody<T>, 'clientSeq'>): Promise<Reply<T>> {
    return new Promise((resolve) => {
      const request: Unanswered = { type, body: { ...body, clientSeq: this.nextSeq++ }, resolve: resolve as Unanswered['resolve'] };
      this.unanswered.push(request);
      if (this.signalling) this.transmit(request, this.signalling);
    });
  }

  /** Logged in or back after a reconnect: everything unanswered goes out again, in order. */
  connected(signalling: SignallingClient): void {
    this.signalling = signalling;
    for (const request of this.unanswered) this.transmit(request, signalling);
  }

  disconnected(): void {
    this.signalling = null;
  }

  /** The room ended: what was never answered fails with `code`. */
  ended(code: number): void {
    this.signalling = null;
    for (const request of this.unanswered.splice(0)) request.resolve({ code, message: 'not sent: the room ended' });
  }

  private transmit(request: Unanswered, signalling: SignallingClient): void {
    void signalling.request(request.type, request.body as RequestBody<ReliableType>).then((reply) => {
      // Without an answer it stays, and goes out again once the connection is back.
      if (reply.code === ErrorCode.Disconnected) return;
      const index = this.unanswered.indexOf(request);
      if (index < 0) return; // answered on an earlier connection
      this.unanswered.splice(index, 1);
      request.resolve(reply);
    });
  }
}
