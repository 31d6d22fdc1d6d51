/**
 * Hearth's pool policy: one FrequencyModel per function (see frequency-model.ts) turned into the
 * Policy decisions, plus value-based eviction under a memory budget.
 *
 * - keepAliveMs after a finish: the plan of the released concurrency level (running + 1). When the
 *   level-1 plan pre-warms, the instance is ended at once (0) and prewarmAt says when to load one.
 * - keepAliveMs after a pre-warm: until the level-1 plan's end, counted from the release.
 * - prewarmAt: release time of level 1 + the plan's pre-warm delay, while nothing runs.
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
    if (ctx.cause === 'prewarm') {
      const released = m.releasedAt(1);
      const plan = m.plan(1, now, tau);
      if (released === null) return plan.endMs - plan.prewarmMs;
      return Math.max(0, released + plan.endMs - now);
    }
    const level = ctx.busy + 1;
    const plan = m.plan(level, now, tau);
    // A pre-warm only comes when the function holds no idle instance. If another one is idle
    // (kept for a higher level), ending this one would let the next arrival take that one, the
    // pre-warm would not come, and the higher level would start cold: keep this one instead.
    if (plan.prewarmMs > 0 && ctx.idle <= 1) return 0;
    const released = m.releasedAt(level) ?? now;
    return Math.max(0, released + plan.endMs - now);
  }

  override prewarmAt(fn: string, now: number): number | null {
    const m = this.models.get(fn);
    if (!m || m.running > 0) return null;
    const released = m.releasedAt(1);
    if (released === null) return null;
    const plan = m.plan(1, now, this.coldCostMs(fn, now));
    if (plan.prewarmMs <= 0) return null;
    const at = released + plan.prewarmMs;
    return at >= now ? at : null;
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
      releasedAt: m.releasedAt(1),
      now,
    });
    return { ...e, summary };
  }
}
