/** The bootstrap interval bench-observe reports for its side-by-side ratios. */
import test from 'ava';
import { bootstrapMedian } from '../../scripts/bench/stats.js';

test('bootstrapMedian: the median of the samples inside an interval that narrows with more samples', (t) => {
  const xs = (n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 37) % 101) / 1000); // 1.000..1.100, spread evenly
  const small = bootstrapMedian(xs(20));
  const large = bootstrapMedian(xs(400));
  for (const c of [small, large]) {
    t.true(c.low <= c.median && c.median <= c.high, JSON.stringify(c));
    t.true(c.low >= 1 && c.high <= 1.1);
  }
  t.true(large.high - large.low < small.high - small.low, 'more pairs, a narrower interval');
  t.deepEqual(bootstrapMedian(xs(20)), small, 'the same seed gives the same interval');
});

test('bootstrapMedian: one sample or equal samples give a zero-width interval; none is an error', (t) => {
  t.like(bootstrapMedian([1.5]), { median: 1.5, low: 1.5, high: 1.5 });
  t.like(bootstrapMedian([2, 2, 2, 2]), { median: 2, low: 2, high: 2 });
  t.throws(() => bootstrapMedian([]), { instanceOf: RangeError });
});
