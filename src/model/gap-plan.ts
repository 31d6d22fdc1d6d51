/**
 * From idle gaps to a plan (see frequency-model.ts for the cost being minimised): weighted gap
 * samples become log-uniform kernels (kernelsOf), and choosePlan picks the cheapest keep-alive /
 * pre-warm plan for the distribution they describe. Pure functions.
 */
import type { FrequencyModelOptions, GapPoint, InstancePlan } from './frequency-options.js';

/**
 * One component of a gap distribution: mass `weight` spread log-uniformly over [lo, hi]
 * (lo == hi: a point mass).
 */
export interface GapKernel {
  lo: number;
  hi: number;
  weight: number;
}

/**
 * Turns weighted gap samples into kernels. A sample's kernel is log-uniform over
 * g·e^(±b) ± marginMs, where b is the log-distance to its second-nearest other sample, clamped
 * to [ln(1 + marginFraction), maxSpread]: samples that repeat (timers) keep narrow kernels,
 * isolated samples are smeared, so one sample is not taken for a period.
 */
export function kernelsOf(points: readonly GapPoint[], options: Pick<FrequencyModelOptions, 'marginMs' | 'marginFraction' | 'maxSpread'>): GapKernel[] {
  const pts = points.filter((p) => p.weight > 0 && Number.isFinite(p.gapMs));
  const bMin = Math.log(1 + options.marginFraction);
  const bMax = Math.max(bMin, options.maxSpread);
  // Sorted log-gaps: the second-nearest other sample is among the two on either side.
  const order = pts.map((p, i) => ({ l: Math.log(Math.max(p.gapMs, 1)), i })).sort((a, b) => a.l - b.l);
  const spread = new Float64Array(pts.length);
  for (let r = 0; r < order.length; r++) {
    // The second-smallest distance among the (up to four) neighbours and the run's own repeats
    // (a run of two or more counts as zero distance), without allocating.
    let d1 = Infinity;
    let d2 = Infinity;
    const take = (d: number): void => {
      if (d < d1) {
        d2 = d1;
        d1 = d;
      } else if (d < d2) d2 = d;
    };
    const repeats = Math.min(2, Math.max(1, Math.round(pts[order[r].i].count ?? 1)) - 1);
    for (let x = 0; x < repeats; x++) take(0);
    for (let q = Math.max(0, r - 2); q <= Math.min(order.length - 1, r + 2); q++) {
      if (q !== r) take(Math.abs(order[q].l - order[r].l));
    }
    spread[order[r].i] = Math.min(bMax, Math.max(bMin, Number.isFinite(d2) ? d2 : bMax));
  }
  return pts.map((p, i) => ({
    lo: Math.max(0, p.gapMs * Math.exp(-spread[i]) - options.marginMs),
    hi: p.gapMs * Math.exp(spread[i]) + options.marginMs,
    weight: p.weight,
  }));
}

/**
 * Mass and first moment (∫ t dF) of the kernels below each x of the ascending xs, in one sweep:
 * a log-uniform kernel over [lo, hi] holds w·ln(x/lo)/L below x (L = ln(hi/lo)) and moment
 * w·(x − lo)/L, so the kernels open at x sum to A·ln x − B and A·x − C; a closed kernel adds its
 * whole mass and moment. Point masses (hi ≈ lo) count fully above lo. O((xs + kernels) log).
 */
export function massBelow(ks: readonly GapKernel[], xs: readonly number[]): { M: Float64Array; S: Float64Array } {
  const M = new Float64Array(xs.length);
  const S = new Float64Array(xs.length);
  const byLo = ks.map((k) => ({ lo: Math.max(k.lo, 1), hi: k.hi, w: k.weight })).sort((x, y) => x.lo - y.lo);
  const spans = byLo.filter((k) => k.hi > k.lo * (1 + 1e-9)).sort((x, y) => x.hi - y.hi);
  let next = 0;
  let close = 0;
  let A = 0;
  let B = 0;
  let C = 0;
  let doneM = 0;
  let doneS = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    for (; next < byLo.length && byLo[next].lo < x; next++) {
      const k = byLo[next];
      if (k.hi <= k.lo * (1 + 1e-9)) {
        doneM += k.w;
        doneS += k.w * k.lo;
      } else {
        const a = k.w / Math.log(k.hi / k.lo);
        A += a;
        B += a * Math.log(k.lo);
        C += a * k.lo;
      }
    }
    for (; close < spans.length && spans[close].hi <= x; close++) {
      const k = spans[close];
      const a = k.w / Math.log(k.hi / k.lo);
      A -= a;
      B -= a * Math.log(k.lo);
      C -= a * k.lo;
      doneM += k.w;
      doneS += a * (k.hi - k.lo);
    }
    M[i] = doneM + Math.max(0, A * Math.log(x) - B);
    S[i] = doneS + Math.max(0, A * x - C);
  }
  return { M, S };
}

/**
 * Chooses the cheapest plan for a gap distribution given as kernels (see the file comment).
 * `prewarmReach` is the chance that a pre-warm can happen at all (a level above 1 is pre-warmed only
 * once the whole function is idle): a pre-warm plan costs that share of its cost plus a cold start
 * for the rest. Exported for tests. Candidate times are the kernels' edges and centres; after an O(candidates × kernels)
 * table the best (pre-warm, end) pair is found in one pass (the cost is separable, see below).
 */
export function choosePlan(
  kernels: readonly GapKernel[],
  options: Pick<FrequencyModelOptions, 'coldCostMs' | 'prewarmCostMs' | 'windowMs' | 'minPrewarmMs' | 'holdFee'>,
  allowPrewarm: boolean,
  evidence = 0,
  prewarmReach = 1,
): InstancePlan {
  const ks = kernels.filter((k) => k.weight > 0);
  const tau = options.coldCostMs;
  const none: InstancePlan = { prewarmMs: 0, endMs: 0, coldProbability: 1, expectedIdleMs: 0, evidence };
  if (ks.length === 0) return none;
  const Wt = ks.reduce((a, k) => a + k.weight, 0);
  const raw = new Float64Array(ks.length * 3);
  ks.forEach((k, i) => {
    raw[3 * i] = k.lo;
    raw[3 * i + 1] = k.hi;
    raw[3 * i + 2] = Math.sqrt(Math.max(k.lo, 1e-3) * k.hi);
  });
  raw.sort();
  const xs: number[] = [];
  for (const x of raw) if (x > 0 && x <= options.windowMs && x !== xs[xs.length - 1]) xs.push(x);
  if (xs.length === 0 || xs[xs.length - 1] < options.windowMs) xs.push(options.windowMs);
  // M[i] = mass below xs[i]; S[i] = first moment below xs[i].
  const { M, S } = massBelow(ks, xs);
  let best = none;
  let bestCost = tau * Wt;
  // With p = xs[i] and e = xs[j], the pre-warm plan's cost splits into A(i) + B(j):
  //   A(i) = τ·M[i] − S[i] − p·(Wt − M[i]) + prewarmCost·(Wt − M[i]) − holdFee·p·Wt
  //   B(j) = τ·late + S[j] + late·e + holdFee·e·Wt          (late = Wt − M[j])
  // so the best pre-warm for each end is a running minimum of A over earlier candidates: O(n).
  let bestA = Infinity;
  let bestI = -1;
  for (let j = 0; j < xs.length; j++) {
    const e = xs[j];
    const late = Wt - M[j];
    const idle0 = S[j] + late * e;
    const cost0 = tau * late + idle0 + options.holdFee * e * Wt;
    if (cost0 < bestCost) {
      bestCost = cost0;
      best = { prewarmMs: 0, endMs: e, coldProbability: late / Wt, expectedIdleMs: idle0 / Wt, evidence };
    }
    if (!allowPrewarm || !(prewarmReach > 0)) continue;
    if (bestI >= 0) {
      // The pre-warm happens with probability prewarmReach; otherwise the ended instance is missed.
      const q = Math.min(1, prewarmReach);
      const cost = q * (bestA + tau * late + S[j] + late * e + options.holdFee * e * Wt) + (1 - q) * tau * Wt;
      if (cost < bestCost) {
        const p = xs[bestI];
        const early = M[bestI];
        bestCost = cost;
        const idle = S[j] - S[bestI] + late * e - p * (Wt - early);
        best = { prewarmMs: p, endMs: e, coldProbability: q * ((early + late) / Wt) + (1 - q), expectedIdleMs: (q * idle) / Wt, evidence };
      }
    }
    // Candidate j becomes a pre-warm time for the ends after it.
    const p = xs[j];
    if (p >= options.minPrewarmMs) {
      const a = tau * M[j] - S[j] - p * (Wt - M[j]) + options.prewarmCostMs * (Wt - M[j]) - options.holdFee * p * Wt;
      if (a < bestA) {
        bestA = a;
        bestI = j;
      }
    }
  }
  return best;
}
