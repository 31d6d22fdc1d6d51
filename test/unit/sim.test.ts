/**
 * The simulator and its baselines on small hand-made traces whose answers are worked out by hand
 * in the comments, plus an end-to-end run of the CLI on a 3-function trace written here.
 *
 * Replay rule reminder: the k-th (k = 0..n−1) of n invocations in minute m starts at
 * (m − 1 + (k + 0.5)/n) × 60 s. Wasted memory is idle MB × s / 1024 (GB·s).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaasCachePolicy, FixedKeepAlivePolicy, HybridHistogramPolicy, MINUTE_MS } from '../../src/model/index.js';
import { simulate } from '../../scripts/sim/simulator.js';
import { percentile } from '../../src/stats/percentile.js';
import { parseTrace, sliceTrace, type Trace, type TraceFunction } from '../../scripts/sim/trace.js';

/** A function for hand-made traces: invocation counts per minute (index 0 = minute 1). */
function fn(id: string, perMinute: number[], durationMs: number, memoryMb: number, coldStartMs = 1): TraceFunction {
  return {
    id,
    app: id,
    trigger: null,
    perMinute: Uint32Array.from(perMinute),
    durationMs,
    memoryMb,
    coldStartMs,
    defaulted: { duration: false, memory: false },
  };
}

function trace(minutes: number, functions: TraceFunction[]): Trace {
  const padded = functions.map((f) => {
    const perMinute = new Uint32Array(minutes);
    perMinute.set(f.perMinute.subarray(0, minutes));
    return { ...f, perMinute };
  });
  return { functions: padded, minutes, invocations: padded.reduce((a, f) => a + f.perMinute.reduce((x, y) => x + y, 0), 0) };
}

const GBs = (mbSeconds: number): number => mbSeconds / 1024;

test('fixed 10 min keep-alive: cold starts, reuse within the window, idle counted to the trace end', (t) => {
  // F: 1 invocation in minutes 1, 5 and 30; 1 s; 100 MB; trace 40 min (2400 s).
  // #1 at 30 s cold, done 31 s, idle until #2 at 270 s (239 s) → warm.
  // #2 done 271 s, keep-alive ends 871 s (600 s idle); #3 at 1770 s is cold.
  // #3 done 1771 s, keep-alive would end 2371 s < 2400 s: 600 s idle.
  // Cold starts 2 of 3; wasted 100 MB × 1439 s.
  const minutes = Array(40).fill(0);
  minutes[0] = 1;
  minutes[4] = 1;
  minutes[29] = 1;
  const r = simulate(trace(40, [fn('F', minutes, 1000, 100)]), new FixedKeepAlivePolicy(10 * MINUTE_MS));
  t.is(r.name, 'fixed-10m');
  t.is(r.invocations, 3);
  t.is(r.coldStarts, 2);
  t.is(r.coldStartRatio, 2 / 3);
  t.true(Math.abs(r.wastedMemoryGBs - GBs(100 * 1439)) < 1e-9);
  t.is(r.peakMemoryMB, 100);
});

test('idle time stops at the trace end even when the keep-alive runs on', (t) => {
  // One invocation at 30 s for 1 s; trace 5 min (300 s); keep-alive 20 min.
  // Idle 31 s → 300 s = 269 s × 100 MB.
  const r = simulate(trace(5, [fn('F', [1], 1000, 100)]), new FixedKeepAlivePolicy(20 * MINUTE_MS));
  t.is(r.coldStarts, 1);
  t.true(Math.abs(r.wastedMemoryGBs - GBs(100 * 269)) < 1e-9);
});

test('concurrency creates extra instances and an arrival takes the most recently used idle one', (t) => {
  // F runs 90 s, 200 MB. Minute 1: 2 invocations at 15 s and 45 s; minute 3: 1 at 150 s.
  // 15 s: cold, instance A busy until 105 s. 45 s: A busy → cold, B busy until 135 s.
  // 150 s: A idle since 105 s, B since 135 s → most recently used is B (warm).
  // A's 10 min keep-alive ends at 705 s (600 s idle). B idle 135→150 s (15 s), then busy until
  // 240 s and idle to the trace end at 720 s (480 s). Total 1095 s × 200 MB.
  // (Taking A instead would give 45 + 480 + 585 = 1110 s.)
  const r = simulate(trace(12, [fn('F', [2, 0, 1], 90_000, 200)]), new FixedKeepAlivePolicy(10 * MINUTE_MS));
  t.is(r.invocations, 3);
  t.is(r.coldStarts, 2);
  t.is(r.peakMemoryMB, 400);
  t.true(Math.abs(r.wastedMemoryGBs - GBs(200 * 1095)) < 1e-9);
  t.is(r.details.instancesCreated, 2);
});

test('p75 per-function cold-start ratio interpolates between functions', (t) => {
  // Ratios with a 10 min keep-alive: A 1 invocation (1/1), B 2 close together (1/2),
  // C and D 4 close together (1/4 each). Sorted 0.25, 0.25, 0.5, 1: the 75th percentile sits at
  // position 2.25 → 0.5 + 0.25 × (1 − 0.5) = 0.625.
  const r = simulate(
    trace(10, [fn('A', [1], 10, 100), fn('B', [1, 1], 10, 100), fn('C', [2, 2], 10, 100), fn('D', [4], 10, 100)]),
    new FixedKeepAlivePolicy(10 * MINUTE_MS),
  );
  t.deepEqual(
    r.details.functions.map((f) => f.coldStarts),
    [1, 1, 1, 1],
  );
  t.is(r.p75FunctionColdStartRatio, 0.625);
  t.is(percentile([0, 1], 0.5), 0.5);
});

test('hybrid histogram: standard 4 h keep-alive without history, then pre-warm at head − 10% until tail + 10%', (t) => {
  // F every 5 min (minutes 1, 6, 11), 0 ms, 100 MB; trace 14 min (840 s). Arrivals 30, 330, 630 s.
  // 30 s: cold; no idle time yet → "uncertain" → keep 4 h: idle 30→330 s (300 s), warm.
  // 330 s: IT 300 s → bin 5; one spike: CV ≈ 15.5 ≥ 2 → certain; head = tail = bin 5.
  //   pre-warm 5 min × 0.9 = 270 s, end (5 + 1) min × 1.1 = 396 s after the finish.
  //   The instance is ended at 330 s, one is loaded at 600 s, idle until the arrival at 630 s (30 s).
  // 630 s: warm. Next pre-warm would be at 900 s, after the trace end.
  // Cold starts 1; wasted 100 MB × 330 s.
  const r = simulate(trace(14, [fn('F', [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], 0, 100)]), new HybridHistogramPolicy());
  t.is(r.coldStarts, 1);
  t.is(r.details.prewarms, 1);
  t.is(r.details.prewarmsUsed, 1);
  t.true(Math.abs(r.wastedMemoryGBs - GBs(100 * 330)) < 1e-9);
  const p = new HybridHistogramPolicy();
  p.onArrival('F', 0, { idle: 0, busy: 0 });
  p.onFinish('F', 0, 0, { idle: 1, busy: 0 });
  t.is(p.keepAliveMs('F', 0, { idle: 1, busy: 0, cause: 'finish' }), 4 * 60 * MINUTE_MS);
  t.is(p.prewarmAt('F', 0), null);
  p.onArrival('F', 300_000, { idle: 1, busy: 0 });
  p.onFinish('F', 300_000, 0, { idle: 1, busy: 0 });
  t.is(p.keepAliveMs('F', 300_000, { idle: 1, busy: 0, cause: 'finish' }), 0);
  t.is(p.prewarmAt('F', 300_000), 300_000 + 270_000);
  t.true(Math.abs(p.keepAliveMs('F', 570_000, { idle: 1, busy: 0, cause: 'prewarm' }) - 126_000) < 1e-6);
});

test('faascache: with room for one instance, each new function evicts the idle one', (t) => {
  // Cap 150 MB, instances 100 MB, 1 s. A at 30 s (cold), B at 90 s (cold: evicts A, idle 31→90 s),
  // A at 150 s (cold: evicts B, idle 91→150 s), A idle 151→180 s (trace end).
  // Cold starts 3; wasted 100 MB × (59 + 59 + 29) s; never more than 100 MB.
  const r = simulate(trace(3, [fn('A', [1, 0, 1], 1000, 100), fn('B', [0, 1], 1000, 100)]), new FaasCachePolicy(), { memoryCapMb: 150 });
  t.is(r.coldStarts, 3);
  t.is(r.details.evictions, 2);
  t.is(r.peakMemoryMB, 100);
  t.true(Math.abs(r.wastedMemoryGBs - GBs(100 * 147)) < 1e-9);
});

test('faascache: the victim is the function with the lowest frequency × cost / size, not the oldest', (t) => {
  // Cap 250 MB; A (cost 1000 ms) used at 10 s and 30 s of minute 1; B (cost 10 ms) at 30 s of
  // minute 2... and C needs room in minute 3. Priorities: A = 2 × 1000/100 = 20, B = 1 × 10/100
  // = 0.1. A is the older idle instance but B goes; then A in minute 4 is warm.
  const r = simulate(
    trace(5, [fn('A', [2, 0, 0, 1], 1000, 100, 1000), fn('B', [0, 1], 1000, 100, 10), fn('C', [0, 0, 1], 1000, 100, 10)]),
    new FaasCachePolicy(),
    { memoryCapMb: 250 },
  );
  t.is(r.details.evictions, 1);
  t.deepEqual(
    r.details.functions.map((f) => f.coldStarts),
    [1, 1, 1],
  );
});

test('without a cap faascache never ends an idle instance', (t) => {
  const r = simulate(trace(30, [fn('A', [1], 1000, 100)]), new FaasCachePolicy());
  t.true(Math.abs(r.wastedMemoryGBs - GBs(100 * (1800 - 31))) < 1e-9);
});

test('trace reader: sample100 and original column names, defaults for missing rows, slicing', (t) => {
  const inv = ['HashFunction,HashOwner,HashApp,minute_1,minute_2,minute_3', 'f1,o1,a1,1,0,2', 'f2,o1,a1,0,3,0', 'f3,o2,a9,1,1,1'].join('\n');
  const run = ['HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum', 'o1,a1,f1,100,3,50,400', 'o1,a1,f2,200,3,50,250'].join('\n');
  const mem = ['HashOwner,HashApp,SampleCount,AverageAllocatedMb', 'o1,a1,10,256'].join('\n');
  const tr = parseTrace(inv, run, mem);
  t.is(tr.minutes, 3);
  t.is(tr.invocations, 9);
  const [f1, f2, f3] = tr.functions;
  t.deepEqual([...f1.perMinute], [1, 0, 2]);
  t.is(f1.durationMs, 100);
  t.is(f1.coldStartMs, 300);
  t.is(f2.memoryMb, 256); // memory belongs to the app
  t.is(f3.durationMs, 1000); // defaults
  t.is(f3.memoryMb, 150);
  t.deepEqual(f3.defaulted, { duration: true, memory: true });
  const orig = parseTrace(
    ['HashOwner,HashApp,HashFunction,Trigger,1,2', 'o,a,f,timer,0,4'].join('\n'),
    ['HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum', 'o,a,f,10,4,1,20'].join('\n'),
    ['HashOwner,HashApp,SampleCount,AverageAllocatedMb', 'o,a,1,64'].join('\n'),
  );
  t.is(orig.functions[0].trigger, 'timer');
  t.deepEqual([...orig.functions[0].perMinute], [0, 4]);
  t.is(orig.functions[0].memoryMb, 64);
  const half = sliceTrace(tr, 2, 4);
  t.is(half.minutes, 2);
  t.is(half.invocations, 7); // minutes 2–3: f1 0+2, f2 3+0, f3 1+1
});

test('CLI: three-function trace → table, JSON with all five policies, SVG plot', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-sim-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const minutes = 120;
  const row = (name: string, f: (m: number) => number): string => [name, name, name, ...Array.from({ length: minutes }, (_, m) => f(m + 1))].join(',');
  const header = ['HashFunction', 'HashOwner', 'HashApp', ...Array.from({ length: minutes }, (_, i) => `minute_${i + 1}`)].join(',');
  writeFileSync(
    join(dir, 'inv.csv'),
    [header, row('timer', (m) => (m % 15 === 1 ? 1 : 0)), row('busy', (m) => 3 + (m % 4)), row('rare', (m) => (m === 10 || m === 100 ? 1 : 0))].join('\n') +
      '\n',
  );
  writeFileSync(
    join(dir, 'run.csv'),
    [
      'HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum',
      'timer,timer,timer,500,8,400,900',
      'busy,busy,busy,2000,500,100,9000',
      'rare,rare,rare,100,2,90,300',
    ].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'mem.csv'),
    ['HashOwner,HashApp,SampleCount,AverageAllocatedMb', 'timer,timer,1,128', 'busy,busy,1,256', 'rare,rare,1,64'].join('\n') + '\n',
  );
  const out = execFileSync(
    process.execPath,
    [
      join(__dirname, '..', '..', 'scripts', 'sim.js'),
      '--invocations',
      join(dir, 'inv.csv'),
      '--durations',
      join(dir, 'run.csv'),
      '--memory',
      join(dir, 'mem.csv'),
      '--json',
      join(dir, 'out.json'),
      '--plot',
      join(dir, 'out.svg'),
      '--quiet',
    ],
    { encoding: 'utf8' },
  );
  const json = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { policies: Record<string, unknown>[] };
  t.deepEqual(
    json.policies.map((p) => p['name']),
    ['hearth', 'fixed-10m', 'fixed-20m', 'hybrid-histogram', 'faascache'],
  );
  const expected = 8 + 2 + Array.from({ length: minutes }, (_, m) => 3 + ((m + 1) % 4)).reduce((a, b) => a + b, 0);
  for (const p of json.policies) {
    t.deepEqual(Object.keys(p).sort(), ['coldStartRatio', 'coldStarts', 'invocations', 'name', 'p75FunctionColdStartRatio', 'peakMemoryMB', 'wastedMemoryGBs']);
    t.is(p['invocations'], expected);
    t.true((p['coldStarts'] as number) >= 3); // every function's first invocation is cold
    t.true((p['wastedMemoryGBs'] as number) >= 0);
  }
  for (const name of ['hearth', 'fixed-10m', 'hybrid-histogram', 'faascache']) t.true(out.includes(name));
  const svg = readFileSync(join(dir, 'out.svg'), 'utf8');
  t.true(svg.startsWith('<svg'));
  t.is((svg.match(/<circle /g) ?? []).length, 10); // a point and a legend mark per policy
});

test('CLI rejects an unknown policy with a usage message', (t) => {
  const err = t.throws<Error & { status: number; stderr: string }>(() =>
    execFileSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'sim.js'), '--invocations', 'x', '--policy', 'nope'], {
      encoding: 'utf8',
      stdio: 'pipe',
    }),
  );
  t.is(err.status, 2);
  t.regex(err.stderr, /unknown policy nope/);
});
