/**
 * Suite 5: a slice of the Azure Functions 2019 sample trace replayed live against a running daemon,
 * sped up `speedup` times, next to the simulator's prediction for the same slice.
 *
 * Live: each trace function becomes a Python function whose handler sleeps the function's average
 * duration ÷ speedup; arrivals follow the simulator's replay rule (k-th of n arrivals in minute m at
 * (m − 1 + (k + 0.5)/n) × 60 s), divided by speedup, fired open-loop. The daemon runs the fixed
 * keep-alive policy with its window divided by speedup: a fixed window is the one policy for which
 * a time-compressed run is the same experiment as the real-time one, so the simulator's fixed-10m
 * replay of the uncompressed slice is a like-for-like prediction. The simulator's default Hearth
 * policy on the same slice is shown for reference. A "cold start" live is any non-warm start
 * (generic or cold), as in the simulator.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { FixedKeepAlivePolicy, HearthPolicy } from '../../src/model/index.js';
import { simulate } from '../sim/simulator.js';
import { readTrace, sliceTrace, type Trace, type TraceFunction } from '../sim/trace.js';
import type { Cleanup } from './cleanup.js';
import { DaemonProcess, repoRoot, type InvokeReply } from './daemon-process.js';
import { daemonInstancesPssMb } from './density.js';
import type { Fixtures } from './fixtures.js';
import { msSince, sleep, summarize, type Summary } from './stats.js';

export interface ReplayOptions {
  fromMinute: number;
  minutes: number;
  speedup: number;
  functions: number;
  keepAliveMs?: number;
  log: (s: string) => void;
}

export interface ReplaySample {
  /** Trace time of the sample, minutes from the slice start. */
  traceMin: number;
  instances: number;
  /** Instances holding a function (the rest are generic). */
  specialised: number;
  busy: number;
  /** Memory the pool reserves for all instances (generic ones at the generic limit), MB. */
  reservedMb: number;
  /** Configured memory of the specialised instances (what the simulator counts), MB. */
  specialisedMb: number;
  pssMb: number;
}

export interface ReplayResult {
  trace: { files: string[]; fromMinute: number; minutes: number; functions: number; invocations: number; speedup: number; wallSeconds: number };
  keepAliveMs: number;
  live: {
    invocations: number;
    failed: number;
    starts: Record<string, number>;
    coldStartRatio: number;
    /** Client round trip minus the handler's own run time, ms. */
    overhead: { all: Summary; warm: Summary; nonWarm: Summary };
    peakInstances: number;
    peakSpecialised: number;
    peakReservedMb: number;
    peakSpecialisedMb: number;
    peakPssMb: number;
    /** How late arrivals were fired against the schedule (timer jitter), ms. */
    lateness: Summary;
    perMinute: Array<{ minute: number; arrivals: number; coldStarts: number }>;
    samples: ReplaySample[];
  };
  simulated: Array<{
    policy: string;
    invocations: number;
    coldStarts: number;
    coldStartRatio: number;
    peakMemoryMB: number;
    wastedMemoryGBs: number;
    instancesCreated: number;
  }>;
  errors: string[];
}

/** HEARTH_TRACE_DIR, else shared/ beside the checkout (as CI lays it out), else the workplace's copy. */
export function traceDir(): string {
  const env = process.env['HEARTH_TRACE_DIR'];
  if (env) return env;
  const beside = join(repoRoot, '..', 'shared', 'data', 'azure2019');
  return existsSync(beside) ? beside : '/work/shared/data/azure2019';
}

const clampMb = (mb: number): number => Math.min(4096, Math.max(64, Math.round(mb)));

/** The slice, limited to the first `n` functions with arrivals in it, memory clamped as deployed. */
export function replayTrace(o: Pick<ReplayOptions, 'fromMinute' | 'minutes' | 'functions'> & { file?: string; maxPerMinute?: number }): {
  trace: Trace;
  files: string[];
} {
  const dir = traceDir();
  const file = o.file ?? 'sample100';
  const files = [`${file}_inv.csv`, `${file}_run.csv`, `${file}_mem.csv`].map((f) => join(dir, f));
  const full = readTrace(files[0], files[1], files[2]);
  const sliced = sliceTrace(full, o.fromMinute, o.fromMinute + o.minutes);
  const picked: TraceFunction[] = [];
  for (const f of sliced.functions) {
    if (picked.length >= o.functions) break;
    if (o.maxPerMinute !== undefined && f.perMinute.some((x) => x > o.maxPerMinute!)) continue;
    if (f.perMinute.some((x) => x > 0)) picked.push({ ...f, memoryMb: clampMb(f.memoryMb) });
  }
  let invocations = 0;
  for (const f of picked) for (const x of f.perMinute) invocations += x;
  return { trace: { functions: picked, minutes: sliced.minutes, invocations }, files };
}

/** The simulator's replay rule, in wall ms from the replay start: (wall ms, function index, trace minute), in time order. */
export function arrivalSchedule(trace: Trace, speedup: number): Array<{ at: number; fn: number; traceMin: number }> {
  const arrivals: Array<{ at: number; fn: number; traceMin: number }> = [];
  trace.functions.forEach((f, fi) => {
    f.perMinute.forEach((n, mi) => {
      for (let k = 0; k < n; k++) {
        const traceMin = mi + (k + 0.5) / n;
        arrivals.push({ at: (traceMin * 60_000) / speedup, fn: fi, traceMin });
      }
    });
  });
  return arrivals.sort((a, b) => a.at - b.at);
}

export async function runReplay(work: string, fx: Fixtures, cleanup: Cleanup, o: ReplayOptions): Promise<ReplayResult> {
  const { trace, files } = replayTrace(o);
  const keepAliveMs = o.keepAliveMs ?? 600_000;
  const liveKeepAlive = Math.max(1000, Math.round(keepAliveMs / o.speedup));
  const simulated = [
    { policy: `fixed-${keepAliveMs / 60_000}m`, r: simulate(trace, new FixedKeepAlivePolicy(keepAliveMs)) },
    { policy: 'hearth (default model)', r: simulate(trace, new HearthPolicy()) },
  ].map(({ policy, r }) => ({
    policy,
    invocations: r.invocations,
    coldStarts: r.coldStarts,
    coldStartRatio: r.coldStartRatio,
    peakMemoryMB: r.peakMemoryMB,
    wastedMemoryGBs: r.wastedMemoryGBs,
    instancesCreated: r.details.instancesCreated,
  }));

  const arrivals = arrivalSchedule(trace, o.speedup);

  const d = await DaemonProcess.start(work, { generic: { node: 0, python: 4 }, policy: 'fixed', keepAliveMs: liveKeepAlive }, cleanup);
  const clients = Array.from({ length: 8 }, () => new ControlClient(d.socket));
  const errors: string[] = [];
  const starts: Record<string, number> = {};
  const overheadAll: number[] = [];
  const overheadWarm: number[] = [];
  const overheadCold: number[] = [];
  const lateness: number[] = [];
  const perMinute = Array.from({ length: trace.minutes }, (_, i) => ({ minute: i + 1, arrivals: 0, coldStarts: 0 }));
  const samples: ReplaySample[] = [];
  let failed = 0;
  let wallSeconds: number;
  try {
    for (let i = 0; i < trace.functions.length; i++) {
      const f = trace.functions[i];
      const timeoutMs = Math.min(900_000, Math.max(1000, Math.ceil(f.durationMs / o.speedup) + 10_000));
      await d.deploy(`r-${i}`, fx.sleepPython.dir, 'python', fx.sleepPython.handler, { memoryMb: f.memoryMb, timeoutMs, concurrency: 1000 });
    }
    await d.waitGenericRefilled('python', 300, 30_000);
    o.log(
      `replay: ${trace.functions.length} functions, ${trace.invocations} invocations over ${trace.minutes} trace minutes, ${o.speedup}x: ${((trace.minutes * 60) / o.speedup).toFixed(0)} s`,
    );
    const t0 = process.hrtime.bigint();
    const inflight = new Set<Promise<void>>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling && !cleanup.aborted) {
        try {
          const pool = await clients[0].call<{ instances: Array<{ state: string; function: string | null }>; memoryInUseMb: number }>('GET', '/v1/pool');
          const spec = pool.instances.filter((x) => x.function !== null);
          samples.push({
            traceMin: (msSince(t0) * o.speedup) / 60_000,
            instances: pool.instances.length,
            specialised: spec.length,
            busy: pool.instances.filter((x) => x.state === 'busy').length,
            reservedMb: pool.memoryInUseMb,
            specialisedMb: spec.reduce((a, x) => a + (trace.functions[Number(x.function!.slice(2))]?.memoryMb ?? 0), 0),
            pssMb: daemonInstancesPssMb(d.cgroupName),
          });
        } catch (err) {
          errors.push(`sample: ${(err as Error).message}`);
        }
        await sleep(Math.max(100, 30_000 / o.speedup));
      }
    })();
    let next = 0;
    for (const a of arrivals) {
      cleanup.check();
      const wait = a.at - msSince(t0);
      if (wait > 1) await sleep(wait);
      lateness.push(Math.max(0, msSince(t0) - a.at));
      const f = trace.functions[a.fn];
      const sleepMs = f.durationMs / o.speedup;
      const client = clients[next++ % clients.length];
      const p = (async () => {
        const s0 = process.hrtime.bigint();
        try {
          const r = await client.call<InvokeReply>('POST', `/v1/functions/r-${a.fn}/invoke`, { ms: sleepMs });
          const ms = msSince(s0);
          if (r.error) {
            failed++;
            if (errors.length < 20) errors.push(`r-${a.fn}: ${r.error.type}: ${r.error.message}`);
            return;
          }
          starts[r.start] = (starts[r.start] ?? 0) + 1;
          const over = ms - r.durationMs;
          overheadAll.push(over);
          (r.start === 'warm' ? overheadWarm : overheadCold).push(over);
          const pm = perMinute[Math.min(perMinute.length - 1, Math.floor(a.traceMin))];
          pm.arrivals++;
          if (r.start !== 'warm') pm.coldStarts++;
        } catch (err) {
          failed++;
          if (errors.length < 20) errors.push(`r-${a.fn}: ${(err as Error).message}`);
        }
      })();
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await Promise.all(inflight);
    wallSeconds = msSince(t0) / 1000;
    sampling = false;
    await sampler;
  } finally {
    for (const c of clients) c.close();
    await d.stop();
  }
  const ok = overheadAll.length;
  const cold = ok - (starts['warm'] ?? 0);
  const result: ReplayResult = {
    trace: {
      files,
      fromMinute: o.fromMinute,
      minutes: trace.minutes,
      functions: trace.functions.length,
      invocations: trace.invocations,
      speedup: o.speedup,
      wallSeconds,
    },
    keepAliveMs,
    live: {
      invocations: ok + failed,
      failed,
      starts,
      coldStartRatio: ok ? cold / ok : NaN,
      overhead: { all: summarize(overheadAll), warm: summarize(overheadWarm), nonWarm: summarize(overheadCold) },
      peakInstances: Math.max(0, ...samples.map((s) => s.instances)),
      peakSpecialised: Math.max(0, ...samples.map((s) => s.specialised)),
      peakReservedMb: Math.max(0, ...samples.map((s) => s.reservedMb)),
      peakSpecialisedMb: Math.max(0, ...samples.map((s) => s.specialisedMb)),
      peakPssMb: Math.max(0, ...samples.map((s) => s.pssMb)),
      lateness: summarize(lateness),
      perMinute,
      samples,
    },
    simulated,
    errors,
  };
  o.log(
    `replay: live cold-start ratio ${(result.live.coldStartRatio * 100).toFixed(2)}% (${cold}/${ok}), sim ${simulated[0].policy} ${(simulated[0].coldStartRatio * 100).toFixed(2)}%; ` +
      `overhead median ${result.live.overhead.all.median.toFixed(2)} ms; failed ${failed}`,
  );
  return result;
}
