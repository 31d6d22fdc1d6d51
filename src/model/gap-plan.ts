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
    const d: number[] = [];
    const repeats = Math.min(2, Math.max(1, Math.round(pts[order[r].i].count ?? 1)) - 1);
    for (let x = 0; x < repeats; x++) d.push(0);
    for (let q = Math.max(0, r - 2); q <= Math.min(order.length - 1, r + 2); q++) {
      if (q !== r) d.push(Math.abs(order[q].l - order[r].l));
    }
    d.sort((a, b) => a - b);
    spread[order[r].i] = Math.min(bMax, Math.max(bMin, d.length >= 2 ? d[1] : bMax));
  }
  return pts.map((p, i) => ({
    lo: Math.max(0, p.gapMs * Math.exp(-spread[i]) - options.marginMs),
    hi: p.gapMs * Math.exp(spread[i]) + options.marginMs,
    weight: p.weight,
  }));
}

/** Mass of kernel k below x, and its partial first moment ∫ t dF over [0, min(x, hi)]. */
function kernelCdf(k: GapKernel, x: number): [number, number] {
  const lo = Math.max(k.lo, 1);
  if (x <= lo) return [0, 0];
  if (k.hi <= lo * (1 + 1e-9)) return [k.weight, k.weight * lo];
  const L = Math.log(k.hi / lo);
  const xx = Math.min(x, k.hi);
  return [(k.weight * Math.log(xx / lo)) / L, (k.weight * (xx - lo)) / L];
}

/**
 * Chooses the cheapest plan for a gap distribution given as kernels (see the file comment).
 * Exported for tests. Candidate times are the kernels' edges and centres; each (pre-warm, end)
 * pair costs O(1) after an O(candidates × kernels) table.
 */
export function choosePlan(
  kernels: readonly GapKernel[],
  options: Pick<FrequencyModelOptions, 'coldCostMs' | 'prewarmCostMs' | 'windowMs' | 'minPrewarmMs' | 'holdFee'>,
  allowPrewarm: boolean,
  evidence = 0,
): InstancePlan {
  const ks = kernels.filter((k) => k.weight > 0);
  const tau = options.coldCostMs;
  const none: InstancePlan = { prewarmMs: 0, endMs: 0, coldProbability: 1, expectedIdleMs: 0, evidence };
  if (ks.length === 0) return none;
  const Wt = ks.reduce((a, k) => a + k.weight, 0);
  const cand = new Set<number>();
  for (const k of ks) {
    cand.add(k.lo);
    cand.add(k.hi);
    cand.add(Math.sqrt(Math.max(k.lo, 1e-3) * k.hi));
  }
  const xs = [...cand].filter((x) => x > 0 && x <= options.windowMs).sort((a, b) => a - b);
  if (xs.length === 0 || xs[xs.length - 1] < options.windowMs) xs.push(options.windowMs);
  // M[i] = mass below xs[i]; S[i] = first moment below xs[i].
  const M = new Float64Array(xs.length);
  const S = new Float64Array(xs.length);
  xs.forEach((x, i) => {
    let m = 0;
    let s1 = 0;
    for (const k of ks) {
      const [a, b] = kernelCdf(k, x);
      m += a;
      s1 += b;
    }
    M[i] = m;
    S[i] = s1;
  });
  let best = none;
  let bestCost = tau * Wt;
  for (let j = 0; j < xs.length; j++) {
    const e = xs[j];
    const late = Wt - M[j];
    const idle0 = S[j] + late * e;
    const cost0 = tau * late + idle0 + options.holdFee * e * Wt;
    if (cost0 < bestCost) {
      bestCost = cost0;
      best = { prewarmMs: 0, endMs: e, coldProbability: late / Wt, expectedIdleMs: idle0 / Wt, evidence };
    }
    if (!allowPrewarm) continue;
    for (let i = 0; i < j; i++) {
      const p = xs[i];
      if (p < options.minPrewarmMs) continue;
      const early = M[i];
      const idle = S[j] - S[i] - p * (M[j] - M[i]) + late * (e - p);
      const cost = tau * (early + late) + idle + options.prewarmCostMs * (Wt - early) + options.holdFee * (e - p) * Wt;
      if (cost < bestCost) {
        bestCost = cost;
        best = { prewarmMs: p, endMs: e, coldProbability: (early + late) / Wt, expectedIdleMs: idle / Wt, evidence };
      }
    }
  }
  return best;
}
