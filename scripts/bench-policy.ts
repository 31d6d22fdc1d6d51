/**
 * Cost of the pool policy on the daemon's event loop, and of a whole simulated day.
 *
 *   npx tsc -p tsconfig.json && flock /tmp/hearth-bench.lock node dist/scripts/bench-policy.js [--data DIR] [--rounds 3]
 *
 * Workload: train350 (319,044 invocations) plus the same functions rotated by 12 hours under new
 * names: 638,088 invocations, 700 functions, one day (the issue asks for at least 500,000).
 * Each round replays the day with fixed-10m and with hearth, in turn; the report gives the median
 * wall time of each and their ratio (the target: hearth ≤ 4× fixed-10m). A further hearth run
 * times every policy call the pool makes: per arrival (onArrival) and per release (onFinish +
 * keepAliveMs + prewarmAt, what the pool asks when an invocation ends), median / p99 / mean µs.
 */
import { join } from 'node:path';
import { FixedKeepAlivePolicy, HearthPolicy, MINUTE_MS, type IdleContext, type Policy, type PoolCounts } from '../src/model/index.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';
import { summarize } from './bench/stats.js';
import { simulate } from './sim/simulator.js';
import { readTrace, type Trace } from './sim/trace.js';

const USAGE = 'usage: node dist/scripts/bench-policy.js [--data DIR] [--rounds N]';
const { DATA, ROUNDS } = scriptArgs('bench-policy', USAGE, { data: VALUE, rounds: VALUE }, ({ values: v }) => ({
  DATA: v.data ?? '/work/shared/data/azure2019',
  ROUNDS: numberArg(v.rounds, '--rounds', 3, COUNT),
}));

/** train350 and a copy rotated by half a day under new names. */
function workload(): Trace {
  const t = readTrace(join(DATA, 'train350_inv.csv'), join(DATA, 'train350_run.csv'), join(DATA, 'train350_mem.csv'));
  const half = Math.floor(t.minutes / 2);
  const rotated = t.functions.map((f) => {
    const perMinute = new Uint32Array(f.perMinute.length);
    perMinute.set(f.perMinute.subarray(half));
    perMinute.set(f.perMinute.subarray(0, half), f.perMinute.length - half);
    return { ...f, id: `${f.id}@12h`, app: `${f.app}@12h`, perMinute };
  });
  return { functions: [...t.functions, ...rotated], minutes: t.minutes, invocations: 2 * t.invocations };
}

/** Wraps a policy so that every arrival and every release is timed. */
function timed(p: Policy): { policy: Policy; arrivals: number[]; releases: number[] } {
  const arrivals: number[] = [];
  const releases: number[] = [];
  let releaseStart = 0n;
  let inRelease = false;
  const policy = Object.create(p) as Policy;
  policy.onArrival = (fn: string, now: number, pool: PoolCounts) => {
    const t0 = process.hrtime.bigint();
    p.onArrival(fn, now, pool);
    arrivals.push(Number(process.hrtime.bigint() - t0) / 1e3);
  };
  policy.onFinish = (fn: string, now: number, d: number, pool: PoolCounts) => {
    releaseStart = process.hrtime.bigint();
    inRelease = true;
    p.onFinish(fn, now, d, pool);
  };
  policy.keepAliveMs = (fn: string, now: number, ctx: IdleContext) => p.keepAliveMs(fn, now, ctx);
  policy.prewarmAt = (fn: string, now: number) => {
    const at = p.prewarmAt(fn, now);
    if (inRelease) {
      releases.push(Number(process.hrtime.bigint() - releaseStart) / 1e3);
      inRelease = false;
    }
    return at;
  };
  return { policy, arrivals, releases };
}

function wallMs(trace: Trace, make: () => Policy): number {
  const t0 = process.hrtime.bigint();
  simulate(trace, make());
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function main(): void {
  const trace = workload();
  const fixed: number[] = [];
  const hearth: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    fixed.push(wallMs(trace, () => new FixedKeepAlivePolicy(10 * MINUTE_MS)));
    hearth.push(wallMs(trace, () => new HearthPolicy()));
  }
  const f = summarize(fixed).median;
  const h = summarize(hearth).median;
  const t = timed(new HearthPolicy());
  simulate(trace, t.policy);
  const a = summarize(t.arrivals);
  const rel = summarize(t.releases);
  const us = (x: number): string => x.toFixed(2);
  const lines = [
    `workload: ${trace.functions.length} functions, ${trace.invocations} invocations, ${trace.minutes} minutes; ${ROUNDS} rounds`,
    '',
    '| replay of the day | median wall time (s) |',
    '| --- | ---: |',
    `| fixed-10m | ${(f / 1000).toFixed(2)} |`,
    `| hearth | ${(h / 1000).toFixed(2)} |`,
    `| ratio hearth ÷ fixed-10m | ${(h / f).toFixed(2)}× (target ≤ 4×) |`,
    '',
    '| hearth policy call | calls | median µs | p99 µs | mean µs |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| per arrival (onArrival) | ${a.n} | ${us(a.median)} | ${us(a.p99)} | ${us(a.mean)} |`,
    `| per release (onFinish + keepAliveMs + prewarmAt) | ${rel.n} | ${us(rel.median)} | ${us(rel.p99)} | ${us(rel.mean)} |`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main();
