import test from 'ava';
import { genericTarget, predictedGenericNeed } from '../../src/model/generic-demand.js';

const opts = { windowMs: 60_000, burstMs: 10_000, cap: 5 };

test('no non-warm arrivals: the base', (t) => {
  t.is(genericTarget([], 1_000_000, 2, opts), 2);
});

test('the largest burst within the burst span counts, older than the window does not', (t) => {
  const now = 100_000;
  // 3 arrivals within 10 s at 50-55 s, 2 more spread out, 4 outside the window (before 40 s).
  const times = [1_000, 2_000, 3_000, 4_000, 50_000, 52_000, 55_000, 70_000, 90_000];
  t.is(genericTarget(times, now, 1, opts), 1 + 3);
});

test('the extra is capped', (t) => {
  const times = Array.from({ length: 50 }, (_, i) => 95_000 + i * 10);
  t.is(genericTarget(times, 100_000, 0, opts), 5);
});

test('predicted need: the 99th percentile of the arrivals expected in one burst span', (t) => {
  t.is(predictedGenericNeed(0, opts), 0);
  // 36/h = 0.1 per 10 s: P(0) = 0.905, P(<=1) = 0.995 -> 1.
  t.is(predictedGenericNeed(36, opts), 1);
  // 3600/h = 10 per 10 s: the 99th percentile of Poisson(10) is 18, capped at 5.
  t.is(predictedGenericNeed(3600, opts), 5);
  t.is(predictedGenericNeed(3600, { ...opts, cap: 100 }), 18);
});
