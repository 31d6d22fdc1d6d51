/**
 * How often a first invocation (an arrival that finds no instance of its function) would find no
 * generic instance either, under the daemon's generic-pool sizing (src/pool/generic-sizer.ts):
 * every `periodMs` the target becomes base + max(burst of non-warm arrivals in the last 15 min,
 * predictedGenericNeed(Σ expectedColdRatePerHour)), and a taken generic instance is replaced after
 * `refillMs`. Pre-warms take generic instances too. One runtime (every trace function is one kind).
 */
import { genericTarget, predictedGenericNeed } from '../../src/model/generic-demand.js';

export interface GenericOptions {
  base: number;
  /** Time to spawn a replacement generic instance, ms. */
  refillMs: number;
  /** Sizing period, ms (the daemon's: 5 s). */
  periodMs: number;
}

export interface GenericResult {
  firstInvocations: number;
  /** First invocations that found no generic instance (they start from scratch). */
  misses: number;
  prewarms: number;
  prewarmMisses: number;
}

/** Takes (time, pre-warm?) of every instance creation in time order and the predicted rate per minute. */
export function genericMisses(
  creations: readonly { t: number; prewarm: boolean }[],
  predictedPerHour: (t: number) => number,
  o: GenericOptions,
): GenericResult {
  const r: GenericResult = { firstInvocations: 0, misses: 0, prewarms: 0, prewarmMisses: 0 };
  let available = o.base;
  const refills: number[] = []; // due times, ascending
  const recent: number[] = [];
  let target = o.base;
  let nextSizing = 0;
  const settle = (t: number): void => {
    while (refills.length > 0 && refills[0] <= t) {
      refills.shift();
      available++;
    }
    while (nextSizing <= t) {
      while (recent.length > 0 && recent[0] < nextSizing - 15 * 60_000) recent.shift();
      target = o.base + Math.max(genericTarget(recent, nextSizing, 0), predictedGenericNeed(predictedPerHour(nextSizing)));
      for (let k = available + refills.length; k < target; k++) refills.push(nextSizing + o.refillMs);
      nextSizing += o.periodMs;
    }
  };
  for (const c of creations) {
    settle(c.t);
    if (c.prewarm) r.prewarms++;
    else {
      r.firstInvocations++;
      recent.push(c.t);
    }
    if (available > 0) available--;
    else if (c.prewarm) r.prewarmMisses++;
    else r.misses++;
    if (available + refills.length < target) refills.push(c.t + o.refillMs);
  }
  return r;
}
