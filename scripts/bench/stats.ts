/** Summaries of latency samples (ms): median, p99, min, max, mean. Pure code. */
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
