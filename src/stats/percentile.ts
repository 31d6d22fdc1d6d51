/**
 * Percentiles of samples, the one implementation for the daemon, the policies, the simulator and
 * the benchmark scripts. Pure code.
 *
 * Two rules, because callers need both:
 *   - 'linear' (the default): linear interpolation between the two closest ranks, numpy's default
 *     (`(n - 1) × p`); the median of an even count is the mean of the middle two. For reports.
 *   - 'step': the sample at index ⌊p × n⌋ (clamped to the last), always one of the samples and
 *     cheap to reason about; the policies' plans and the daemon's latency window use it, and the
 *     simulator's results depend on it (changing it would change every replay).
 */

export type PercentileRule = 'linear' | 'step';

/**
 * The p-th percentile (0 ≤ p ≤ 1) of `sorted`, which must be in ascending order; NaN when empty.
 * Throws RangeError for p outside [0, 1].
 */
export function percentileSorted(sorted: ArrayLike<number>, p: number, rule: PercentileRule = 'linear'): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile: p must be within [0, 1], got ${p}`);
  const n = sorted.length;
  if (n === 0) return NaN;
  if (rule === 'step') return sorted[Math.min(n - 1, Math.floor(p * n))];
  const pos = (n - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Ascending copy of `values` (numeric order, not the default string order). */
export function sortedCopy(values: ArrayLike<number>): number[] {
  return Array.from(values).sort((a, b) => a - b);
}

/** The p-th percentile of `values` in any order (they are not modified); NaN when empty. */
export function percentile(values: ArrayLike<number>, p: number, rule: PercentileRule = 'linear'): number {
  return percentileSorted(sortedCopy(values), p, rule);
}
