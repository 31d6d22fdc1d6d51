/**
 * The model's decision for one function in words a user reads (`hearth model NAME`): what the
 * traffic looks like, the period found if any, the keep-alive or pre-warm plan chosen and why,
 * and the next pre-warm. Pure: times are given relative to `now`.
 */
import type { GapPoint, InstancePlan } from './frequency-options.js';

/** A duration for people: 850 ms, 42 s, 15 min, 2 h 5 min. */
export function spoken(ms: number): string {
  if (!Number.isFinite(ms)) return 'forever';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 90_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 90 * 60_000) return `${Math.round(ms / 60_000)} min`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.round((ms - h * 3_600_000) / 60_000);
  return m > 0 ? `${h} h ${m} min` : `${h} h`;
}

export interface WordsInput {
  arrivalsTotal: number;
  ratePerHour: number;
  windowMs: number;
  running: number;
  memoryMb: number;
  /** Price of a cold start of this function in idle time of one of its instances, ms. */
  coldCostMs: number;
  /** Level-1 gap runs, oldest first (without the prior). */
  gaps: readonly GapPoint[];
  plan: InstancePlan;
  /** Keep-alive an instance idle now would get, ms. */
  keepAliveMs: number;
  /** Absolute next pre-warm time, or null; `now` is the same clock. */
  prewarmAt: number | null;
  /** Instances that pre-warm loads (a burst's worth when several levels are expected together). */
  prewarmCount?: number;
  releasedAt: number | null;
  now: number;
}

/**
 * The period: the gap that carries the most weight among the recent runs, when it carries at least
 * half of it and repeats (a run of two or more); null when the gaps do not repeat.
 */
export function periodOf(gaps: readonly GapPoint[]): { gapMs: number; share: number } | null {
  const total = gaps.reduce((a, g) => a + g.weight, 0);
  if (total <= 0) return null;
  // Runs of similar gaps can be split by others in between: group them within 5 %.
  const groups: { gapMs: number; weight: number; count: number }[] = [];
  for (const g of gaps) {
    const near = groups.find((x) => Math.abs(x.gapMs - g.gapMs) <= 0.05 * Math.max(x.gapMs, g.gapMs) + 1000);
    if (near) {
      near.weight += g.weight;
      near.count += g.count ?? 1;
    } else groups.push({ gapMs: g.gapMs, weight: g.weight, count: g.count ?? 1 });
  }
  const best = groups.sort((a, b) => b.weight - a.weight)[0];
  if (best.count < 2 || best.weight < 0.5 * total) return null;
  return { gapMs: best.gapMs, share: best.weight / total };
}

/** Sentences explaining the decision, most important first. */
export function explainInWords(x: WordsInput): string[] {
  const out: string[] = [];
  if (x.arrivalsTotal === 0) {
    out.push('No invocation seen yet: an instance that becomes idle is kept as the pattern of other functions suggests.');
  } else {
    out.push(`${x.arrivalsTotal} invocation(s) seen; ${x.ratePerHour.toFixed(1)} per hour over the last ${spoken(x.windowMs)}; ${x.running} running now.`);
  }
  const period = periodOf(x.gaps);
  if (period) {
    out.push(`Period found: the function is idle about ${spoken(period.gapMs)} between invocations (${Math.round(100 * period.share)} % of recent gaps).`);
  } else if (x.gaps.length > 0) {
    const gs = x.gaps.map((g) => g.gapMs);
    out.push(`No regular period: recent idle gaps range from ${spoken(Math.min(...gs))} to ${spoken(Math.max(...gs))}.`);
  } else {
    out.push('No idle gap seen yet, so no period.');
  }
  const price = `a cold start is priced at ${spoken(x.coldCostMs)} of idle time of a ${Math.round(x.memoryMb)} MB instance`;
  const p = x.plan;
  const cold = `${(100 * p.coldProbability).toFixed(1)} %`;
  if (p.prewarmMs > 0 && p.keepMs > 0) {
    out.push(
      `Plan: keep the instance ${spoken(p.keepMs)} after it becomes idle (for the short gaps), then end it and load a new one ` +
        `${spoken(p.prewarmMs)} after, kept until ${spoken(p.endMs)} after (for the long gaps; ${price}; ${cold} of arrivals expected cold, ` +
        `idle ${spoken(p.expectedIdleMs)} per gap instead of keeping it all along).`,
    );
  } else if (p.prewarmMs > 0) {
    out.push(
      `Plan: end the instance when it becomes idle and load a new one ${spoken(p.prewarmMs)} after, kept until ${spoken(p.endMs)} after ` +
        `(${price}; with this plan ${cold} of arrivals are expected cold, idle ${spoken(p.expectedIdleMs)} per gap instead of keeping it all along).`,
    );
  } else if (p.endMs > 0) {
    out.push(
      `Plan: keep an idle instance for ${spoken(p.endMs)} (${price}; ${cold} of arrivals expected cold, about ${spoken(p.expectedIdleMs)} idle per gap).`,
    );
  } else {
    out.push(`Plan: end an idle instance at once (${price}; keeping it would cost more idle time than the cold starts it saves).`);
  }
  if (x.running > 0) out.push(`Keep-alive for an instance that becomes idle now: ${spoken(x.keepAliveMs)} (for the instance level it frees).`);
  if (x.prewarmAt !== null && (x.prewarmCount ?? 1) > 1) {
    out.push(
      `Next pre-warm: in ${spoken(Math.max(0, x.prewarmAt - x.now))}, ${x.prewarmCount} instances at once ` +
        `(the last bursts needed that many together; loading them just before is cheaper than keeping them through the gap).`,
    );
  } else if (x.prewarmAt !== null) out.push(`Next pre-warm: in ${spoken(Math.max(0, x.prewarmAt - x.now))}.`);
  else if (p.prewarmMs > 0 && x.running > 0) out.push('Next pre-warm: planned when the running invocations finish.');
  else if (p.prewarmMs > 0 && x.releasedAt === null) out.push('Next pre-warm: none armed (no release to count from yet).');
  else out.push('Next pre-warm: none.');
  return out;
}
