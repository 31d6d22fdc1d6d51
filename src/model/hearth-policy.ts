/**
 * Hearth's pool policy: one FrequencyModel per function (see frequency-model.ts) turned into the
 * Policy decisions, plus value-based eviction under a memory budget.
 *
 * - keepAliveMs after a finish: the plan of the released concurrency level (running + 1). When the
 *   level's plan pre-warms, the instance is kept only for the plan's kept part (keepMs, often 0)
 *   and prewarmAt says when to load one.
 * - keepAliveMs after a pre-warm of the i-th idle instance: until level i's plan end, counted from
 *   its release.
 * - prewarmAt: the earliest release + pre-warm delay of any level, while nothing runs;
 *   prewarmCount: the levels wanted in that window (a burst's instances are loaded together).
 *   A level above 1 pre-warms only as far as its gaps show the function going idle in between.
 * - targetInstances: the model's burst-aware concurrency estimate.
 * - chooseVictims: greedy-dual by value = arrivals per hour (window) × cold-start cost ÷ memory.
 * - expectedColdRatePerHour (not part of Policy): cold arrivals to expect, for generic-pool sizing.
 *
 * New functions borrow a prior built from other functions' most recent idle gaps (one per
 * function, so a busy function does not outvote the rest), until they have their own samples.
 */
import { percentileSorted, sortedCopy } from '../stats/percentile.js';
import {
  DEFAULT_PRIOR_GAPS_MS,
  FREQUENCY_MODEL_DEFAULTS,
  FrequencyModel,
  type FrequencyModelOptions,
  type GapPoint,
  type GapPrior,
} from './frequency-model.js';
import type { IdleContext, PolicyExplanation, PoolCounts } from './policy.js';
import { BasePolicy } from './policy-base.js';
import { explainInWords } from './explain-words.js';

export interface HearthOptions extends FrequencyModelOptions {
  /** Cold-start cost assumed for eviction value when FunctionTraits gives none, ms. */
  defaultColdStartMs: number;
  /** Memory assumed when FunctionTraits gives none, MB. */
  defaultMemoryMb: number;
  /**
   * Memory of the instance whose idle time coldCostMs prices, MB: a function of memory m is priced
   * coldCostMs × referenceMemoryMb / m (0: every function alike, whatever its memory).
   */
  referenceMemoryMb: number;
  /** Functions needed before the cross-function prior replaces the fixed one. */
  minPriorFunctions: number;
  /**
   * Per-function fairness. A function's cold start is priced coldCostMs × (fairRatePerHour /
   * rate)^fairExponent, clamped to [fairMinFactor, fairMaxFactor], rate = its arrivals per hour
   * over the window (at least one arrival per window). Exponent 0 minimises total cold starts;
   * exponent 1 weighs each function's cold-start ratio equally; in between trades the two.
   * fairRatePerHour 0 disables.
   */
  fairRatePerHour: number;
  fairExponent: number;
  fairMinFactor: number;
  fairMaxFactor: number;
}

export const HEARTH_DEFAULTS: Readonly<HearthOptions> = Object.freeze({
  ...FREQUENCY_MODEL_DEFAULTS,
  defaultColdStartMs: 250,
  defaultMemoryMb: 128,
  referenceMemoryMb: 150,
  minPriorFunctions: 8,
  fairRatePerHour: 40,
  fairExponent: 0.5,
  fairMinFactor: 1,
  fairMaxFactor: 16,
});

/** Prior from the latest level-1 gap of each function (equal weight per function). */
class CrossFunctionPrior implements GapPrior {
  private readonly latest = new Map<string, number>();
  private cache: GapPoint[] | null = null;
  private stale = 0;

  constructor(private readonly minFunctions: number) {}

  /**
   * Records fn's latest gap. The summary is rebuilt when a function joins, and otherwise after as
   * many updates as there are functions (each has then spoken about once): O(log n) amortised per
   * arrival instead of a sort per arrival.
   */
  observe(fn: string, gapMs: number): void {
    const known = this.latest.has(fn);
    this.latest.set(fn, gapMs);
    if (!known || ++this.stale >= this.latest.size) {
      this.cache = null;
      this.stale = 0;
    }
  }

  forget(fn: string): void {
    if (this.latest.delete(fn)) this.cache = null;
  }

  points(): readonly GapPoint[] {
    if (this.cache) return this.cache;
    if (this.latest.size < this.minFunctions) {
      this.cache = DEFAULT_PRIOR_GAPS_MS.map((g) => ({ gapMs: g, weight: 1 }));
    } else {
      // Summarise as 8 quantiles so that plans stay cheap to compute.
      const all = sortedCopy([...this.latest.values()]);
      const k = 8;
      this.cache = Array.from({ length: k }, (_, i) => ({
        gapMs: percentileSorted(all, (i + 0.5) / k, 'step'),
        weight: 1,
      }));
    }
    return this.cache;
  }
}

export class HearthPolicy extends BasePolicy {
  readonly name = 'hearth';
  readonly options: Readonly<HearthOptions>;
  private readonly models = new Map<string, FrequencyModel>();
  private readonly prior: CrossFunctionPrior;

  constructor(options: Partial<HearthOptions> = {}) {
    super('greedy-dual');
    this.options = Object.freeze({ ...HEARTH_DEFAULTS, ...options });
    this.prior = new CrossFunctionPrior(this.options.minPriorFunctions);
  }

  /** The function's model, created on first use. */
  model(fn: string): FrequencyModel {
    let m = this.models.get(fn);
    if (!m) {
      m = new FrequencyModel(this.options, this.prior);
      this.models.set(fn, m);
    }
    return m;
  }

  override onArrival(fn: string, now: number, pool: PoolCounts): void {
    const m = this.model(fn);
    const released = pool.busy === 0 ? m.releasedAt(1) : null;
    m.recordArrival(now, pool.busy);
    if (released !== null) this.prior.observe(fn, Math.max(0, now - released));
    const t = this.traits.get(fn);
    this.gd.touch(fn, m.ratePerHour(now), t?.coldStartMs ?? this.options.defaultColdStartMs, t?.memoryMb ?? this.options.defaultMemoryMb);
  }

  override onFinish(fn: string, now: number, durationMs: number, pool: PoolCounts): void {
    this.model(fn).recordFinish(now, durationMs, pool.busy);
  }

  /** Price of one cold start of fn, ms of idle instance time (see HearthOptions.fairRatePerHour). */
  coldCostMs(fn: string, now: number): number {
    const o = this.options;
    // The cold start is priced in memory: coldCostMs is the idle time of a referenceMemoryMb
    // instance worth one cold start, so a larger instance is kept for proportionally less.
    const mb = this.traits.get(fn)?.memoryMb ?? o.defaultMemoryMb;
    const base = o.referenceMemoryMb > 0 ? (o.coldCostMs * o.referenceMemoryMb) / Math.max(1, mb) : o.coldCostMs;
    if (o.fairRatePerHour <= 0) return base;
    const floor = 3_600_000 / o.windowMs; // one arrival per window
    const rate = Math.max(floor, this.model(fn).ratePerHour(now));
    const factor = Math.pow(o.fairRatePerHour / rate, o.fairExponent);
    return base * Math.min(o.fairMaxFactor, Math.max(o.fairMinFactor, factor));
  }

  keepAliveMs(fn: string, now: number, ctx: IdleContext): number {
    const m = this.model(fn);
    const tau = this.coldCostMs(fn, now);
    // The instance stands for level busy + idle: after a finish the level just released; after a
    // pre-warm (nothing runs) the idle-th instance the pre-warm loaded.
    const level = ctx.cause === 'prewarm' ? Math.max(1, ctx.busy + ctx.idle) : ctx.busy + 1;
    const plan = m.plan(level, now, tau);
    const released = m.releasedAt(level);
    if (ctx.cause === 'prewarm') {
      if (released === null) return plan.endMs - plan.prewarmMs;
      return Math.max(0, released + plan.endMs - now);
    }
    // A level whose plan pre-warms ends its instance now; the pre-warm (prewarmAt, prewarmCount)
    // loads as many instances as there are levels wanted at that time, counting the kept ones.
    // A plan with a pre-warm keeps the instance only for its kept part (keepMs, often 0).
    return Math.max(0, (released ?? now) + (plan.prewarmMs > 0 ? plan.keepMs : plan.endMs) - now);
  }

  /**
   * The windows of the levels released and not needed since: level k's instance is wanted from
   * its release + the plan's pre-warm delay (the release itself for a kept instance) until its
   * release + the plan's end. Only while nothing runs (a running function has not finished its burst).
   */
  private windows(fn: string, now: number): { start: number; end: number; prewarm: boolean }[] {
    const m = this.models.get(fn);
    if (!m || m.running > 0) return [];
    const tau = this.coldCostMs(fn, now);
    const out: { start: number; end: number; prewarm: boolean }[] = [];
    const top = Math.min(m.levelsTracked, this.options.maxLevels - 1);
    for (let k = 1; k <= top; k++) {
      const released = m.releasedAt(k);
      if (released === null) continue;
      const plan = m.plan(k, now, tau);
      const end = released + plan.endMs;
      if (plan.endMs <= 0 || end <= now) continue;
      // A plan with both parts: kept from the release until keepMs, pre-warmed again at prewarmMs.
      if (plan.prewarmMs > 0 && plan.keepMs > 0 && released + plan.keepMs > now) out.push({ start: released, end: released + plan.keepMs, prewarm: false });
      out.push({ start: released + plan.prewarmMs, end, prewarm: plan.prewarmMs > 0 });
    }
    return out;
  }

  /**
   * When to pre-warm next: the earliest pre-warm time of any level that is not past (one that
   * passed was due while something ran and is not made up late).
   */
  override prewarmAt(fn: string, now: number): number | null {
    let at: number | null = null;
    for (const w of this.windows(fn, now)) if (w.prewarm && w.start >= now && (at === null || w.start < at)) at = w.start;
    return at;
  }

  /**
   * How many instances the pre-warm due at now should leave idle: the levels whose windows overlap
   * the window of the earliest pre-warming level, kept ones included. A burst's instances are
   * loaded together ahead of the burst instead of kept through the gap between bursts.
   */
  override prewarmCount(fn: string, now: number): number {
    const ws = this.windows(fn, now);
    let first: { start: number; end: number } | null = null;
    for (const w of ws) if (w.prewarm && (first === null || w.start < first.start)) first = w;
    if (first === null) return 0;
    const at = Math.max(now, first.start);
    const horizon = at + (first.end - first.start);
    let count = 0;
    for (const w of ws) if (w.start <= horizon && w.end > at) count++;
    return count;
  }

  override targetInstances(fn: string, now: number): number {
    return this.models.get(fn)?.targetInstances(now) ?? 0;
  }

  /**
   * Expected rate of fn's arrivals that will find no instance of it (cold starts), per hour: the
   * arrival rate over the window × the level-1 plan's cold probability. The sum over a runtime's
   * functions is what its generic (not yet specialised) pool should be able to absorb.
   */
  expectedColdRatePerHour(fn: string, now: number): number {
    const m = this.models.get(fn);
    if (!m) return 0;
    return m.ratePerHour(now) * m.plan(1, now, this.coldCostMs(fn, now)).coldProbability;
  }

  override forget(fn: string): void {
    super.forget(fn);
    this.models.delete(fn);
    this.prior.forget(fn);
  }

  protected override busyNow(fn: string): number {
    return this.model(fn).running;
  }

  override explain(fn: string, now: number): PolicyExplanation {
    const m = this.model(fn);
    const tau = this.coldCostMs(fn, now);
    const level1 = m.plan(1, now, tau);
    const running = m.running;
    const e = this.explanation(fn, now, running, m.summary(now), {
      level1Plan: level1,
      nextLevelPlan: running > 0 ? m.plan(running + 1, now, tau) : null,
      coldCostMs: tau,
      ratePerHour: m.ratePerHour(now),
      expectedColdRatePerHour: this.expectedColdRatePerHour(fn, now),
      evictionPriority: this.gd.priority(fn),
    });
    const summary = explainInWords({
      arrivalsTotal: (e.window.arrivalsTotal as number) ?? 0,
      ratePerHour: m.ratePerHour(now),
      windowMs: this.options.windowMs,
      running,
      memoryMb: this.traits.get(fn)?.memoryMb ?? this.options.defaultMemoryMb,
      coldCostMs: tau,
      gaps: m.gapPoints(1),
      plan: level1,
      keepAliveMs: this.keepAliveMs(fn, now, { idle: 1, busy: running, cause: 'finish' }),
      prewarmAt: e.decisions.prewarmAt,
      prewarmCount: e.decisions.prewarmAt !== null ? this.prewarmCount(fn, e.decisions.prewarmAt) : undefined,
      releasedAt: m.releasedAt(1),
      now,
    });
    return { ...e, summary };
  }
}
