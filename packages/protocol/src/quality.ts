/**
 * Quality levels from a link's round trip and loss: what the SDK reports of its streams and the
 * server of each user's links (onNetworkQuality) both follow these limits.
 */
import { StreamQualityLevel } from './enums.js';

/**
 * Levels by round-trip time and loss: the best level whose limits both hold. Beyond the last,
 * or with no media at all over the interval, Die; Unknown until a round trip or a loss is known.
 */
export const QUALITY_LIMITS: ReadonlyArray<{ level: StreamQualityLevel; rttMs: number; loss: number }> = [
  { level: StreamQualityLevel.Excellent, rttMs: 100, loss: 0.01 },
  { level: StreamQualityLevel.Good, rttMs: 200, loss: 0.03 },
  { level: StreamQualityLevel.Medium, rttMs: 400, loss: 0.08 },
  { level: StreamQualityLevel.Bad, rttMs: 800, loss: 0.25 },
];

export function qualityLevel(rttMs: number | undefined, loss: number | undefined, flowing: boolean): StreamQualityLevel {
  if (!flowing) return StreamQualityLevel.Die;
  if (rttMs === undefined && loss === undefined) return StreamQualityLevel.Unknown;
  const fits = QUALITY_LIMITS.find((limit) => (rttMs ?? 0) <= limit.rttMs && (loss ?? 0) <= limit.loss);
  return fits?.level ?? StreamQualityLevel.Die;
}

/** The worse of two levels; a known level is worse than Unknown. */
export function worseLevel(a: StreamQualityLevel, b: StreamQualityLevel): StreamQualityLevel {
  if (a === StreamQualityLevel.Unknown) return b;
  if (b === StreamQualityLevel.Unknown) return a;
  return Math.max(a, b);
}
