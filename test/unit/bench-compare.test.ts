/** scripts/bench-compare.ts: the Targets tables of two runs, joined by target. */
import test from 'ava';
import { compareTables, targetRows } from '../../scripts/bench-compare.js';

const report = (rows: string[]): string =>
  ['# Benchmarks', '', '## Targets', '', '| target | measured | met |', '| --- | --- | --- |', ...rows, '', '## 1. Start latency', '| x | 9 ms | yes |'].join(
    '\n',
  );

test('rows of the Targets section only, header and separator skipped', (t) => {
  const rows = targetRows(report(['| generic start, Python | 1.55 ms | yes |', '| warm | 0.2 ms | **no** |']));
  t.deepEqual(rows, [
    { target: 'generic start, Python', measured: '1.55 ms', met: 'yes' },
    { target: 'warm', measured: '0.2 ms', met: '**no**' },
  ]);
});

test('a report without a Targets section is an error', (t) => {
  t.throws(() => targetRows('# Benchmarks\n'), { message: /Targets/ });
});

test('the change is after against before, in percent; rows of one side only show a dash', (t) => {
  const before = targetRows(report(['| a | 2.00 ms | yes |', '| gone | 1 ms | yes |']));
  const after = targetRows(report(['| a | 1.50 ms | yes |', '| new | 3 ms | yes |']));
  const lines = compareTables(before, after, ['old', 'new']).trim().split('\n');
  t.is(lines[0], '| target | old | new | change |');
  t.is(lines[2], '| a | 2.00 ms | 1.50 ms | -25% |');
  t.is(lines[3], '| gone | 1 ms | – |  |');
  t.is(lines[4], '| new | – | 3 ms | |');
});
