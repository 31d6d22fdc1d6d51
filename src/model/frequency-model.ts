/**
 * Per-function frequency model: sliding windows of what a function's traffic looked like, and the
 * keep-alive / pre-warm / instance-count predictions made from them. Pure: no I/O, no timers, no
 * clock; every method takes `now` (ms, non-decreasing). See docs/pool-policy.md.
 *
 * Two windows:
 *   - arrivals per minute over the last `windowMs` (non-empty minute buckets, slid in O(1)), for
 *     the arrival rate and the concurrency the function needs (rate × duration, with bursts: a
 *     high quantile over the window's minutes, not the mean);
 *   - idle gaps per concurrency level. Level k is "the k-th instance": it is released when the
 *     number of running invocations drops from k to k−1 and needed again when it next rises to k.
 *     The gap between the two is one sample. Level 1 is the classic idle time (function entirely
 *     idle → next invocation). Consecutive similar gaps form one run (counted up to
 *     `maxRunCount`), the last `maxSamples` runs are kept, and a run's weight halves with every
 *     `halfLifeSamples` newer runs: a changed pattern takes over within a few dozen invocations
 *     whatever the function's rate, and a burst of identical short gaps does not push out the
 *     rarer long gap between bursts.
 *
 * A level's runs become log-uniform kernels (kernelsOf: narrow when gaps repeat, wide when a gap
 * is isolated), plus a prior that fades as the level's own weight grows. The model then picks the
 * plan for the instance released at that level: stay loaded from the release until `endMs`, or
 * (once the level has samples) stay until `keepMs` (often 0), unload and load again `prewarmMs`
 * after the release, until `endMs`. The plan minimises
 *     coldCostMs × P(cold) + E[idle ms] + prewarmCostMs × P(pre-warm) + holdFee × planned time
 * where a gap g is warm iff g < keepMs or prewarmMs ≤ g < endMs (see gap-plan.ts).
 * coldCostMs is the price of one cold start in idle time of the same instance: the knob that
 * trades cold starts against memory (HearthPolicy scales it per function for fairness).
 */
import { percentileSorted, sortedCopy } from '../stats/percentile.js';
import {
  DEFAULT_PRIOR_GAPS_MS,
  FREQUENCY_MODEL_DEFAULTS,
  type FrequencyModelOptions,
  type GapPoint,
  type GapPrior,
  type InstancePlan,
} from './frequency-options.js';
import { choosePlan, kernelsOf, type GapKernel } from './gap-plan.js';

export * from './frequency-options.js';
export { choosePlan, kernelsOf, type GapKernel } from './gap-plan.js';

/** A run of similar consecutive gaps (within the merge tolerance), counted up to a cap. */
interface Sample {
  gapMs: number;
  at: number;
  count: number;
}

/** Bins per doubling of the long-run gap histogram (2^(1/16): bins about 4.4 % wide, near the sample margins). */
const BINS_PER_OCTAVE = 16;

class Level {
  readonly samples: Sample[] = [];
  /** Long-run histogram of gaps: log-spaced bin → weight × scale (weights decay by rescaling). */
  readonly hist = new Map<number, number>();
  histScale = 1;
  histTotal = 0;
  releasedAt: number | null = null;
  reached = 0;
  version = 0;
  /** A sample since the last plan that the plan did not expect (it was cold under it). */
  surprised = false;
  plan: InstancePlan | null = null;
  planVersion = -1;
  planAt = -Infinity;
  planCost = NaN;
  /** Decayed counts of this level's gaps, and of those during which the whole function went idle. */
  gapsSeen = 0;
  gapsIdle = 0;
}

export class FrequencyModel {
  readonly options: Readonly<FrequencyModelOptions>;
  private readonly prior: GapPrior | null;
  /** Non-empty arrival buckets in the window, oldest first: [bucket number, count]. */
  private readonly buckets: [number, number][] = [];
  private bucketHead = 0;
  private windowSum = 0;
  private readonly bucketCount: number;
  private readonly levels: Level[] = [];
  private busy = 0;
  private arrivals = 0;
  private durationEwmaMs: number | null = null;
  private lastArrivalAt: number | null = null;
  private lastFinishAt: number | null = null;
  private maxBusySeen = 0;
  /** When the function last went idle (nothing running), or null. */
  private idleAt: number | null = null;
  /** Per-gap factor of the level's went-idle counts: 2^(−1 / halfLifeSamples). */
  private readonly reachDecay: number;
  /** Weight of a run i runs older than the newest: 0.5^(i / halfLifeSamples). */
  private readonly decay: Float64Array;
  /** Growth of the long-run histogram's scale per gap: 2^(1 / tailHalfLifeSamples). */
  private readonly histGrowth: number;

  constructor(options: Partial<FrequencyModelOptions> = {}, prior: GapPrior | null = null) {
    this.options = Object.freeze({ ...FREQUENCY_MODEL_DEFAULTS, ...options });
    this.bucketCount = Math.max(1, Math.round(this.options.windowMs / this.options.bucketMs));
    this.prior = prior;
    const h = this.options.halfLifeSamples;
    this.decay = Float64Array.from({ length: this.options.maxSamples + 1 }, (_, i) => Math.pow(0.5, i / h));
    this.histGrowth = Math.pow(2, 1 / this.options.tailHalfLifeSamples);
    this.reachDecay = Math.pow(2, -1 / h);
  }

  private level(k: number): Level {
    const i = Math.min(Math.max(1, k), this.options.maxLevels) - 1;
    while (this.levels.length <= i) this.levels.push(new Level());
    return this.levels[i];
  }

  /** An invocation arrived; `busyBefore` invocations of the function were running. */
  recordArrival(now: number, busyBefore: number = this.busy): void {
    this.busy = busyBefore + 1;
    if (this.busy > this.maxBusySeen) this.maxBusySeen = this.busy;
    this.arrivals++;
    this.lastArrivalAt = now;
    const b = Math.floor(now / this.options.bucketMs);
    const last = this.buckets[this.buckets.length - 1];
    if (last !== undefined && this.buckets.length > this.bucketHead && last[0] === b) last[1]++;
    else this.buckets.push([b, 1]);
    this.windowSum++;
    this.slide(b);
    const lv = this.level(this.busy);
    lv.reached++;
    if (lv.releasedAt !== null) {
      const gap = Math.max(0, now - lv.releasedAt);
      const last = lv.samples[lv.samples.length - 1];
      const o = this.options;
      if (last && Math.abs(gap - last.gapMs) <= o.marginMs + o.marginFraction * Math.max(gap, last.gapMs)) {
        // Same gap again: one run, so a burst of identical gaps does not push rarer ones out.
        last.gapMs = (last.gapMs * last.count + gap) / (last.count + 1);
        last.count = Math.min(o.maxRunCount, last.count + 1);
        last.at = now;
      } else {
        lv.samples.push({ gapMs: gap, at: now, count: 1 });
        if (lv.samples.length > o.maxSamples) lv.samples.shift();
      }
      this.addToHistory(lv, gap);
      // Could this level's instance have been pre-warmed in the gap? Only if the function was idle.
      const wentIdle = this.busy === 1 || (this.idleAt !== null && this.idleAt >= lv.releasedAt);
      lv.gapsSeen = lv.gapsSeen * this.reachDecay + 1;
      lv.gapsIdle = lv.gapsIdle * this.reachDecay + (wentIdle ? 1 : 0);
      const p = lv.plan;
      if (!p || !(gap < p.keepMs || (gap >= p.prewarmMs && gap < p.endMs))) lv.surprised = true;
      lv.version++;
      lv.releasedAt = null;
    }
  }

  /** Adds a gap to the level's long-run histogram; older gaps fade by tailHalfLifeSamples. */
  private addToHistory(lv: Level, gapMs: number): void {
    lv.histScale *= this.histGrowth;
    const bin = Math.floor(Math.log2(Math.max(gapMs, 1000) / 1000) * BINS_PER_OCTAVE);
    lv.hist.set(bin, (lv.hist.get(bin) ?? 0) + lv.histScale);
    lv.histTotal += lv.histScale;
    if (lv.histScale > 1e100) {
      for (const [b, w] of lv.hist) lv.hist.set(b, w / lv.histScale);
      lv.histTotal /= lv.histScale;
      lv.histScale = 1;
    }
  }

  /**
   * The level's long-run histogram as kernels of total weight tailShare × evidence: gaps its recent
   * runs do not show (a rare long gap) keep some probability, in proportion to how often they came.
   */
  private historyKernels(lv: Level, evidence: number): GapKernel[] {
    const share = this.options.tailShare * evidence;
    if (share <= 0 || lv.histTotal <= 0) return [];
    const out: GapKernel[] = [];
    for (const [b, w] of lv.hist) {
      // A bin below 0.1 % of the total (not seen for about ten half-lives) is dropped: it would
      // not move a plan, and it would cost time in every one.
      if (w < 1e-3 * lv.histTotal) {
        lv.hist.delete(b);
        lv.histTotal -= w;
        continue;
      }
      const lo = 1000 * Math.pow(2, b / BINS_PER_OCTAVE);
      out.push({ lo: b === 0 ? 1 : lo, hi: 1000 * Math.pow(2, (b + 1) / BINS_PER_OCTAVE), weight: (share * w) / lv.histTotal });
    }
    return out;
  }

  /** An invocation that ran durationMs finished; `busyAfter` invocations are still running. */
  recordFinish(now: number, durationMs: number, busyAfter: number = Math.max(0, this.busy - 1)): void {
    this.busy = Math.max(0, busyAfter);
    this.lastFinishAt = now;
    this.durationEwmaMs = this.durationEwmaMs === null ? durationMs : 0.9 * this.durationEwmaMs + 0.1 * durationMs;
    this.level(this.busy + 1).releasedAt = now;
    if (this.busy === 0) this.idleAt = now;
  }

  /** When level k was last released (and not needed since), or null. */
  releasedAt(k: number): number | null {
    return this.level(k).releasedAt;
  }

  /** Concurrency levels with any state (1 … this); the last one is shared by every level from maxLevels up. */
  get levelsTracked(): number {
    return this.levels.length;
  }

  get running(): number {
    return this.busy;
  }

  /** Weighted gap points of level k at now (without the prior). */
  gapPoints(k: number): GapPoint[] {
    const ss = this.level(k).samples;
    const d = this.decay;
    return ss.map((s, i) => ({ gapMs: s.gapMs, weight: s.count * d[Math.min(d.length - 1, ss.length - 1 - i)], count: s.count }));
  }

  /** The plan for the instance released at level k (see the file comment). */
  plan(k: number, now: number, coldCostMs: number = this.options.coldCostMs): InstancePlan {
    const lv = this.level(k);
    const sameCost = Math.abs(lv.planCost - coldCostMs) <= 0.05 * coldCostMs;
    // A plan is reused while nothing new was seen at its level. (A level above 1 reads the recent
    // rate for its prior at that moment; refreshing it every minute changed 2 of 2,670 cold starts
    // on train350 for half again as many plan computations.)
    const fresh = lv.plan !== null && lv.planVersion === lv.version && sameCost;
    // Once a level has some history its plan is redone when a gap was cold under it, and otherwise
    // at most every recomputeMs: a gap the plan expected changes the plan little.
    const throttled = lv.plan !== null && sameCost && lv.reached >= 8 && !lv.surprised && now - lv.planAt < this.options.recomputeMs;
    if (fresh || throttled) return lv.plan!;
    const own = this.gapPoints(k);
    const evidence = own.reduce((a, p) => a + p.weight, 0);
    const kernels = [...kernelsOf(own, this.options), ...this.historyKernels(lv, evidence), ...this.priorKernels(k, evidence)];
    // Pre-warming bets on a pattern: only once the level has its own samples, and not on the last,
    // shared level (it stands for every concurrency from maxLevels up, not for one instance).
    const allowPrewarm = k < this.options.maxLevels && evidence >= this.options.minPrewarmEvidence;
    // A level above 1 can only be pre-warmed when the whole function goes idle in its gap.
    const reach = k === 1 ? 1 : lv.gapsSeen > 0 ? lv.gapsIdle / lv.gapsSeen : 0;
    lv.plan = choosePlan(kernels, { ...this.options, coldCostMs }, allowPrewarm, evidence, reach);
    lv.planCost = coldCostMs;
    lv.planVersion = lv.version;
    lv.planAt = now;
    lv.surprised = false;
    return lv.plan;
  }

  /**
   * Prior for level k: for level 1 the cross-function prior; for higher levels this function's
   * level-1 gaps (a second instance is needed no sooner than a first one).
   */
  private priorKernels(k: number, evidence: number): GapKernel[] {
    // The prior speaks for a function that has no history and fades as its own samples come in.
    const w = this.options.priorWeight / Math.pow(1 + evidence, this.options.priorDecay);
    if (w <= 0) return [];
    let base: readonly GapPoint[];
    if (k > 1) {
      // While the function is busy, arrivals are close to Poisson and the number running is
      // Poisson(ρ), ρ = recent rate × mean duration (M/G/∞); level k is reached again at the rate of
      // arrivals that find k − 1 running: λ·P(N = k − 1). That mean gap is the level's prior: a level
      // within the current concurrency is needed again soon, one far above it is not.
      const g = this.poissonGapMs(k);
      if (g !== null) base = [{ gapMs: g, weight: 1 }];
      else {
        base = this.gapPoints(1);
        if (base.length === 0) base = this.prior?.points() ?? DEFAULT_PRIOR_GAPS_MS.map((x) => ({ gapMs: x, weight: 1 }));
      }
    } else {
      base = this.prior?.points() ?? DEFAULT_PRIOR_GAPS_MS.map((g) => ({ gapMs: g, weight: 1 }));
    }
    const total = base.reduce((a, p) => a + p.weight, 0);
    if (total <= 0) return [];
    // The prior is vague by construction: every point is spread as widely as an isolated sample.
    const b = Math.max(this.options.maxSpread, Math.log(1 + this.options.marginFraction));
    return base.map((p) => ({
      lo: p.gapMs * Math.exp(-b),
      hi: p.gapMs * Math.exp(b),
      weight: (p.weight / total) * w,
    }));
  }

  /**
   * Mean time until level k is reached again under the recent arrival rate (the current and the
   * previous bucket) if arrivals are Poisson: 1 / (λ · P(N = k − 1)), N ~ Poisson(λ × mean
   * duration). Null without recent arrivals or a known duration; capped at the window.
   */
  private poissonGapMs(k: number): number | null {
    const d = this.durationEwmaMs;
    const at = this.lastFinishAt ?? this.lastArrivalAt;
    if (d === null || at === null || this.buckets.length <= this.bucketHead) return null;
    const bms = this.options.bucketMs;
    const cur = Math.floor(at / bms);
    let n = 0;
    for (let i = this.buckets.length - 1; i >= this.bucketHead && i >= this.buckets.length - 2; i--) {
      if (this.buckets[i][0] >= cur - 1) n += this.buckets[i][1];
    }
    if (n === 0) return null;
    const lambda = n / Math.max(bms, at - (cur - 1) * bms); // per ms
    const rho = lambda * Math.max(d, 1);
    // P(N = k − 1) in logs (k up to maxLevels).
    let logP = -rho;
    for (let i = 1; i <= k - 1; i++) logP += Math.log(rho / i);
    const gap = 1 / (lambda * Math.exp(logP));
    return Number.isFinite(gap) ? Math.min(gap, this.options.windowMs) : this.options.windowMs;
  }

  /** Drops buckets that left the window ending in bucket `cur`. O(1) amortised. */
  private slide(cur: number): void {
    const oldest = cur - this.bucketCount + 1;
    while (this.bucketHead < this.buckets.length && this.buckets[this.bucketHead][0] < oldest) {
      this.windowSum -= this.buckets[this.bucketHead][1];
      this.bucketHead++;
    }
    if (this.bucketHead > 64 && this.bucketHead * 2 > this.buckets.length) {
      this.buckets.splice(0, this.bucketHead);
      this.bucketHead = 0;
    }
  }

  /** Non-empty buckets of the window ending at now, oldest first. */
  private activeBuckets(now: number): [number, number][] {
    this.slide(Math.floor(now / this.options.bucketMs));
    return this.buckets.slice(this.bucketHead);
  }

  /** Arrivals in the window ending at now, per bucket, oldest first (empty buckets included). */
  window(now: number): number[] {
    const n = this.bucketCount;
    const cur = Math.floor(now / this.options.bucketMs);
    const out = new Array<number>(n).fill(0);
    for (const [b, c] of this.activeBuckets(now)) {
      const i = b - (cur - n + 1);
      if (i >= 0 && i < n) out[i] = c;
    }
    return out;
  }

  /** Arrivals per hour over the window ending at now. O(1) amortised. */
  ratePerHour(now: number): number {
    this.slide(Math.floor(now / this.options.bucketMs));
    return (this.windowSum * 3_600_000) / (this.bucketCount * this.options.bucketMs);
  }

  /**
   * Instances the function needs at once in the near future: the 95th percentile over the
   * window's active buckets of (arrivals × mean duration / bucket width), rounded up, and at least
   * the running count; 0 once the window is empty and nothing runs.
   */
  targetInstances(now: number): number {
    const w = this.activeBuckets(now).map(([, c]) => c);
    if (w.length === 0) return this.busy;
    const d = this.durationEwmaMs ?? 0;
    const conc = sortedCopy(w.map((c) => (c * Math.max(d, 1)) / this.options.bucketMs));
    const q = percentileSorted(conc, 0.95, 'step');
    return Math.max(this.busy, Math.ceil(q - 1e-9), 1);
  }

  /** JSON-able summary of the windows. */
  summary(now: number): Record<string, unknown> {
    const w = this.window(now);
    const active = w.filter((c) => c > 0).length;
    return {
      windowMs: this.options.windowMs,
      bucketMs: this.options.bucketMs,
      arrivalsInWindow: w.reduce((a, b) => a + b, 0),
      activeBuckets: active,
      lastBuckets: w.slice(-60),
      ratePerHour: this.ratePerHour(now),
      arrivalsTotal: this.arrivals,
      running: this.busy,
      maxRunning: this.maxBusySeen,
      meanDurationMs: this.durationEwmaMs,
      lastArrivalAt: this.lastArrivalAt,
      lastFinishAt: this.lastFinishAt,
      levels: this.levels.map((lv, i) => ({
        level: i + 1,
        runs: lv.samples.length,
        samples: lv.samples.reduce((a, x) => a + x.count, 0),
        weight: this.gapPoints(i + 1).reduce((a, p) => a + p.weight, 0),
        recentGapsMs: lv.samples.slice(-8).map((s) => s.gapMs),
        releasedAt: lv.releasedAt,
      })),
    };
  }
}
