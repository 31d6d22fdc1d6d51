/**
 * The recent past the dashboard shows, kept in memory from the invocation feed: per function the
 * last few minutes of invocations (rate, start kinds, p50/p99, errors), a per-second series of the
 * whole daemon for the charts, and the latest failures. Bounded: the last `perFunction` records per
 * function count (a quarter more are kept until trimmed in one go), `seconds` buckets, `failures`
 * failures.
 */
import type { InvocationRecord } from '../dispatch/invocations.js';
import { percentileSorted, sortedCopy } from '../stats/percentile.js';

interface Sample {
  endedAt: number;
  durationMs: number;
  start: InvocationRecord['start'];
  ok: boolean;
}

export interface FunctionWindow {
  /** Invocations that ended in the last minute. */
  perMinute: number;
  /** Start kinds over the window. */
  starts: { cold: number; generic: number; warm: number };
  p50Ms: number | null;
  p99Ms: number | null;
  /** Invocations over the window that did not end ok. */
  errors: number;
  /** Invocations since the daemon started. */
  total: number;
}

export interface Failure {
  function: string;
  id: string;
  at: string;
  outcome: string;
  trigger: string;
  error: string;
}

/** One point per second: invocations that ended in it, by start kind, and the ones not ok. */
export interface Series {
  t: number[];
  cold: number[];
  generic: number[];
  warm: number[];
  errors: number[];
}

export interface RecentOptions {
  windowMs?: number;
  perFunction?: number;
  seconds?: number;
  failures?: number;
}

export class RecentInvocations {
  private readonly windowMs: number;
  private readonly perFunction: number;
  private readonly seconds: number;
  private readonly maxFailures: number;
  private readonly samples = new Map<string, Sample[]>();
  private readonly totals = new Map<string, number>();
  private readonly failures: Failure[] = [];
  /** second (epoch s) -> [cold, generic, warm, errors] */
  private readonly buckets = new Map<number, [number, number, number, number]>();

  constructor(opts: RecentOptions = {}) {
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    this.perFunction = opts.perFunction ?? 4096;
    this.seconds = opts.seconds ?? 300;
    this.maxFailures = opts.failures ?? 20;
  }

  add(r: InvocationRecord): void {
    let s = this.samples.get(r.function);
    if (!s) this.samples.set(r.function, (s = []));
    s.push({ endedAt: r.endedAt, durationMs: r.durationMs, start: r.start, ok: r.outcome === 'ok' });
    // Trimmed a quarter at a time: cutting one off the front at every add would move the whole
    // window each time (microseconds per invocation for a busy function).
    if (s.length >= this.perFunction + (this.perFunction >> 2) + 1) s.splice(0, s.length - this.perFunction);
    this.totals.set(r.function, (this.totals.get(r.function) ?? 0) + 1);

    const sec = Math.floor(r.endedAt / 1000);
    let b = this.buckets.get(sec);
    if (!b) {
      this.buckets.set(sec, (b = [0, 0, 0, 0]));
      for (const k of this.buckets.keys()) if (k <= sec - this.seconds) this.buckets.delete(k);
    }
    if (r.start === 'cold') b[0]++;
    else if (r.start === 'generic') b[1]++;
    else if (r.start === 'warm') b[2]++;
    if (r.outcome !== 'ok') {
      b[3]++;
      this.failures.unshift({
        function: r.function,
        id: r.id,
        at: new Date(r.endedAt).toISOString(),
        outcome: r.outcome,
        trigger: r.trigger,
        error: r.error ? `${r.error.type}: ${r.error.message}`.slice(0, 300) : r.outcome,
      });
      if (this.failures.length > this.maxFailures) this.failures.length = this.maxFailures;
    }
  }

  /** Forgets a deleted function. */
  forget(fn: string): void {
    this.samples.delete(fn);
    this.totals.delete(fn);
  }

  window(fn: string, now: number): FunctionWindow {
    const all = this.samples.get(fn) ?? [];
    if (all.length > this.perFunction) all.splice(0, all.length - this.perFunction);
    const from = now - this.windowMs;
    let i = all.length;
    while (i > 0 && all[i - 1].endedAt >= from) i--;
    if (i > 0) all.splice(0, i);
    const starts = { cold: 0, generic: 0, warm: 0 };
    let perMinute = 0;
    let errors = 0;
    const durations: number[] = [];
    for (const s of all) {
      if (s.start) starts[s.start]++;
      if (s.endedAt >= now - 60_000) perMinute++;
      if (!s.ok) errors++;
      if (s.start) durations.push(s.durationMs);
    }
    const sorted = sortedCopy(durations);
    const q = (p: number): number | null => (sorted.length ? percentileSorted(sorted, p, 'step') : null);
    return { perMinute, starts, p50Ms: q(0.5), p99Ms: q(0.99), errors, total: this.totals.get(fn) ?? 0 };
  }

  recentFailures(): Failure[] {
    return [...this.failures];
  }

  /** The last `seconds` whole seconds before now, one point each (zeros where nothing ended); the current second is still counting. */
  series(now: number): Series {
    const end = Math.floor(now / 1000) - 1;
    const out: Series = { t: [], cold: [], generic: [], warm: [], errors: [] };
    for (let sec = end - this.seconds + 1; sec <= end; sec++) {
      const b = this.buckets.get(sec) ?? [0, 0, 0, 0];
      out.t.push(sec);
      out.cold.push(b[0]);
      out.generic.push(b[1]);
      out.warm.push(b[2]);
      out.errors.push(b[3]);
    }
    return out;
  }
}
