/**
 * The business server's recording and mixing, for the page's Record and Mix buttons. They exist
 * with a production server only: the page then has a `tokenUrl`, and the business server there
 * holds the app's server secret that the server API needs.
 */
interface ApiReply {
  Code: number;
  Message: string;
  Data?: { TaskId?: string; StreamId?: string; Status?: number; RecordFiles?: Array<{ FileId: string; Duration: number }> };
}

export class BusinessActions {
  constructor(
    /** The business server's origin. */
    private readonly base: string,
  ) {}

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiReply> {
    // A text/plain body keeps the request simple (no CORS preflight).
    const init = body === undefined ? { method } : { method, body: JSON.stringify(body) };
    const reply = (await (await fetch(new URL(path, this.base), init)).json()) as ApiReply;
    if (reply.Code !== 0) throw new Error(`${reply.Code} ${reply.Message}`);
    return reply;
  }

  /** Starts recording the room; resolves with the task's ID. */
  async startRecording(roomID: string): Promise<string> {
    return (await this.call('POST', `/rooms/${encodeURIComponent(roomID)}/recording`)).Data!.TaskId!;
  }

  /** Stops the task, then waits until its files are finished; resolves with them. */
  async stopRecording(taskID: string): Promise<Array<{ FileId: string; Duration: number }>> {
    await this.call('POST', `/recordings/${encodeURIComponent(taskID)}/stop`);
    for (;;) {
      const { Data } = await this.call('GET', `/recordings/${encodeURIComponent(taskID)}`);
      if (Data?.Status !== 2) return Data?.RecordFiles ?? [];
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** Mixes the streams side by side into the room's mixed stream (again: changes them); resolves with its streamID. */
  async mix(roomID: string, streamIDs: string[]): Promise<string> {
    return (await this.call('POST', `/rooms/${encodeURIComponent(roomID)}/mix`, { streamIDs })).Data!.StreamId!;
  }
}
