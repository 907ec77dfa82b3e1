/**
 * setCaptureVolume: the microphone's sound through a Web Audio gain before it is sent. A call that
 * never sets another volume than 100 % sends the microphone's own track and runs no audio graph;
 * once one is set, the graph stays (at 100 %, a gain of 1), so that later changes need no switch
 * of tracks.
 */
export class CaptureGain {
  private volume = 100;
  /** Created by setVolume, which apps call from a user's gesture: a context made later may stay suspended (autoplay policy). */
  private context: AudioContext | undefined;
  /** Per microphone track: its gain and the track the gain feeds. */
  private readonly graphs = new Map<MediaStreamTrack, { source: MediaStreamAudioSourceNode; gain: GainNode; output: MediaStreamTrack }>();

  /** `onRunning` is called when the audio graph starts running, so that the senders switch to its output. */
  constructor(private readonly onRunning: () => void) {}

  /** 0–200 (%). */
  setVolume(volume: number): void {
    this.volume = volume;
    if (volume === 100 && !this.context) return;
    if (!this.context) {
      this.context = new AudioContext();
      this.context.onstatechange = () => {
        if (this.context?.state === 'running') this.onRunning();
      };
    }
    void this.context.resume().catch(() => undefined);
    for (const { gain } of this.graphs.values()) gain.gain.value = volume / 100;
  }

  /** The track to send for a microphone track: the gain's output, or the microphone's own while no graph runs. */
  output(microphone: MediaStreamTrack): MediaStreamTrack {
    const { context } = this;
    if (!context || context.state !== 'running') return microphone;
    for (const [track, graph] of this.graphs) {
      if (track.readyState === 'live') continue;
      this.disconnect(graph);
      this.graphs.delete(track);
    }
    let graph = this.graphs.get(microphone);
    if (!graph) {
      const source = context.createMediaStreamSource(new MediaStream([microphone]));
      const gain = context.createGain();
      gain.gain.value = this.volume / 100;
      const destination = context.createMediaStreamDestination();
      source.connect(gain).connect(destination);
      graph = { source, gain, output: destination.stream.getAudioTracks()[0]! };
      this.graphs.set(microphone, graph);
    }
    return graph.output;
  }

  close(): void {
    for (const graph of this.graphs.values()) this.disconnect(graph);
    this.graphs.clear();
    void this.context?.close().catch(() => undefined);
    this.context = undefined;
  }

  private disconnect({ source, gain, output }: { source: AudioNode; gain: AudioNode; output: MediaStreamTrack }): void {
    source.disconnect();
    gain.disconnect();
    output.stop();
  }
}
