/**
 * The dashboard's per-function ring: what it summarises is what a sorted array of the same
 * samples gives (the reference below), while it grows, after it wraps, and with samples that
 * left the window.
 */
import test from 'ava';
import { NOT_OK, SampleRing, START_CODES, type WindowSummary } from '../../src/observe/sample-ring.js';
import { percentileSorted, sortedCopy } from '../../src/stats/percentile.js';

interface Sample {
  endedAt: number;
  durationMs: number;
  code: number;
}

/** The reference: the last `capacity` samples as plain objects, filtered and sorted. */
function reference(all: Sample[], capacity: number, now: number, windowMs: number): WindowSummary {
  const kept = all.slice(-capacity).filter((s) => s.endedAt >= now - windowMs);
  const withStart = kept.filter((s) => (s.code & 3) !== 0);
  const sorted = sortedCopy(withStart.map((s) => s.durationMs));
  const q = (p: number) => (sorted.length ? percentileSorted(sorted, p, 'step') : null);
  const count = (c: number) => kept.filter((s) => (s.code & 3) === c).length;
  return {
    perMinute: kept.filter((s) => s.endedAt >= now - 60_000).length,
    starts: { cold: count(START_CODES.cold), generic: count(START_CODES.generic), warm: count(START_CODES.warm) },
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    errors: kept.filter((s) => s.code & NOT_OK).length,
  };
}

/** A small deterministic generator (no Math.random: a failure must reproduce). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

test('summaries equal the sorted-array reference while the ring grows, wraps and samples age out', (t) => {
  for (const capacity of [1, 7, 64, 100, 1000]) {
    const ring = new SampleRing(capacity);
    const scratch = new Float64Array(capacity);
    const rnd = lcg(capacity);
    const all: Sample[] = [];
    let now = 1_000_000;
    for (let i = 0; i < 2500; i++) {
      now += Math.floor(rnd() * 400); // about 2.5 samples a second: some of the last ones are older than the window
      const s = { endedAt: now, durationMs: Math.round(rnd() * 10_000) / 100, code: Math.floor(rnd() * 4) | (rnd() < 0.1 ? NOT_OK : 0) };
      ring.push(s.endedAt, s.durationMs, s.code);
      all.push(s);
      if (i % 97 === 0 || i === 2499)
        for (const windowMs of [30_000, 300_000])
          t.deepEqual(ring.summarize(now, windowMs, scratch), reference(all, capacity, now, windowMs), `capacity ${capacity}, sample ${i}, window ${windowMs}`);
    }
    t.is(ring.size, Math.min(capacity, 2500));
    t.is(ring.allocated, capacity, 'grown to its capacity, not past it');
  }
});

test('an empty window has no percentiles; equal durations and a single sample', (t) => {
  const ring = new SampleRing(16);
  const scratch = new Float64Array(16);
  t.deepEqual(ring.summarize(0, 1000, scratch), { perMinute: 0, starts: { cold: 0, generic: 0, warm: 0 }, p50Ms: null, p99Ms: null, errors: 0 });
  ring.push(100, 2.5, START_CODES.warm);
  t.like(ring.summarize(100, 1000, scratch), { p50Ms: 2.5, p99Ms: 2.5, perMinute: 1 });
  ring.push(200, 9, 0 | NOT_OK); // throttled: no instance, not in the latency percentiles
  t.like(ring.summarize(200, 1000, scratch), { p50Ms: 2.5, p99Ms: 2.5, errors: 1, perMinute: 2 });
  t.like(ring.summarize(5000, 1000, scratch), { p50Ms: null, perMinute: 0, errors: 0 }, 'both older than the window');
});

test('a ring starts small and grows only as samples come', (t) => {
  const ring = new SampleRing(4096);
  t.true(ring.allocated <= 64);
  for (let i = 0; i < 100; i++) ring.push(i, i, START_CODES.cold);
  t.is(ring.allocated, 128);
  t.throws(() => new SampleRing(0), { instanceOf: RangeError });
});
