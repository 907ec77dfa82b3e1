import type { TransportState } from './platform.js';

/** Remembers the latest transport state so late listeners still hear it; 'failed' is final. */
export class TransportStateSignal {
  private state: TransportState | undefined;
  private readonly listeners: Array<(state: TransportState) => void> = [];

  set(state: TransportState): void {
    if (this.state === 'failed' || this.state === state) return;
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }

  listen(listener: (state: TransportState) => void): void {
    this.listeners.push(listener);
    if (this.state) listener(this.state);
  }
}
