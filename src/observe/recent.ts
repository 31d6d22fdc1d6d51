/**
 * The recent past the dashboard shows, kept in memory from the invocation feed: per function the
 * last few minutes of invocations (rate, start kinds, p50/p99, errors), a per-second series of the
 * whole daemon for the charts, and the latest failures. Bounded: the last `perFunction`
 * invocations per function (a typed-array ring each, sample-ring.ts), `seconds` per-second
 * buckets (one typed array for the daemon), `failures` failures. Counting an invocation allocates
 * nothing unless it failed.
 */
import type { InvocationRecord } from '../dispatch/invocations.js';
import { NOT_OK, SampleRing, START_CODES } from './sample-ring.js';

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

/** Counts of one second in the per-second buckets. */
const COLD = 0;
const GENERIC = 1;
const WARM = 2;
const ERRORS = 3;
const PER_SECOND = 4;

interface PerFunction {
  ring: SampleRing;
  /** Invocations since the daemon started. */
  total: number;
}

export class RecentInvocations {
  private readonly windowMs: number;
  private readonly perFunction: number;
  private readonly seconds: number;
  private readonly maxFailures: number;
  private readonly fns = new Map<string, PerFunction>();
  private readonly failures: Failure[] = [];
  /** Slot `s % seconds` holds second `s` (epoch s; -1: none yet): its counts at PER_SECOND × slot. */
  private readonly bucketSecond: Float64Array;
  private readonly bucketCounts: Uint32Array;
  /** Durations while a window is sorted. */
  private readonly scratch: Float64Array;

  constructor(opts: RecentOptions = {}) {
    this.windowMs = opts.windowMs ?? 5 * 60_000;
    this.perFunction = opts.perFunction ?? 4096;
    this.seconds = opts.seconds ?? 300;
    this.maxFailures = opts.failures ?? 20;
    this.bucketSecond = new Float64Array(this.seconds).fill(-1);
    this.bucketCounts = new Uint32Array(this.seconds * PER_SECOND);
    this.scratch = new Float64Array(this.perFunction);
  }

  add(r: InvocationRecord): void {
    let f = this.fns.get(r.function);
    if (!f) this.fns.set(r.function, (f = { ring: new SampleRing(this.perFunction), total: 0 }));
    const ok = r.outcome === 'ok';
    f.ring.push(r.endedAt, r.durationMs, (r.start === null ? 0 : START_CODES[r.start]) | (ok ? 0 : NOT_OK));
    f.total++;

    const sec = Math.floor(r.endedAt / 1000);
    const slot = sec % this.seconds;
    const held = this.bucketSecond[slot];
    if (held !== sec) {
      if (held > sec) return this.failed(r); // older than the buckets kept
      this.bucketSecond[slot] = sec;
      this.bucketCounts.fill(0, slot * PER_SECOND, (slot + 1) * PER_SECOND);
    }
    const at = slot * PER_SECOND;
    if (r.start === 'cold') this.bucketCounts[at + COLD]++;
    else if (r.start === 'generic') this.bucketCounts[at + GENERIC]++;
    else if (r.start === 'warm') this.bucketCounts[at + WARM]++;
    if (!ok) this.bucketCounts[at + ERRORS]++;
    this.failed(r);
  }

  private failed(r: InvocationRecord): void {
    if (r.outcome === 'ok') return;
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

  /** Forgets a deleted function. */
  forget(fn: string): void {
    this.fns.delete(fn);
  }

  window(fn: string, now: number): FunctionWindow {
    const f = this.fns.get(fn);
    if (!f) return { perMinute: 0, starts: { cold: 0, generic: 0, warm: 0 }, p50Ms: null, p99Ms: null, errors: 0, total: 0 };
    const s = f.ring.summarize(now, this.windowMs, this.scratch);
    return { perMinute: s.perMinute, starts: s.starts, p50Ms: s.p50Ms, p99Ms: s.p99Ms, errors: s.errors, total: f.total };
  }

  recentFailures(): Failure[] {
    return [...this.failures];
  }

  /** The last `seconds` whole seconds before now, one point each (zeros where nothing ended); the current second is still counting. */
  series(now: number): Series {
    const end = Math.floor(now / 1000) - 1;
    const out: Series = { t: [], cold: [], generic: [], warm: [], errors: [] };
    for (let sec = end - this.seconds + 1; sec <= end; sec++) {
      const slot = ((sec % this.seconds) + this.seconds) % this.seconds;
      const at = slot * PER_SECOND;
      const here = this.bucketSecond[slot] === sec;
      out.t.push(sec);
      out.cold.push(here ? this.bucketCounts[at + COLD] : 0);
      out.generic.push(here ? this.bucketCounts[at + GENERIC] : 0);
      out.warm.push(here ? this.bucketCounts[at + WARM] : 0);
      out.errors.push(here ? this.bucketCounts[at + ERRORS] : 0);
    }
    return out;
  }
}
