/** scripts/bench-compare.ts: the headlines, or the Targets tables, of two runs side by side. */
import test from 'ava';
import { compareHeadlines, compareTables, headlineFigures, targetRows } from '../../scripts/bench-compare.js';
import type { Headline } from '../../scripts/bench/headline.js';

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

test('two headlines side by side: every figure by its path, median and p99, nulls as a dash', (t) => {
  const lat = (median: number, p99: number) => ({ median, p99, n: 10 });
  const none = { python: null, node: null };
  const base: Headline = {
    generic_ms: { python: lat(2, 4), node: null },
    bwrap_ms: none,
    crun_ms: none,
    new_instance_ms: none,
    generic_after_idle_ms: none,
    idle_floor_ms: { one_hop: lat(0.25, 0.5), relay: null },
    warm_interleaved_ms: none,
    warm_overhead_ms: none,
    throughput_per_s: { python: 10_000, node: null },
    replay_warm_overhead_ms: null,
    loop_block_p99_ms: 2,
    loop_block_ms: none,
    missing: { 'generic_ms.node': 'suite start did not run' },
  };
  const after: Headline = {
    ...base,
    generic_ms: { python: lat(1, 2), node: lat(1.5, 3) },
    throughput_per_s: { python: 20_000, node: null },
    loop_block_p99_ms: null,
  };
  t.deepEqual(
    [...headlineFigures(base).keys()],
    [
      'generic_ms.python.median',
      'generic_ms.python.p99',
      'idle_floor_ms.one_hop.median',
      'idle_floor_ms.one_hop.p99',
      'throughput_per_s.python',
      'loop_block_p99_ms',
    ],
  );
  const lines = compareHeadlines(base, after, ['before', 'after']).trim().split('\n');
  t.is(lines[0], '| figure | before | after | change |');
  t.true(lines.includes('| generic_ms.python.median | 2.00 | 1.00 | -50% |'));
  t.true(lines.includes('| throughput_per_s.python | 10000 | 20000 | 100% |'));
  t.true(lines.includes('| loop_block_p99_ms | 2.00 | – |  |'));
  t.true(lines.includes('| generic_ms.node.median | – | 1.50 |  |'));
});
