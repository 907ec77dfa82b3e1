import type { Socket } from 'node:net';

/**
 * Holds sockets' writes until the current turn of the event loop is over, so that the frames one
 * turn produces for a client (a reply and its pushes, or several room events in a burst of joins)
 * leave in one system call instead of one each.
 */
export class WriteBatch {
  /** Held sockets, with the bytes each had unsent when it was first held this turn. */
  private held = new Map<Socket, number>();

  /**
   * The bytes the client had not taken when this turn began: what this turn wrote is held here,
   * not the client's doing.
   */
  backlog(socket: Socket): number {
    return this.held.get(socket) ?? socket.writableLength;
  }

  hold(socket: Socket): void {
    if (this.held.has(socket)) return;
    if (this.held.size === 0) setImmediate(this.release);
    this.held.set(socket, socket.writableLength);
    socket.cork();
  }

  private readonly release = (): void => {
    const held = this.held;
    this.held = new Map();
    for (const socket of held.keys()) socket.uncork();
  };
}
