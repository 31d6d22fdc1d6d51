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
 * A plan keeps the released instance until `keepMs`, and may end it then and load one at
 * `prewarmMs` ≥ keepMs + minPrewarmMs, kept until `endMs` (issue 17, third pass: keepMs > 0 with a
 * pre-warm covers gaps of two kinds, such as a burst's short gaps and the long one before the next
 * burst, without keeping the instance through the long one). `prewarmReach` is the chance that a
 * pre-warm can happen at all (a level above 1 is pre-warmed only once the whole function is idle):
 * a pre-warm plan costs that share of its pre-warm part plus a cold start for the rest. Exported
 * for tests. Candidate times are the kernels' edges and centres; the cost is separable in
 * (keep, pre-warm, end), so the best triple is found in one pass with running minima.
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
  const none: InstancePlan = { keepMs: 0, prewarmMs: 0, endMs: 0, coldProbability: 1, expectedIdleMs: 0, evidence };
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
  const h = options.holdFee * Wt;
  let best = none;
  let bestCost = tau * Wt;
  // With k = keepMs, p = prewarmMs and e = endMs (k + minPrewarm ≤ p < e), a gap g is warm iff
  // g < k or p ≤ g < e, and idles min(g, k) + clamp(g − p, 0, e − p). The cost splits into
  //   K(k) = S(k) + k·(Wt − M(k)) − τ·M(k) + h·k                  (kept part; K(0) = 0)
  //   A(p) = τ·M(p) − S(p) − p·(Wt − M(p)) + prewarmCost·(Wt − M(p)) − h·p
  //   B(e) = τ·(Wt − M(e)) + S(e) + e·(Wt − M(e)) + h·e
  // (h = holdFee·Wt), so K + A + B is minimised with two running minima: O(n).
  // Keeping only until e costs K(e) + τ·Wt; with pre-warm reach q < 1: K + q·(A + B) + (1 − q)·τ·Wt.
  const q = Math.min(1, Math.max(0, prewarmReach));
  const canPrewarm = allowPrewarm && q > 0;
  const K = (i: number): number => S[i] + xs[i] * (Wt - M[i]) - tau * M[i] + h * xs[i];
  let bestK = 0; // K(0): no kept part
  let bestKI = -1;
  let nextK = 0; // xs[nextK] is the next keep candidate not yet ≤ p − minPrewarmMs
  let bestC = Infinity; // min over pre-warm candidates so far of bestK(p) + q·A(p)
  let bestCK = -1;
  let bestCP = -1;
  for (let j = 0; j < xs.length; j++) {
    const e = xs[j];
    const late = Wt - M[j];
    const idle0 = S[j] + late * e;
    const cost0 = tau * late + idle0 + h * e;
    if (cost0 < bestCost) {
      bestCost = cost0;
      best = { keepMs: e, prewarmMs: 0, endMs: e, coldProbability: late / Wt, expectedIdleMs: idle0 / Wt, evidence };
    }
    if (!canPrewarm) continue;
    if (bestCP >= 0) {
      const cost = bestC + q * (tau * late + S[j] + late * e + h * e) + (1 - q) * tau * Wt;
      if (cost < bestCost) {
        bestCost = cost;
        best = planOf(xs, M, S, Wt, bestCK, bestCP, j, q, evidence);
      }
    }
    // Candidate j becomes a pre-warm time for the ends after it, with the best keep before it.
    const p = xs[j];
    if (p >= options.minPrewarmMs) {
      for (; nextK < j && xs[nextK] <= p - options.minPrewarmMs; nextK++) {
        const k = K(nextK);
        if (k < bestK) {
          bestK = k;
          bestKI = nextK;
        }
      }
      const a = tau * M[j] - S[j] - p * (Wt - M[j]) + options.prewarmCostMs * (Wt - M[j]) - h * p;
      if (bestK + q * a < bestC) {
        bestC = bestK + q * a;
        bestCK = bestKI;
        bestCP = j;
      }
    }
  }
  return best;
}

/** The plan keep xs[ki] (ki −1: none), pre-warm xs[pi], end xs[ei], with its odds and idle time. */
function planOf(
  xs: readonly number[],
  M: Float64Array,
  S: Float64Array,
  Wt: number,
  ki: number,
  pi: number,
  ei: number,
  q: number,
  evidence: number,
): InstancePlan {
  const k = ki >= 0 ? xs[ki] : 0;
  const mk = ki >= 0 ? M[ki] : 0;
  const kept = (ki >= 0 ? S[ki] : 0) + k * (Wt - mk);
  const [p, e] = [xs[pi], xs[ei]];
  const late = Wt - M[ei];
  const warmIdle = S[ei] - S[pi] + late * e - p * (Wt - M[pi]);
  const cold = q * (M[pi] - mk + late) + (1 - q) * (Wt - mk);
  return { keepMs: k, prewarmMs: p, endMs: e, coldProbability: cold / Wt, expectedIdleMs: (kept + q * warmIdle) / Wt, evidence };
}
