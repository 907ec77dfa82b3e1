/**
 * Trickle ICE over HTTP (RFC 8840's `application/trickle-ice-sdpfrag`, as WHIP and WHEP PATCH it):
 * reading a client's fragment, and turning it into what the media plane takes and back. With
 * BUNDLE, every media section shares one transport, so candidates of any section count for it.
 */
import { ErrorCode } from '@parley/protocol';
import { fail, ok, type Outcome } from '../outcome.js';

export interface IceFragment {
  ufrag: string;
  pwd: string;
  /** Each a `candidate:…` value (without `a=`). */
  candidates: string[];
  endOfCandidates: boolean;
}

/** A fragment's lines: its ICE credentials (session level or in a media section), candidates, end-of-candidates. */
export function parseIceFragment(text: string): Outcome<IceFragment> {
  const fragment: IceFragment = { ufrag: '', pwd: '', candidates: [], endOfCandidates: false };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    if (!/^[a-z]=/.test(line)) return fail(ErrorCode.InvalidSdp, `not an SDP line: ${line.slice(0, 80)}`);
    if (line.startsWith('a=ice-ufrag:')) fragment.ufrag = line.slice('a=ice-ufrag:'.length);
    else if (line.startsWith('a=ice-pwd:')) fragment.pwd = line.slice('a=ice-pwd:'.length);
    else if (line.startsWith('a=candidate:')) fragment.candidates.push(line.slice(2));
    else if (line === 'a=end-of-candidates') fragment.endOfCandidates = true;
  }
  if (!fragment.ufrag || !fragment.pwd) return fail(ErrorCode.InvalidSdp, 'the fragment has no a=ice-ufrag and a=ice-pwd');
  return ok(fragment);
}

/** The ICE credentials of an SDP (its first), for comparing a fragment's with. */
export function iceCredentialsOf(sdp: string): { ufrag: string; pwd: string } {
  return { ufrag: /^a=ice-ufrag:(.*)$/m.exec(sdp)?.[1]?.trim() ?? '', pwd: /^a=ice-pwd:(.*)$/m.exec(sdp)?.[1]?.trim() ?? '' };
}

/** An ICE restart's fragment as an offer the media plane's `restartIce` reads: the new credentials and candidates. */
export function restartOfferOf(fragment: IceFragment): string {
  return [
    'v=0',
    'o=- 0 0 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 0',
    'c=IN IP4 0.0.0.0',
    `a=ice-ufrag:${fragment.ufrag}`,
    `a=ice-pwd:${fragment.pwd}`,
    ...fragment.candidates.map((candidate) => `a=${candidate}`),
    '',
  ].join('\r\n');
}

/** The answer to an ICE restart as a fragment: the server's new credentials and its candidates (of its first media section). */
export function answerFragmentOf(answer: string): string {
  const firstSection = answer.split(/\r?\nm=/)[1] ?? '';
  const { ufrag, pwd } = iceCredentialsOf(answer);
  const candidates = firstSection.split(/\r?\n/).filter((line) => line.startsWith('a=candidate:'));
  const mid = /^a=mid:(.*)$/m.exec(firstSection)?.[1]?.trim() ?? '0';
  const kind = /^(\w+)/.exec(firstSection)?.[1] ?? 'audio';
  return [
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${pwd}`,
    `m=${kind} 9 UDP/TLS/RTP/SAVPF 0`,
    `a=mid:${mid}`,
    ...candidates,
    'a=end-of-candidates',
    '',
  ].join('\r\n');
}
