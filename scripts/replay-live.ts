/**
 * Issue 17, the live check: a slice of an Azure 2019 trace file replayed through a real daemon
 * (in this process, root: real sandboxes) with the Hearth policy on a compressed policy clock,
 * next to the simulator's prediction for exactly the same slice and policy.
 *
 *   npx tsc -p tsconfig.json && flock /tmp/hearth-bench.lock node dist/scripts/replay-live.js \
 *     [--file train350] [--from-minute 601] [--minutes 60] [--functions 40] [--speedup 30]
 *     [--max-per-minute 60] [--generic-base 1] [--json OUT] [--dry-run]
 *
 * Same slice: `replayTrace` (scripts/bench/replay.ts) picks the first N functions of the file with
 * arrivals in the slice (and at most `--max-per-minute` in any minute), memory clamped to what the
 * daemon accepts. Same arrivals: the simulator's replay rule (`arrivalSchedule`), divided by the
 * speedup, fired open-loop. Same policy: the daemon's `HearthPolicy` with default options sees a
 * clock that runs `speedup` times faster than real time and starts at trace time 0 (a day boundary,
 * as the simulator's 0) when the first arrival is due; the handler sleeps the function's average
 * duration ÷ speedup, so the policy sees the trace's durations. The generic-pool sizer runs on the
 * policy clock too (every 5 virtual s), as `scripts/sim-generic.ts` models it.
 *
 * Counts: live starts are what the daemon reports per invocation (warm / generic / cold); a
 * first invocation (no instance of its function) is generic or cold, and "cold" is one that found no
 * generic instance. The simulator counts warm vs not; generic misses come from `genericMisses`
 * (scripts/sim/generic.ts) with a refill of 50 ms (the model's) and with the refill the live run
 * measured (median init time of its cold starts × speedup: what a compressed run really gives).
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../src/clock.js';
import { systemClock } from '../src/clock.js';
import { ControlClient } from '../src/control/client.js';
import { packDirectory } from '../src/cli/pack.js';
import { loadConfig } from '../src/config.js';
import { Daemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/log.js';
import { HearthPolicy } from '../src/model/index.js';
import { COUNT, numberArg, scriptArgs, SWITCH, VALUE } from './cli-args.js';
import { arrivalSchedule, replayTrace } from './bench/replay.js';
import type { InvokeReply } from './bench/daemon-process.js';
import { genericMisses } from './sim/generic.js';
import { simulate } from './sim/simulator.js';
import type { Trace } from './sim/trace.js';

const USAGE =
  'usage: node dist/scripts/replay-live.js [--file NAME] [--from-minute M] [--minutes N] [--functions N] [--speedup X] [--max-per-minute N] [--generic-base N] [--json OUT] [--dry-run]';
// prettier-ignore
const OPTS = { file: VALUE, 'from-minute': VALUE, minutes: VALUE, functions: VALUE, speedup: VALUE, 'max-per-minute': VALUE, 'generic-base': VALUE, json: VALUE, 'dry-run': SWITCH };
const O = scriptArgs('replay-live', USAGE, OPTS, ({ values: v }) => ({
  file: v.file ?? 'train350',
  fromMinute: numberArg(v['from-minute'], '--from-minute', 601, COUNT),
  minutes: numberArg(v.minutes, '--minutes', 60, COUNT),
  functions: numberArg(v.functions, '--functions', 40, COUNT),
  speedup: numberArg(v.speedup, '--speedup', 30, { min: 1 }),
  maxPerMinute: numberArg(v['max-per-minute'], '--max-per-minute', 60, COUNT),
  genericBase: numberArg(v['generic-base'], '--generic-base', 1, { integer: true, min: 0 }),
  json: v.json,
  dryRun: v['dry-run'] ?? false,
}));

/** Policy time: frozen at `base` until `begin()`, then `factor` times real time. Timers are scaled. */
class ReplayClock implements Clock {
  private t0: number | null = null;
  constructor(
    readonly factor: number,
    readonly base: number,
  ) {}
  begin(): void {
    this.t0 = Date.now();
  }
  now(): number {
    return this.t0 === null ? this.base : this.base + (Date.now() - this.t0) * this.factor;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return setTimeout(fn, Math.max(0, ms) / this.factor);
  }
  clearTimeout(h: TimerHandle): void {
    clearTimeout(h as NodeJS.Timeout);
  }
}

interface Counts {
  invocations: number;
  warm: number;
  generic: number;
  cold: number;
}

/** The simulator's prediction: warm vs first invocations, and first invocations without a generic instance. */
function predict(trace: Trace, base: number, refills: number[]) {
  const policy = new HearthPolicy();
  const creations: { t: number; prewarm: boolean }[] = [];
  const rates: number[] = [];
  const r = simulate(trace, policy, {
    onCreate: (t, prewarm) => creations.push({ t, prewarm }),
    onMinute: (t) => {
      let sum = 0;
      for (const f of trace.functions) sum += policy.expectedColdRatePerHour(f.id, t);
      rates.push(sum);
    },
  });
  const rate = (t: number): number => rates[Math.min(rates.length - 1, Math.floor(t / 60_000))] ?? 0;
  const misses = refills.map((refillMs) => ({ refillMs, ...genericMisses(creations, rate, { base, refillMs, periodMs: 5000 }) }));
  return { invocations: r.invocations, warm: r.invocations - r.coldStarts, first: r.coldStarts, prewarms: r.details.prewarms, misses };
}

async function live(trace: Trace) {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-replay-live-'));
  const fnDir = join(dir, 'fn');
  mkdirSync(fnDir);
  writeFileSync(join(fnDir, 'main.py'), 'import time\n\ndef handler(event, context):\n    time.sleep(event.get("ms", 0) / 1000.0)\n    return None\n');
  const config = loadConfig({
    overrides: {
      socket: join(dir, 'hearth.sock'),
      stateDir: join(dir, 'state'),
      cgroupName: `hearth-replay-${randomBytes(3).toString('hex')}`,
      logLevel: 'silent',
      generic: { node: 0, python: O.genericBase },
      policy: 'model',
      memoryBudgetMb: 1_000_000,
    },
  });
  const day = 86_400_000;
  const clock = new ReplayClock(O.speedup, Math.floor(Date.now() / day) * day);
  const daemon = new Daemon(config, createLogger('silent'), systemClock, clock);
  const clients: ControlClient[] = [];
  const counts: Counts = { invocations: 0, warm: 0, generic: 0, cold: 0 };
  const coldInitMs: number[] = [];
  const lateness: number[] = [];
  const errors: string[] = [];
  const running = new Map<number, number>();
  /** Non-warm starts of arrivals that came while an earlier invocation of the function was still running (client view). */
  let nonWarmWhileRunning = 0;
  let failed = 0;
  let wallSeconds: number;
  try {
    await daemon.start();
    for (let i = 0; i < 8; i++) clients.push(new ControlClient(config.socket));
    const code = (await packDirectory(fnDir)).toString('base64');
    for (let i = 0; i < trace.functions.length; i++) {
      const f = trace.functions[i];
      const timeoutMs = Math.min(900_000, Math.ceil(f.durationMs / O.speedup) + 30_000);
      await clients[0].call('PUT', `/v1/functions/r-${i}`, {
        runtime: 'python',
        handler: 'main.handler',
        code,
        memoryMb: f.memoryMb,
        timeoutMs,
        concurrency: 1000,
      });
    }
    await new Promise((r) => setTimeout(r, 2000)); // let the generic pool fill
    const arrivals = arrivalSchedule(trace, O.speedup);
    const inflight = new Set<Promise<void>>();
    clock.begin();
    const t0 = Date.now();
    let next = 0;
    for (const a of arrivals) {
      const wait = a.at - (Date.now() - t0);
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      lateness.push(Math.max(0, Date.now() - t0 - a.at));
      const f = trace.functions[a.fn];
      const client = clients[next++ % clients.length];
      const busy = running.get(a.fn) ?? 0;
      running.set(a.fn, busy + 1);
      const p = (async () => {
        try {
          const r = await client.call<InvokeReply>('POST', `/v1/functions/r-${a.fn}/invoke`, { ms: f.durationMs / O.speedup });
          if (r.error) throw new Error(`${r.error.type}: ${r.error.message}`);
          counts.invocations++;
          counts[r.start]++;
          if (r.start === 'cold') coldInitMs.push(r.initMs);
          if (r.start !== 'warm' && busy > 0) nonWarmWhileRunning++;
        } catch (err) {
          failed++;
          if (errors.length < 10) errors.push(`r-${a.fn}: ${(err as Error).message}`);
        } finally {
          running.set(a.fn, (running.get(a.fn) ?? 1) - 1);
        }
      })();
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await Promise.all(inflight);
    wallSeconds = (Date.now() - t0) / 1000;
  } finally {
    for (const c of clients) c.close();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  lateness.sort((a, b) => a - b);
  coldInitMs.sort((a, b) => a - b);
  const q = (xs: number[], p: number): number => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN);
  return {
    counts,
    nonWarmWhileRunning,
    failed,
    errors,
    wallSeconds,
    latenessMs: { median: q(lateness, 0.5), p99: q(lateness, 0.99) },
    coldInitMedianMs: q(coldInitMs, 0.5),
  };
}

const pct = (a: number, b: number): string => (b ? `${((100 * a) / b).toFixed(1)} %` : '-');
const diff = (a: number, b: number): string => (b ? `${a - b >= 0 ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)} %` : '-');

async function main(): Promise<void> {
  const { trace, files } = replayTrace({ file: O.file, fromMinute: O.fromMinute, minutes: O.minutes, functions: O.functions, maxPerMinute: O.maxPerMinute });
  const head = `${O.file} minutes ${O.fromMinute}–${O.fromMinute + O.minutes - 1}: ${trace.functions.length} functions, ${trace.invocations} invocations, ${O.speedup}x (${((O.minutes * 60) / O.speedup).toFixed(0)} s of arrivals)`;
  process.stderr.write(`replay-live: ${head}\n`);
  if (O.dryRun) {
    const p = predict(trace, O.genericBase, [50]);
    process.stdout.write(JSON.stringify({ head, files, predicted: p }, null, 2) + '\n');
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('replay-live runs a real daemon and needs root');
  const l = await live(trace);
  const refillLive = Number.isFinite(l.coldInitMedianMs) ? Math.round(l.coldInitMedianMs * O.speedup) : 50;
  const p = predict(trace, O.genericBase, [50, refillLive]);
  const c = l.counts;
  const first = c.generic + c.cold;
  const lines = [
    `${head}; wall ${l.wallSeconds.toFixed(0)} s; arrivals late by median ${l.latenessMs.median.toFixed(1)} ms, p99 ${l.latenessMs.p99.toFixed(1)} ms (real); failed ${l.failed}`,
    '',
    '| count | simulator | live daemon | live − sim |',
    '| --- | ---: | ---: | ---: |',
    `| invocations | ${p.invocations} | ${c.invocations} | ${diff(c.invocations, p.invocations)} |`,
    `| warm | ${p.warm} (${pct(p.warm, p.invocations)}) | ${c.warm} (${pct(c.warm, c.invocations)}) | ${diff(c.warm, p.warm)} |`,
    `| first invocations (generic + cold) | ${p.first} (${pct(p.first, p.invocations)}) | ${first} (${pct(first, c.invocations)}) | ${diff(first, p.first)} |`,
    `| … found a generic instance | ${p.first - p.misses[0].misses} / ${p.first - p.misses[1].misses} | ${c.generic} | |`,
    `| … found no generic instance (cold), refill 50 ms / ${refillLive} ms | ${p.misses[0].misses} (${pct(p.misses[0].misses, p.first)}) / ${p.misses[1].misses} (${pct(p.misses[1].misses, p.first)}) | ${c.cold} (${pct(c.cold, first)}) | |`,
    `| … while an earlier invocation of the function was still running | | ${l.nonWarmWhileRunning} | |`,
    `| pre-warms (sim) | ${p.prewarms} | | |`,
    '',
    `live cold-start init time: median ${l.coldInitMedianMs.toFixed(0)} ms real = ${(refillLive / 1000).toFixed(0)} s of policy time`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (l.errors.length) process.stdout.write(`errors: ${l.errors.join('; ')}\n`);
  if (O.json) writeFileSync(O.json, JSON.stringify({ head, files, speedup: O.speedup, live: l, predicted: p, refillLiveMs: refillLive }, null, 2) + '\n');
}

main().catch((err: Error) => {
  process.stderr.write(`replay-live: ${err.stack ?? err.message}\n`);
  process.exitCode = 1;
});
