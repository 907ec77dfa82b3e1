/**
 * GStreamer's WHIP client (Debian's `simple-whip-client`, webrtcbin) publishing a test pattern in
 * VP8 and a tone in Opus, as a user would run it against a WHIP endpoint.
 *
 * Debian 12's `whip-client` links libsoup 2, while libnice links libsoup 3 through its UPnP port
 * mapping (libgupnp-igd); the two abort in one process ("libsoup2 symbols detected"). The client
 * runs with a stand-in libgupnp-igd, built here, whose `thread_new` returns NULL: libnice then maps
 * no ports over UPnP, which nothing on a test link answers anyway.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestHost } from './network.js';

const IGD_STAND_IN = `
void *gupnp_simple_igd_thread_new(void) { return 0; }
unsigned long gupnp_simple_igd_get_type(void) { return 80; /* G_TYPE_OBJECT: never cast, the agent has no IGD */ }
void gupnp_simple_igd_add_port(void) {}
void gupnp_simple_igd_remove_port_local(void) {}
`;

const AUDIO =
  'audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue ! ' +
  'application/x-rtp,media=audio,encoding-name=OPUS,payload=100';
const video = (fps: number): string =>
  `videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=${fps}/1 ! videoconvert ! queue ! ` +
  'vp8enc deadline=1 keyframe-max-dist=60 ! rtpvp8pay pt=96 ssrc=2 ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=96';

export interface WhipClient {
  /** What it printed so far. */
  output(): string;
  /** Resolves when it exits by itself (an HTTP error, ICE failure), with its exit code. */
  readonly exited: Promise<number | null>;
  /** Stops it as a user would (SIGINT: it sends DELETE to its resource), then kills it if it hangs; removes its files. */
  stop(): Promise<void>;
}

export function startWhipClient({
  url,
  token,
  host,
  trickle = true,
  relayed = false,
  fps = 30,
}: {
  url: string;
  token: string;
  /** The namespace it runs in (libnice leaves out loopback addresses, so it needs a host of a test network). */
  host: TestHost;
  /** Candidates sent in PATCH requests after the offer, or all in the offer. */
  trickle?: boolean;
  /** Only through the TURN servers of the answer's `Link: rel="ice-server"` headers. */
  relayed?: boolean;
  fps?: number;
}): WhipClient {
  const dir = mkdtempSync(join(tmpdir(), 'parley-whip-'));
  writeFileSync(join(dir, 'igd.c'), IGD_STAND_IN);
  execFileSync('gcc', [
    '-shared',
    '-fPIC',
    '-Wl,-soname,libgupnp-igd-1.0.so.4',
    '-o',
    join(dir, 'libgupnp-igd-1.0.so.4'),
    join(dir, 'igd.c'),
  ]);
  const argv = host.command([
    'env',
    `LD_LIBRARY_PATH=${dir}`,
    'whip-client',
    '--url',
    url,
    '--token',
    token,
    '--audio',
    AUDIO,
    '--video',
    video(fps),
    '--log-level',
    '4',
    '--disable-colors',
    ...(trickle ? [] : ['--no-trickle']),
    ...(relayed ? ['--follow-link', '--force-turn'] : []),
  ]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(kill);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
