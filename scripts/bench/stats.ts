/** Summaries of samples (median, p99, min, max, mean) and a bootstrap interval of a median. Pure code. */
import { percentileSorted, sortedCopy } from '../../src/stats/percentile.js';

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = sortedCopy(samples);
  const n = s.length;
  return {
    n,
    median: percentileSorted(s, 0.5),
    p99: percentileSorted(s, 0.99),
    min: n ? s[0] : NaN,
    max: n ? s[n - 1] : NaN,
    mean: n ? s.reduce((a, b) => a + b, 0) / n : NaN,
  };
}

/** Milliseconds since `t0` (a process.hrtime.bigint() value). */
export function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The median of `xs` and its bootstrap confidence interval. */
export interface MedianCi {
  median: number;
  low: number;
  high: number;
  level: number;
}

/**
 * Percentile bootstrap of the median: `resamples` samples of `xs` drawn with replacement (a fixed
 * linear congruential generator, so a run's interval can be recomputed), the median of each; the
 * interval is their (1 - level)/2 and (1 + level)/2 quantiles. Pure.
 */
export function bootstrapMedian(xs: readonly number[], level = 0.95, resamples = 10_000, seed = 1): MedianCi {
  if (xs.length === 0) throw new RangeError('bootstrapMedian: no samples');
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const n = xs.length;
  const sample = new Float64Array(n);
  const medians = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) sample[i] = xs[Math.floor(next() * n)];
    medians[r] = percentileSorted(sample.sort(), 0.5);
  }
  medians.sort();
  return {
    median: percentileSorted(sortedCopy(xs), 0.5),
    low: percentileSorted(medians, (1 - level) / 2),
    high: percentileSorted(medians, (1 + level) / 2),
    level,
  };
}
