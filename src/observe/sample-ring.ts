/**
 * The last few thousand invocations of one function, for the dashboard's window: three typed
 * arrays used as a ring (end time, duration, start kind and outcome), so that counting an
 * invocation allocates nothing and the garbage collector has no object per invocation to trace or
 * move (a window of sample objects, up to 5,120 per function, made a scrape of a daemon with many
 * busy functions mostly garbage collection: BENCHMARKS.md). The arrays start small and double up
 * to `capacity`; from then on a new sample replaces the oldest. Pure code.
 */
import { percentileSorted } from '../stats/percentile.js';

/** A sample's start kind: the low two bits of its code. */
export const START_CODES = { cold: 1, generic: 2, warm: 3 } as const;
/** Set in a sample's code when the invocation did not end ok. */
export const NOT_OK = 4;

export interface WindowSummary {
  /** Samples that ended at or after `now - 60 s`. */
  perMinute: number;
  starts: { cold: number; generic: number; warm: number };
  /** Step percentiles of the durations of the samples in the window that got an instance. */
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
}

const INITIAL = 64;

export class SampleRing {
  private endedAt: Float64Array;
  private durationMs: Float64Array;
  private code: Uint8Array;
  /** Where the next sample goes. */
  private next = 0;
  /** Samples held (at most `capacity`). */
  size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`SampleRing: capacity must be a positive integer, got ${capacity}`);
    const n = Math.min(INITIAL, capacity);
    this.endedAt = new Float64Array(n);
    this.durationMs = new Float64Array(n);
    this.code = new Uint8Array(n);
  }

  /** Memory held, in samples (for tests: it grows with use, never past `capacity`). */
  get allocated(): number {
    return this.code.length;
  }

  /** Adds a sample; `code` is a START_CODES value (0: it got no instance), plus NOT_OK when it failed. */
  push(endedAt: number, durationMs: number, code: number): void {
    if (this.size === this.code.length && this.size < this.capacity) this.grow();
    const i = this.next;
    this.endedAt[i] = endedAt;
    this.durationMs[i] = durationMs;
    this.code[i] = code;
    this.next = i + 1 === this.code.length ? 0 : i + 1;
    if (this.size < this.code.length) this.size++;
  }

  /** Until it is full the ring has not wrapped: samples are at 0..size-1, and stay there. */
  private grow(): void {
    const n = Math.min(this.code.length * 2, this.capacity);
    const grown = <A extends Float64Array | Uint8Array>(a: A, make: (n: number) => A): A => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.endedAt = grown(this.endedAt, (k) => new Float64Array(k));
    this.durationMs = grown(this.durationMs, (k) => new Float64Array(k));
    this.code = grown(this.code, (k) => new Uint8Array(k));
    this.next = this.size;
  }

  /**
   * The samples that ended at or after `now - windowMs` (in any order of arrival). `scratch` holds
   * the durations while they are sorted; it must have room for `capacity` numbers.
   */
  summarize(now: number, windowMs: number, scratch: Float64Array): WindowSummary {
    const from = now - windowMs;
    const minuteFrom = now - 60_000;
    const starts = { cold: 0, generic: 0, warm: 0 };
    let perMinute = 0;
    let errors = 0;
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      const t = this.endedAt[i];
      if (t < from) continue;
      const c = this.code[i];
      const start = c & 3;
      if (start === START_CODES.cold) starts.cold++;
      else if (start === START_CODES.generic) starts.generic++;
      else if (start === START_CODES.warm) starts.warm++;
      if (t >= minuteFrom) perMinute++;
      if (c & NOT_OK) errors++;
      if (start !== 0) scratch[n++] = this.durationMs[i];
    }
    const sorted = scratch.subarray(0, n).sort();
    const q = (p: number): number | null => (n ? percentileSorted(sorted, p, 'step') : null);
    return { perMinute, starts, p50Ms: q(0.5), p99Ms: q(0.99), errors };
  }
}
