/** scripts/bench/headline.ts: the headline figures of a run, from a small results fixture. */
import test from 'ava';
import { computeHeadline, headlineSection } from '../../scripts/bench/headline.js';
import type { BenchResults } from '../../scripts/bench/results.js';
import type { StartSeries } from '../../scripts/bench/start-latency.js';
import type { OverheadPoint, ThroughputPoint } from '../../scripts/bench/throughput.js';
import { summarize } from '../../scripts/bench/stats.js';

const series = (runtime: 'python' | 'node', method: StartSeries['method'], samples: number[], handler: 'hello' | 'bigdep' = 'hello'): StartSeries => ({
  runtime,
  handler,
  method,
  samples,
  summary: summarize(samples),
  excluded: 0,
});

const point = (runtime: 'python' | 'node', concurrency: number, perSecond: number, replyPoll = false): ThroughputPoint => ({
  runtime,
  concurrency,
  seconds: 1,
  invocations: perSecond,
  perSecond,
  latency: summarize([0.1]),
  daemonCpuMsPerInvocation: 0.05,
  nonWarm: 0,
  replyPoll,
});

const overhead = (runtime: 'python' | 'node', order: 'blocks' | 'alternating', added: number): OverheadPoint => ({
  runtime,
  order,
  bare: summarize([0.05]),
  httpEcho: summarize([0.1]),
  hearth: summarize([0.05 + added, 0.05 + added]),
  addedMedianMs: added,
  addedP99Ms: added * 2,
});

function fixture(): BenchResults {
  return {
    version: 1,
    mode: 'smoke',
    command: 'npm run bench -- --smoke',
    startedAt: '2026-12-02T00:00:00.000Z',
    finishedAt: '2026-12-02T00:01:00.000Z',
    machine: { cpu: 'x', cores: 2, kernel: 'k', memoryMb: 1, os: 'o', node: 'n', python: 'p', bwrap: 'b', crun: 'c', cgroups: 'v2' },
    suites: {
      start: {
        rounds: { hello: 3, bigdep: 1 },
        idleRounds: 2,
        coldDaemonRestarts: 0,
        series: [
          series('python', 'hearth-generic', [1, 2, 3]),
          series('python', 'hearth-generic', [100], 'bigdep'),
          series('node', 'hearth-generic', [2, 3, 4]),
          series('python', 'bwrap', [20, 21, 22]),
          series('node', 'bwrap', [30, 31, 32]),
          series('python', 'crun', [40, 41, 42]),
          { ...series('node', 'crun', []), error: 'crun: no cgroup\nstack' },
          series('python', 'hearth-cold', [6, 7, 8]),
          series('node', 'hearth-cold', [34, 35, 36]),
          series('python', 'hearth-warm', [1.2, 1.3, 1.4]),
          series('node', 'hearth-warm', [1.1, 1.2, 1.3]),
          series('python', 'hearth-generic-idle', [4, 5]),
          series('node', 'hearth-generic-idle', [5, 6]),
          series('python', 'uds-idle', [0.2, 0.3]),
          series('node', 'uds-idle', [0.4, 0.5]),
          series('python', 'uds-relay-idle', [0.6, 0.7]),
          series('node', 'uds-relay-idle', [0.8, 0.9]),
        ],
        loopBlock: [
          { runtime: 'python', kind: 'cold', samples: [0.1, 0.2], summary: summarize([0.1, 0.2]), busyMs: summarize([1]), excluded: 0 },
          { runtime: 'node', kind: 'cold', samples: [2, 3], summary: summarize([2, 3]), busyMs: summarize([4]), excluded: 0 },
        ],
      },
      throughput: {
        throughput: [point('python', 1, 4000), point('python', 8, 11_700), point('node', 8, 9_000, true), point('node', 8, 13_400)],
        overhead: [overhead('python', 'alternating', 0.3), overhead('python', 'blocks', 0.17), overhead('node', 'blocks', 0.14)],
      },
    },
    errors: { replay: 'Error: trace not found\n    at x' },
  };
}

test('start figures come from the hello series of each runtime, as median, p99 and count', (t) => {
  const h = computeHeadline(fixture());
  t.deepEqual(h.generic_ms.python, { median: 2, p99: 2.98, n: 3 });
  t.is(h.generic_ms.node?.median, 3);
  t.is(h.bwrap_ms.node?.median, 31);
  t.is(h.new_instance_ms.node?.median, 35);
  t.is(h.warm_interleaved_ms.python?.median, 1.3);
  t.is(h.generic_after_idle_ms.python?.median, 4.5);
});

test('the idle floor pools both runtimes; loop block p99 pools every instance made', (t) => {
  const h = computeHeadline(fixture());
  t.is(h.idle_floor_ms.one_hop?.n, 4);
  t.is(h.idle_floor_ms.one_hop?.median, 0.35);
  t.is(h.idle_floor_ms.relay?.median, 0.75);
  t.is(h.loop_block_ms.node?.median, 2.5);
  t.is(h.loop_block_ms.python?.n, 2);
  t.true(h.loop_block_p99_ms !== null && h.loop_block_p99_ms > 2.9 && h.loop_block_p99_ms <= 3);
});

test('overhead is the blocks order; throughput the default daemon at concurrency 8', (t) => {
  const h = computeHeadline(fixture());
  t.deepEqual(h.warm_overhead_ms.python, { median: 0.17, p99: 0.34, n: 2 });
  t.is(h.throughput_per_s.python, 11_700);
  t.is(h.throughput_per_s.node, 13_400);
});

test('a figure that could not be measured is null, with the reason under its path', (t) => {
  const h = computeHeadline(fixture());
  t.is(h.crun_ms.node, null);
  t.is(h.missing['crun_ms.node'], 'crun failed: crun: no cgroup');
  t.is(h.replay_warm_overhead_ms, null);
  t.is(h.missing.replay_warm_overhead_ms, 'suite replay failed: Error: trace not found');
  t.is(h.crun_ms.python?.median, 41);
  t.false('generic_ms.python' in h.missing);
});

test('suites that did not run leave every key present, null, and say so', (t) => {
  const r = fixture();
  r.suites = {};
  r.errors = {};
  const h = computeHeadline(r);
  for (const key of [
    'generic_ms',
    'bwrap_ms',
    'crun_ms',
    'new_instance_ms',
    'generic_after_idle_ms',
    'warm_interleaved_ms',
    'warm_overhead_ms',
    'throughput_per_s',
  ] as const) {
    t.deepEqual(h[key], { python: null, node: null }, key);
  }
  t.is(h.missing['generic_ms.node'], 'suite start did not run');
  t.is(h.missing['throughput_per_s.python'], 'suite throughput did not run');
  t.is(h.loop_block_p99_ms, null);
  t.is(h.missing.loop_block_p99_ms, 'suite start did not run');
  t.deepEqual(h.idle_floor_ms, { one_hop: null, relay: null });
});

test('results from before the idle and loop-probe series: those figures are missing, the rest computed', (t) => {
  const r = fixture();
  const start = r.suites.start!;
  start.series = start.series.filter((s) => !['hearth-generic-idle', 'uds-idle', 'uds-relay-idle'].includes(s.method));
  delete start.loopBlock;
  const h = computeHeadline(r);
  t.is(h.generic_after_idle_ms.python, null);
  t.is(h.missing['generic_after_idle_ms.python'], 'no hearth-generic-idle series in this run');
  t.is(h.missing.loop_block_p99_ms, 'the loop probe did not run in this run');
  t.is(h.generic_ms.python?.median, 2);
});

test('the report table shows every key, the ratio to bubblewrap and what is missing', (t) => {
  const md = headlineSection(computeHeadline(fixture())).join('\n');
  for (const key of [
    'generic_ms',
    'bwrap_ms',
    'crun_ms',
    'new_instance_ms',
    'generic_after_idle_ms',
    'idle_floor_ms',
    'warm_interleaved_ms',
    'warm_overhead_ms',
    'throughput_per_s',
    'replay_warm_overhead_ms',
    'loop_block_ms',
  ]) {
    t.regex(md, new RegExp(`\\| \`${key}\` \\|`), key);
  }
  t.regex(md, /\| `generic_ms` \| generic start, hello \| 2\.00 \(p99 2\.98\) \| 3\.00 \(p99 3\.98\) \|/);
  t.regex(md, /Python 10\.5×, Node 10\.3×/);
  t.regex(md, /- `crun_ms\.node`: crun failed/);
});
