/**
 * Bitrate caps for a publisher's simulcast layers, from what their players' links carry. Layers
 * are a factor of two apart in size and rate, so a player whose link is a little short of the
 * layer its view asks for falls to half the resolution, where a direct call (one encoding that
 * follows the link) keeps its size at a lower bitrate. A layer whose players are all short of
 * its rate is encoded smaller instead, at the lowest of their budgets (the publisher's SDK sets
 * the encoding's maxBitrate), and they stay on it:
 *  - a player counts for the highest layer, not above its view's, whose smallest useful rate
 *    (its floor: a bit over the layer below's rate) its link carries;
 *  - a layer is capped only if every one of its players would take less than its rate
 *    uncapped (by a margin), so a cap never costs a player what it gets today; a user that states no budget
 *    (a relay to another node, a player that chose its layer) takes a layer as it comes;
 *  - so a cap is never below the layer's floor;
 *  - a player on a layer above the one its budget reaches (its estimate rose faster than its
 *    budget, which rises as a median) holds that layer at its floor.
 * The smallest layer stays on when no player uses it (dynacast pauses the others), a
 * fallback ready for a player whose link drops: it is kept at the least cap meanwhile, so that on
 * a short uplink its bits go to the layer that is watched.
 */

/** What a player's link carries for video, and the layer its view asks for. */
export interface VideoBudget {
  wanted: number;
  bps: number;
}

export interface LayerUser {
  /** Undefined: it takes the layers it uses as they come. */
  budget: VideoBudget | undefined;
  /** The layers it uses (gets, waits for a keyframe of, or is moving to), a bit per layer. */
  inUse: number;
}

/** A capped layer is worth its size only at the rate of the layer below, or more. */
const FLOOR_OVER_LAYER_BELOW = 1;
/**
 * A player's budget makes a layer uncapped only at this much over its uncapped rate: an encoder
 * freed of its cap overshoots as it ramps, and a budget measured while the link is not full
 * overstates it.
 */
const LIFT_OVER_NATURAL = 1.25;
/** The least the smallest layer is capped to. */
export const MIN_CAP_BPS = 60_000;

/**
 * Per layer, the cap in bits per second, 0 for none. `naturalBps`: each layer's rate uncapped (0
 * when unknown: such a layer is not capped), smallest first.
 */
export function layerCaps(naturalBps: readonly number[], users: Iterable<LayerUser>): number[] {
  const count = naturalBps.length;
  const floor = (layer: number): number => Math.max(MIN_CAP_BPS, layer === 0 ? 0 : FLOOR_OVER_LAYER_BELOW * naturalBps[layer - 1]!);
  const lowest = new Array<number>(count).fill(Infinity);
  const blocked = naturalBps.map((bps) => !(bps > 0));
  let used = 0;
  for (const { budget, inUse } of users) {
    used |= inUse;
    if (!budget) {
      for (let layer = 0; layer < count; layer++) if (inUse & (1 << layer)) blocked[layer] = true;
      continue;
    }
    let best = Math.min(budget.wanted, count - 1);
    while (best >= 0 && budget.bps < floor(best)) best--;
    if (best < 0) continue;
    const on = 31 - Math.clz32(inUse & ((1 << count) - 1));
    if (on > best) {
      // Its estimate made room for a layer its budget does not reach yet (the budget rises
      // slowly): that layer resumes at its floor, not uncapped, where it would not fit. It
      // counts from the moment the player is moved to it, before the paused layer is back.
      lowest[on] = Math.min(lowest[on]!, floor(on));
      continue;
    }
    if (budget.bps >= LIFT_OVER_NATURAL * naturalBps[best]!) blocked[best] = true;
    else lowest[best] = Math.min(lowest[best]!, budget.bps);
  }
  return lowest.map((bps, layer) => {
    if (blocked[layer]) return 0;
    if (bps !== Infinity) return Math.round(bps);
    const standby = layer === 0 && !(used & 1) && naturalBps[0]! > MIN_CAP_BPS;
    return standby ? MIN_CAP_BPS : 0;
  });
}

/** Caps are raised at most this often: an encoder needs about a second to settle on a new rate. A cap that falls falls at once, as its player's budget does. */
const UPDATE_INTERVAL_MS = 1000;
/** A layer's uncapped rate is measured again only this long after its cap was lifted or it was resumed, once its encoder is back up. */
const SETTLE_MS = 3000;
/** A cap is changed for a budget that moved by more than this share of it. */
const CHANGE_SHARE = 0.15;

/**
 * The caps a publisher is asked for, over time: each layer's uncapped rate (measured while it is
 * sent and not capped), and the caps last announced, changed only for a real change.
 */
export class LayerCapControl {
  private readonly naturalBps: number[];
  private caps: number[];
  /** From when each layer's rate is its uncapped rate: SETTLE_MS after its cap was lifted or it was resumed. */
  private readonly measurableFromMs: number[];
  private updatedAtMs = -Infinity;

  constructor(layerCount: number) {
    this.naturalBps = new Array<number>(layerCount).fill(0);
    this.caps = new Array<number>(layerCount).fill(0);
    this.measurableFromMs = new Array<number>(layerCount).fill(-Infinity);
  }

  /**
   * Called as often as wished with each layer's rate now, undefined for a layer paused (what it
   * was last measured at stays its uncapped rate): the caps to announce (bits per second, 0 for
   * none), or undefined for no change.
   */
  update(ratesBps: readonly (number | undefined)[], users: Iterable<LayerUser>, nowMs: number): number[] | undefined {
    ratesBps.forEach((bps, layer) => {
      if (bps === undefined) this.measurableFromMs[layer] = Infinity;
      else if (this.measurableFromMs[layer] === Infinity) this.measurableFromMs[layer] = nowMs + SETTLE_MS;
    });
    const due = nowMs - this.updatedAtMs >= UPDATE_INTERVAL_MS;
    if (due) {
      this.updatedAtMs = nowMs;
      this.caps.forEach((cap, layer) => {
        if (cap === 0 && nowMs >= this.measurableFromMs[layer]!) this.naturalBps[layer] = ratesBps[layer] ?? 0;
      });
    }
    const next = layerCaps(this.naturalBps, users);
    const changed = next.some((cap, layer) => {
      const before = this.caps[layer]!;
      const falls = cap !== 0 && (before === 0 || cap < (1 - CHANGE_SHARE) * before);
      return falls || (due && ((cap === 0) !== (before === 0) || Math.abs(cap - before) > CHANGE_SHARE * before));
    });
    if (!changed) return undefined;
    next.forEach((cap, layer) => {
      if (cap === 0 && this.caps[layer] !== 0) this.measurableFromMs[layer] = Math.max(this.measurableFromMs[layer]!, nowMs + SETTLE_MS);
    });
    this.caps = next;
    return next;
  }
}
