/** What a probe cluster got through (libwebrtc's probe_bitrate_estimator.cc). */

export interface ProbeResult {
  clusterId: number;
  /** What the link carried of the probe (min of send and receive rate), bits per second. */
  bps: number;
  completedAtMs: number;
}

/** The fewest probe packets that make a measurement, as libwebrtc's prober sends at least this many. */
const MIN_PROBE_PACKETS = 5;
/** At least this share of a cluster's packets and bytes must have arrived for a valid measurement. */
const MIN_PROBE_RECEIVED_FRACTION = 0.8;
const MAX_PROBE_INTERVAL_MS = 1000;
/** Receiving much faster than sending means the timing is broken, not that the link is fast. */
const MAX_PROBE_RECEIVE_SEND_RATIO = 2;
/** Receiving under 90 % of the send rate means the probe found the link's capacity; aim a little below it. */
const MIN_RATIO_FOR_UNSATURATED_LINK = 0.9;
const PROBE_TARGET_UTILIZATION = 0.95;
/** Clusters are forgotten this long after their last packet was sent, and beyond this many. */
const PROBE_CLUSTER_HISTORY_MS = 1000;
const MAX_PROBE_CLUSTERS = 8;

interface ProbeCluster {
  sentPackets: number;
  sentBytes: number;
  lastSentAtMs: number;
  reportedPackets: number;
  receivedPackets: number;
  receivedBytes: number;
  firstSendMs: number;
  lastSendMs: number;
  firstArrivalMs: number;
  lastArrivalMs: number;
  complete: boolean;
}

/** ProbeBitrateEstimator: once feedback has reported every packet of a cluster, the rate the link carried of it. */
export class ProbeBitrateEstimator {
  lastResult: ProbeResult | undefined;
  private readonly clusters = new Map<number, ProbeCluster>();

  onSent(clusterId: number, sizeBytes: number, sendTimeMs: number): void {
    let cluster = this.clusters.get(clusterId);
    if (cluster === undefined) {
      if (this.clusters.size >= MAX_PROBE_CLUSTERS) this.clusters.delete(this.clusters.keys().next().value as number);
      cluster = {
        sentPackets: 0,
        sentBytes: 0,
        lastSentAtMs: sendTimeMs,
        reportedPackets: 0,
        receivedPackets: 0,
        receivedBytes: 0,
        firstSendMs: Infinity,
        lastSendMs: -Infinity,
        firstArrivalMs: Infinity,
        lastArrivalMs: -Infinity,
        complete: false,
      };
      this.clusters.set(clusterId, cluster);
    }
    cluster.sentPackets++;
    cluster.sentBytes += sizeBytes;
    cluster.lastSentAtMs = sendTimeMs;
    cluster.complete = false;
  }

  /** A packet of the cluster was reported for the first time, received or lost. */
  onReported(clusterId: number): void {
    const cluster = this.clusters.get(clusterId);
    if (cluster !== undefined) cluster.reportedPackets++;
  }

  onReceived(clusterId: number, sendTimeMs: number, arrivalMs: number, sizeBytes: number): void {
    const cluster = this.clusters.get(clusterId);
    if (cluster === undefined) return;
    cluster.receivedPackets++;
    cluster.receivedBytes += sizeBytes;
    if (sendTimeMs < cluster.firstSendMs) cluster.firstSendMs = sendTimeMs;
    if (sendTimeMs > cluster.lastSendMs) cluster.lastSendMs = sendTimeMs;
    if (arrivalMs < cluster.firstArrivalMs) cluster.firstArrivalMs = arrivalMs;
    if (arrivalMs > cluster.lastArrivalMs) cluster.lastArrivalMs = arrivalMs;
  }

  /** Measures the clusters that feedback has now fully reported; returns the newest valid rate, if any. */
  completeClusters(nowMs: number): number | undefined {
    let bps: number | undefined;
    for (const [clusterId, cluster] of this.clusters) {
      if (!cluster.complete && cluster.reportedPackets >= cluster.sentPackets) {
        cluster.complete = true;
        const measuredBps = measure(cluster);
        if (measuredBps !== undefined) {
          bps = measuredBps;
          this.lastResult = { clusterId, bps, completedAtMs: nowMs };
        }
      }
      if (nowMs - cluster.lastSentAtMs > PROBE_CLUSTER_HISTORY_MS) this.clusters.delete(clusterId);
    }
    return bps;
  }
}

function measure(cluster: ProbeCluster): number | undefined {
  if (
    cluster.receivedPackets < Math.max(MIN_PROBE_PACKETS, MIN_PROBE_RECEIVED_FRACTION * cluster.sentPackets) ||
    cluster.receivedBytes < MIN_PROBE_RECEIVED_FRACTION * cluster.sentBytes
  ) {
    return undefined;
  }
  const sendIntervalMs = cluster.lastSendMs - cluster.firstSendMs;
  const receiveIntervalMs = cluster.lastArrivalMs - cluster.firstArrivalMs;
  if (!isValidProbeInterval(sendIntervalMs) || !isValidProbeInterval(receiveIntervalMs)) return undefined;
  // The intervals run from the first packet to the last, so one packet of the n falls outside each: an
  // average one. (libwebrtc leaves out the last packet sent and the first received, which its probes' equal
  // padding packets make the same; a cluster here mixes media and padding of any size.)
  const bytesWithin = (cluster.receivedBytes * (cluster.receivedPackets - 1)) / cluster.receivedPackets;
  const sendBps = (8000 * bytesWithin) / sendIntervalMs;
  const receiveBps = (8000 * bytesWithin) / receiveIntervalMs;
  if (receiveBps > MAX_PROBE_RECEIVE_SEND_RATIO * sendBps) return undefined;
  if (receiveBps < MIN_RATIO_FOR_UNSATURATED_LINK * sendBps) return PROBE_TARGET_UTILIZATION * receiveBps;
  return Math.min(sendBps, receiveBps);
}

function isValidProbeInterval(ms: number): boolean {
  return ms > 0 && ms <= MAX_PROBE_INTERVAL_MS;
}
