/**
 * Sizing of the generic (function-less) pool of one runtime, from the times of recent arrivals
 * that found no idle instance of their function (first-time arrivals and arrivals after a reap).
 * Each such arrival takes one generic instance; the pool is refilled in the background, so it must
 * hold enough for the largest burst expected before a refill catches up. Pure code.
 *
 *   target = base + min(cap, max over the window of arrivals within any `burstMs` span)
 *
 * A burst seen once keeps the pool larger for `windowMs`, then it decays back to `base`.
 */
export interface GenericDemandOptions {
  /** How far back to look, ms (default 15 min). */
  windowMs: number;
  /** Span in which arrivals count as one burst, ms (default 10 s). */
  burstMs: number;
  /** Most extra instances ever asked for (default 16). */
  cap: number;
}

export const GENERIC_DEMAND_DEFAULTS: Readonly<GenericDemandOptions> = Object.freeze({ windowMs: 15 * 60_000, burstMs: 10_000, cap: 16 });

/** `times` ascending (ms). Returns the generic instances to keep for a configured base. */
export function genericTarget(times: readonly number[], now: number, base: number, opts: GenericDemandOptions = GENERIC_DEMAND_DEFAULTS): number {
  const from = now - opts.windowMs;
  let lo = 0;
  while (lo < times.length && times[lo] < from) lo++;
  let best = 0;
  let j = lo;
  for (let i = lo; i < times.length; i++) {
    while (times[i] - times[j] > opts.burstMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return base + Math.min(opts.cap, best);
}

/**
 * Generic instances needed for arrivals the model predicts will find no instance of their
 * function (first-time arrivals, arrivals after a reap), `ratePerHour` summed over functions:
 * the 99th percentile of a Poisson count over one burst span, so a refill catches up in time.
 */
export function predictedGenericNeed(ratePerHour: number, opts: GenericDemandOptions = GENERIC_DEMAND_DEFAULTS): number {
  const lambda = (Math.max(0, ratePerHour) * opts.burstMs) / 3_600_000;
  if (lambda === 0) return 0;
  let k = 0;
  let p = Math.exp(-lambda);
  let cdf = p;
  while (cdf < 0.99 && k < opts.cap) {
    k++;
    p *= lambda / k;
    cdf += p;
  }
  return Math.min(opts.cap, k);
}
