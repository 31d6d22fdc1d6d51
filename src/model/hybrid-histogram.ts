/**
 * The hybrid histogram policy of "Serverless in the Wild" (Shahrad et al., USENIX ATC 2020, §4.2),
 * as a baseline. Per app (FunctionTraits.group), it keeps a histogram of idle times (IT: from the
 * end of the app's last execution to the next invocation) over a 4-hour range in 1-minute bins.
 *
 * - Pattern "certain" (coefficient of variation of the bin counts ≥ 2, fewer than half of the ITs
 *   out of range): head = bin of the 5th percentile, tail = bin of the 99th. The pre-warming window
 *   is head (lower edge) − 10%, the end of the keep-alive window is tail (upper edge) + 10%. With a
 *   zero pre-warming window the instance simply stays idle until that end; otherwise it is ended
 *   right after the execution and a new one is loaded at the pre-warming time, alive until the end.
 * - Pattern "uncertain" (CV < 2, which includes an app with no IT yet): standard keep-alive equal
 *   to the histogram range (4 h), no pre-warming.
 * - Pattern "out of bounds" (at least half of the ITs longer than the range): the paper forecasts
 *   the next IT with ARIMA and uses 15% margins (load at 0.85 × IT, alive until 1.15 × IT). This
 *   baseline forecasts with the mean of the last 8 ITs instead of a fitted ARIMA model (the
 *   out-of-range ITs in a one-day trace are few, which ARIMA cannot fit anyway).
 *
 * Thresholds and margins follow the paper and the dslab reproduction (cv_thr 2, oob_thr 0.5,
 * hist_margin 0.1, arima_margin 0.15). The histogram accumulates over the whole run, as in the paper.
 */
import { HOUR_MS, MINUTE_MS, type IdleContext, type PolicyExplanation, type PoolCounts } from './policy.js';
import { BasePolicy } from './policy-base.js';

export interface HybridHistogramOptions {
  rangeMs: number;
  binMs: number;
  headPercentile: number;
  tailPercentile: number;
  cvThreshold: number;
  oobThreshold: number;
  histMargin: number;
  forecastMargin: number;
  forecastSamples: number;
}

export const HYBRID_HISTOGRAM_DEFAULTS: Readonly<HybridHistogramOptions> = Object.freeze({
  rangeMs: 4 * HOUR_MS,
  binMs: MINUTE_MS,
  headPercentile: 0.05,
  tailPercentile: 0.99,
  cvThreshold: 2,
  oobThreshold: 0.5,
  histMargin: 0.1,
  forecastMargin: 0.15,
  forecastSamples: 8,
});

type Pattern = 'uncertain' | 'certain' | 'out-of-bounds';

class AppHistogram {
  readonly bins: Uint32Array;
  inRange = 0;
  oob = 0;
  sumSq = 0; // Σ bins[i]², for the CV
  readonly recent: number[] = [];
  lastFinish: number | null = null;
  busy = 0;

  constructor(n: number) {
    this.bins = new Uint32Array(n);
  }

  add(itMs: number, binMs: number, keepRecent: number): void {
    this.recent.push(itMs);
    if (this.recent.length > keepRecent) this.recent.shift();
    const b = Math.floor(itMs / binMs);
    if (b < this.bins.length) {
      const c = this.bins[b];
      this.sumSq += 2 * c + 1;
      this.bins[b] = c + 1;
      this.inRange++;
    } else this.oob++;
  }

  cv(): number {
    const n = this.bins.length;
    if (this.inRange === 0 || n < 2) return 0;
    const mean = this.inRange / n;
    const variance = (this.sumSq - n * mean * mean) / (n - 1);
    return Math.sqrt(Math.max(0, variance)) / mean;
  }

  percentileBin(p: number): number {
    let acc = 0;
    for (let i = 0; i < this.bins.length; i++) {
      acc += this.bins[i];
      if (acc / this.inRange >= p) return i;
    }
    return this.bins.length - 1;
  }
}

interface Windows {
  pattern: Pattern;
  /** Delay after the last execution's end before an instance is loaded (0: keep the used one). */
  prewarmMs: number;
  /** Time after the last execution's end at which the instance is ended. */
  endMs: number;
}

export class HybridHistogramPolicy extends BasePolicy {
  readonly name = 'hybrid-histogram';
  readonly options: Readonly<HybridHistogramOptions>;
  private readonly groups = new Map<string, AppHistogram>();

  constructor(options: Partial<HybridHistogramOptions> = {}) {
    super();
    this.options = Object.freeze({ ...HYBRID_HISTOGRAM_DEFAULTS, ...options });
  }

  private app(fn: string): AppHistogram {
    const g = this.traits.get(fn)?.group ?? fn;
    let h = this.groups.get(g);
    if (!h) {
      h = new AppHistogram(Math.round(this.options.rangeMs / this.options.binMs));
      this.groups.set(g, h);
    }
    return h;
  }

  override onArrival(fn: string, now: number, pool: PoolCounts): void {
    const h = this.app(fn);
    if (h.lastFinish !== null) {
      const it = h.busy > 0 ? 0 : Math.max(0, now - h.lastFinish);
      h.add(it, this.options.binMs, this.options.forecastSamples);
    }
    h.busy++;
    super.onArrival(fn, now, pool);
  }

  override onFinish(fn: string, now: number, durationMs: number, pool: PoolCounts): void {
    const h = this.app(fn);
    h.busy = Math.max(0, h.busy - 1);
    h.lastFinish = h.lastFinish === null ? now : Math.max(h.lastFinish, now);
    super.onFinish(fn, now, durationMs, pool);
  }

  private windows(h: AppHistogram): Windows {
    const o = this.options;
    const total = h.inRange + h.oob;
    if (total > 0 && h.oob / total >= o.oobThreshold) {
      const k = h.recent.length;
      const predicted = k === 0 ? o.rangeMs : h.recent.reduce((a, b) => a + b, 0) / k;
      return {
        pattern: 'out-of-bounds',
        prewarmMs: predicted * (1 - o.forecastMargin),
        endMs: predicted * (1 + o.forecastMargin),
      };
    }
    if (h.cv() < o.cvThreshold) return { pattern: 'uncertain', prewarmMs: 0, endMs: o.rangeMs };
    const head = h.percentileBin(o.headPercentile);
    const tail = h.percentileBin(o.tailPercentile);
    return {
      pattern: 'certain',
      prewarmMs: head * o.binMs * (1 - o.histMargin),
      endMs: (tail + 1) * o.binMs * (1 + o.histMargin),
    };
  }

  keepAliveMs(fn: string, now: number, ctx: IdleContext): number {
    const h = this.app(fn);
    const w = this.windows(h);
    const last = h.lastFinish;
    if (ctx.cause === 'finish' || last === null) return w.prewarmMs > 0 ? 0 : w.endMs;
    return Math.max(0, last + w.endMs - now); // pre-warmed: alive until the window's end
  }

  override prewarmAt(fn: string, now: number): number | null {
    const h = this.app(fn);
    if (h.lastFinish === null || h.busy > 0) return null;
    const w = this.windows(h);
    if (w.prewarmMs <= 0) return null;
    const at = h.lastFinish + w.prewarmMs;
    return at >= now ? at : null;
  }

  override explain(fn: string, now: number): PolicyExplanation {
    const h = this.app(fn);
    const w = this.windows(h);
    const window = { idleTimes: h.inRange, outOfRange: h.oob, cv: h.cv(), lastFinish: h.lastFinish };
    return this.explanation(fn, now, h.busy, window, { pattern: w.pattern, prewarmWindowMs: w.prewarmMs, keepAliveEndMs: w.endMs });
  }
}
