/**
 * Options and value types of the frequency model (frequency-model.ts): the knobs with their
 * defaults, weighted gap points, instance plans and the prior. Pure data, no behaviour.
 */

export interface FrequencyModelOptions {
  /** Length of the arrival window and the longest keep-alive considered, ms. */
  windowMs: number;
  /** Width of an arrival bucket, ms. */
  bucketMs: number;
  /** Samples kept per level (most recent). */
  maxSamples: number;
  /** Highest concurrency level tracked separately; higher levels share it. */
  maxLevels: number;
  /** Idle time of an instance that is worth one cold start, ms. */
  coldCostMs: number;
  /** Cost of one pre-warm (creating an instance that may go unused), in the same units, ms. */
  prewarmCostMs: number;
  /** Narrowest spread of a sample: ± marginMs and × (1 ± marginFraction). */
  marginMs: number;
  marginFraction: number;
  /** Widest spread of an isolated sample, in log units (ln 2: half to twice the gap). */
  maxSpread: number;
  /** Weight halves every this many newer runs of samples (recency in samples, not time). */
  halfLifeSamples: number;
  /**
   * Consecutive gaps within the margins of each other are kept as one run of up to this many;
   * bounds how long a long-repeated gap outweighs a new pattern.
   */
  maxRunCount: number;
  /** Pre-warm delays shorter than this are not considered (keep the instance instead), ms. */
  minPrewarmMs: number;
  /**
   * Fee per ms of planned loaded time, whatever the odds (a fraction of it counts as idle): breaks
   * near-ties towards shorter plans, so that a faint tail in the distribution does not hold an
   * instance for long.
   */
  holdFee: number;
  /**
   * Share of weight, relative to the recent runs, given to the level's long-run gap histogram
   * (0: recent runs only). It keeps the odds of gaps the recent pattern does not show.
   */
  tailShare: number;
  /** Half-life of a gap in the long-run histogram, in newer gaps. */
  tailHalfLifeSamples: number;
  /** Sample weight a level needs before pre-warming is considered. */
  minPrewarmEvidence: number;
  /** Weight of the prior (in samples) for a level without samples; it is divided by (1 + the level's own sample weight)^priorDecay. */
  priorWeight: number;
  priorDecay: number;
  /** A level's plan is recomputed at most this often once it has enough samples, ms. */
  recomputeMs: number;
}

export const FREQUENCY_MODEL_DEFAULTS: Readonly<FrequencyModelOptions> = Object.freeze({
  windowMs: 4 * 3_600_000,
  bucketMs: 60_000,
  maxSamples: 32,
  maxLevels: 32,
  coldCostMs: 40 * 60_000,
  prewarmCostMs: 1_000,
  marginMs: 1_000,
  marginFraction: 0.02,
  maxSpread: Math.LN2,
  halfLifeSamples: 12,
  maxRunCount: 8,
  minPrewarmMs: 5_000,
  minPrewarmEvidence: 2,
  holdFee: 0.002,
  priorWeight: 1,
  priorDecay: 1,
  tailShare: 0.5,
  tailHalfLifeSamples: 256,
  recomputeMs: 5 * 60_000,
});

/** A weighted idle gap (ms); `count` > 1 when it stands for that many repeats of the gap. */
export interface GapPoint {
  gapMs: number;
  weight: number;
  count?: number;
}

/** What to do with the instance released at a level. Times are relative to the release. */
export interface InstancePlan {
  /** The released instance is kept this long after the release (endMs for a plan without pre-warm). */
  keepMs: number;
  /** 0: no pre-warm; > 0 (≥ keepMs): end the released instance at keepMs and load one this long after the release. */
  prewarmMs: number;
  /** The instance is ended this long after the release (0 with prewarmMs 0: end it at once). */
  endMs: number;
  /** Expected share of the next arrivals at this level that will be cold under the plan. */
  coldProbability: number;
  /** Expected idle time per release under the plan, ms. */
  expectedIdleMs: number;
  /** Sample weight behind the plan (without the prior). */
  evidence: number;
}

/** Source of prior gap points for functions (and levels) with little history. */
export interface GapPrior {
  points(): readonly GapPoint[];
}

/** Fixed prior: equal weight on log-spaced gaps from 30 s to 8 h. */
export const DEFAULT_PRIOR_GAPS_MS: readonly number[] = [30_000, 120_000, 600_000, 1_800_000, 7_200_000, 28_800_000];
