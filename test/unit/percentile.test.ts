import test from 'ava';
import { percentile, percentileSorted, sortedCopy, type PercentileRule } from '../../src/stats/percentile.js';

const cases: Array<{ values: number[]; p: number; rule: PercentileRule; want: number }> = [
  // linear (numpy's default): interpolates between the closest ranks
  { values: [1], p: 0.5, rule: 'linear', want: 1 },
  { values: [3, 1, 2], p: 0.5, rule: 'linear', want: 2 },
  { values: [4, 1, 3, 2], p: 0.5, rule: 'linear', want: 2.5 },
  { values: [0, 10], p: 0.25, rule: 'linear', want: 2.5 },
  { values: [1, 2, 3, 4, 5], p: 0, rule: 'linear', want: 1 },
  { values: [1, 2, 3, 4, 5], p: 1, rule: 'linear', want: 5 },
  { values: [0, 0.25, 0.25, 0.5, 1], p: 0.75, rule: 'linear', want: 0.5 },
  { values: Array.from({ length: 101 }, (_, i) => 100 - i), p: 0.99, rule: 'linear', want: 99 },
  // step: the sample at floor(p × n), clamped to the last
  { values: [4, 1, 3, 2], p: 0.5, rule: 'step', want: 3 },
  { values: [4, 1, 3, 2], p: 0.49, rule: 'step', want: 2 },
  { values: [4, 1, 3, 2], p: 1, rule: 'step', want: 4 },
  { values: [4, 1, 3, 2], p: 0, rule: 'step', want: 1 },
  { values: Array.from({ length: 20 }, (_, i) => i), p: 0.95, rule: 'step', want: 19 },
  { values: Array.from({ length: 100 }, (_, i) => i), p: 0.99, rule: 'step', want: 99 },
];

for (const c of cases) {
  test(`${c.rule} p${c.p} of [${c.values.length > 6 ? `${c.values.length} values` : c.values.join(', ')}] is ${c.want}`, (t) => {
    const before = [...c.values];
    t.is(percentile(c.values, c.p, c.rule), c.want);
    t.is(percentileSorted(sortedCopy(c.values), c.p, c.rule), c.want);
    t.deepEqual(c.values, before, 'the input is not reordered');
  });
}

test('no samples give NaN under both rules', (t) => {
  t.true(Number.isNaN(percentile([], 0.5)));
  t.true(Number.isNaN(percentile([], 0.5, 'step')));
});

test('a p outside [0, 1] is a RangeError, not a silent out-of-range read', (t) => {
  for (const p of [-0.1, 1.5, NaN, 99]) t.throws(() => percentile([1, 2, 3], p), { instanceOf: RangeError, message: /within \[0, 1\]/ });
});

test('typed arrays and numeric (not string) order', (t) => {
  t.deepEqual(sortedCopy([10, 9, 100, 1]), [1, 9, 10, 100]);
  t.is(percentile(Float64Array.from([10, 9, 100, 1]), 1), 100);
});
