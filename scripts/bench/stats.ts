/** Summaries of latency samples (ms): median, p99, min, max, mean. Pure code. */

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Linear-interpolation percentile (numpy's default) of ascending `sorted`; NaN when empty. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  return {
    n,
    median: percentileSorted(s, 0.5),
    p99: percentileSorted(s, 0.99),
    min: n ? s[0]! : NaN,
    max: n ? s[n - 1]! : NaN,
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
