/**
 * What observability costs, measured on daemons run as child processes (root; everything removed
 * at the end, also on SIGINT/SIGTERM):
 *
 *  0. In this process, HearthMetrics alone with every one of `--functions` functions holding every
 *     kind of series (the worst case): CPU and wall time of a render when nothing changed, when
 *     every function ran since the last one, and the cost of counting one invocation (metrics and
 *     the dashboard's window) once its series exist.
 *  1. GET /metrics (and the dashboard's GET /api/dashboard) with 1,000 deployed functions, of which
 *     `--invoked` have run (so they have counter and histogram series): median and p99 latency of
 *     sequential scrapes, the daemon's CPU time per scrape, and the size of the answer; then again
 *     with `--churn` of the invoked functions invoked once more between two scrapes.
 *  2. Warm throughput and the daemon's CPU per warm invocation with metrics off and on, side by
 *     side in the same run (bench/observe-throughput.ts): two daemons and this process pinned to
 *     one CPU (`--cpu`, default the last; '' for none), rounds of `--per-round` invocations that
 *     alternate, the median on/off ratio of the round pairs with a 95 % bootstrap interval; the
 *     cost of a scrape apart, per invocation at a 15 s interval. `--control` runs the same
 *     comparison with metrics off in both (A/A): how far apart two identical daemons measure.
 *
 *   node dist/scripts/bench-observe.js [--functions 1000] [--invoked 50] [--churn 10] [--scrapes 50] [--rounds 40] [--per-round 2000] [--cpu N] [--scrape-ms 0] [--control] [--json OUT] [--in-process]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { DaemonProcess, processCpuMs } from './bench/daemon-process.js';
import { HearthMetrics } from '../src/observe/metrics.js';
import type { InvocationRecord } from '../src/dispatch/invocations.js';
import { RecentInvocations } from '../src/observe/recent.js';
import type { ObservedState } from '../src/observe/state.js';
import { emptyCounts } from '../src/queue/event-queue.js';
import { freePort } from './bench/free-port.js';
import { msSince, summarize, type Summary } from './bench/stats.js';
import { observeThroughput, throughputLines } from './bench/observe-throughput.js';
import { COUNT, numberArg, scriptArgs, SWITCH, VALUE } from './cli-args.js';

const log = (s: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function get(port: number, path: string): Promise<{ ms: number; bytes: number; body: string }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
        else resolve({ ms: msSince(t0), bytes: body.length, body: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function scrapeLatency(work: string, noop: string, cleanup: Cleanup, o: { functions: number; invoked: number; churn: number; scrapes: number }) {
  const port = await freePort();
  const d = await DaemonProcess.start(
    work,
    { generic: { node: 2, python: 0 }, policy: 'model', memoryBudgetMb: 4096, metricsListen: `127.0.0.1:${port}` },
    cleanup,
  );
  try {
    const t0 = Date.now();
    for (let i = 0; i < o.functions; i++) await d.deploy(`fn-${String(i).padStart(4, '0')}`, noop, 'node', 'index.handler');
    log(`deployed ${o.functions} functions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const t1 = Date.now();
    const invokedNames = Array.from({ length: o.invoked }, (_, i) => `fn-${String(Math.floor((i * o.functions) / o.invoked)).padStart(4, '0')}`);
    for (const name of invokedNames) {
      await d.invoke(name);
      await d.invoke(name);
    }
    log(`invoked ${o.invoked} of them twice in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    await get(port, '/metrics'); // first scrape: lazily built label sets
    const loop = async (path: string) => {
      const ms: number[] = [];
      let last = { bytes: 0, body: '' };
      const cpu0 = processCpuMs(d.pid);
      for (let i = 0; i < o.scrapes; i++) {
        cleanup.check();
        const r = await get(port, path);
        ms.push(r.ms);
        last = r;
      }
      return { latency: summarize(ms), daemonCpuMsPerRequest: (processCpuMs(d.pid) - cpu0) / o.scrapes, bytes: last.bytes, body: last.body };
    };
    const m = await loop('/metrics');
    // Each scrape after `churn` of the invoked functions ran once more (warm: few enough to stay
    // in the memory budget): their series must be rendered anew.
    const churned = invokedNames.slice(0, o.churn);
    for (const name of churned) await d.invoke(name);
    const churn = await (async () => {
      const ms: number[] = [];
      let cpu = 0;
      for (let i = 0; i < o.scrapes; i++) {
        cleanup.check();
        for (const name of churned) await d.invoke(name);
        const cpu0 = processCpuMs(d.pid);
        ms.push((await get(port, '/metrics')).ms);
        cpu += processCpuMs(d.pid) - cpu0;
      }
      return { latency: summarize(ms), daemonCpuMsPerRequest: cpu / o.scrapes };
    })();
    const g = await loop('/api/dashboard');
    const samples = m.body.split('\n').filter((l) => l && !l.startsWith('#')).length;
    return {
      functions: o.functions,
      invoked: o.invoked,
      metrics: { latency: m.latency, daemonCpuMsPerRequest: m.daemonCpuMsPerRequest, bytes: m.bytes, samples },
      metricsAfterInvokes: { ...churn, functions: churned.length },
      dashboard: { latency: g.latency, daemonCpuMsPerRequest: g.daemonCpuMsPerRequest, bytes: g.bytes },
    };
  } finally {
    await d.stop();
  }
}

/** In this process: HearthMetrics alone, every one of `functions` functions with every kind of series (the worst case for a scrape). */
async function renderAllSeries(functions: number, renders: number) {
  const names = Array.from({ length: functions }, (_, i) => `fn-${i}`);
  const prewarmAt = Date.now() + 60_000;
  const state: ObservedState = {
    functions: () => names.map((name) => ({ name, runtime: 'node' })),
    exists: () => true,
    instances: () =>
      names.map((fn, i) => ({
        id: `i${i}`,
        runtime: 'node',
        function: fn,
        network: null,
        state: 'idle',
        pid: i,
        createdAt: '',
        lastUsedAt: '',
        invocations: 1,
      })),
    memory: () => ({ inUseMb: 128 * functions, budgetMb: 1 << 20 }),
    queueStats: async () => ({ total: emptyCounts(), functions: Object.fromEntries(names.map((n) => [n, emptyCounts()])), maxQueued: 100_000 }),
    // Decisions that stay put between scrapes, as a policy's do until the function runs again.
    decision: () => ({ policy: 'hearth', keepAliveMs: 600_000, prewarmAt, targetInstances: 1 }),
  };
  const m = new HearthMetrics(state);
  const recent = new RecentInvocations();
  const rec = (fn: string, start: 'cold' | 'generic' | 'warm', trigger: 'sync' | 'async', outcome: 'ok' | 'error', i: number): InvocationRecord => ({
    id: 'x',
    function: fn,
    trigger,
    start,
    initMs: 1,
    durationMs: 0.3 + (i % 7),
    outcome,
    error: null,
    logs: '',
    endedAt: Date.now(),
  });
  let records = 0;
  for (const fn of names)
    for (const start of ['cold', 'generic', 'warm'] as const)
      for (const trigger of ['sync', 'async'] as const)
        for (const outcome of ['ok', 'error'] as const) m.onInvocation(rec(fn, start, trigger, outcome, records++));
  // Counting once the series exist (the steady state): what a warm invocation pays with metrics on.
  // 11 batches of 20,000 (the first warms the JIT and is dropped); the median batch.
  const counted = Array.from({ length: 20_000 }, (_, i) => rec(names[i % 50], 'warm', 'sync', 'ok', i));
  const batchWall: number[] = [];
  const batchCpu: number[] = [];
  for (let b = 0; b < 11; b++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (const r of counted) {
      m.onInvocation(r);
      recent.add(r);
    }
    batchWall.push((msSince(t0) * 1000) / counted.length);
    const c = process.cpuUsage(c0);
    batchCpu.push((c.user + c.system) / counted.length);
  }
  const perRecordUs = summarize(batchWall.slice(1)).median;
  const perRecordCpuUs = summarize(batchCpu.slice(1)).median;
  const timed = async (before: () => void) => {
    const wall: number[] = [];
    const cpu: number[] = [];
    let bytes = 0;
    let rendered = 0;
    for (let i = 0; i < renders; i++) {
      before();
      const u0 = process.cpuUsage();
      const t = process.hrtime.bigint();
      bytes = (await m.renderChunks()).reduce((n, b) => n + b.length, 0);
      wall.push(msSince(t));
      const u = process.cpuUsage(u0);
      cpu.push((u.user + u.system) / 1000);
      rendered = m.lastRendered;
    }
    // The first render creates every series' text: reported apart.
    return { wall: summarize(wall.slice(1)), cpu: summarize(cpu.slice(1)), first: { wallMs: wall[0], cpuMs: cpu[0] }, bytes, rendered };
  };
  const unchanged = await timed(() => {});
  let k = 0;
  const allRan = await timed(() => {
    for (const fn of names) m.onInvocation(rec(fn, 'warm', 'sync', 'ok', k++));
  });
  return { functions, unchanged, allRan, perRecordUs, perRecordCpuUs };
}

const f = (x: number, d = 2): string => x.toFixed(d);
const line = (s: Summary, unit: string): string => `median ${f(s.median)} ${unit}, p99 ${f(s.p99)} ${unit} (n=${s.n})`;

function reportInProcess(all: Awaited<ReturnType<typeof renderAllSeries>>): void {
  log(
    `in-process render, ${all.functions} functions with every series, ${all.unchanged.bytes} bytes; first render ${f(all.unchanged.first.wallMs)} ms (CPU ${f(all.unchanged.first.cpuMs)} ms)`,
  );
  log(
    `  nothing changed since the last (${all.unchanged.rendered} parts re-rendered): wall ${line(all.unchanged.wall, 'ms')}; CPU ${line(all.unchanged.cpu, 'ms')}`,
  );
  log(`  every function ran since the last (${all.allRan.rendered} parts re-rendered): wall ${line(all.allRan.wall, 'ms')}; CPU ${line(all.allRan.cpu, 'ms')}`);
  log(`  counting one invocation (metrics + dashboard window): ${f(all.perRecordUs, 3)} µs wall, ${f(all.perRecordCpuUs, 3)} µs CPU`);
}

async function main(): Promise<number> {
  const usage =
    'usage: node dist/scripts/bench-observe.js [--functions N] [--invoked N] [--churn N] [--scrapes N] [--rounds N] [--per-round N] [--cpu CPU-LIST] [--scrape-ms MS] [--control] [--json OUT] [--in-process]';
  const args = scriptArgs(
    'bench-observe',
    usage,
    {
      functions: VALUE,
      invoked: VALUE,
      churn: VALUE,
      scrapes: VALUE,
      rounds: VALUE,
      'per-round': VALUE,
      cpu: VALUE,
      'scrape-ms': VALUE,
      control: SWITCH,
      json: VALUE,
      'in-process': SWITCH,
    },
    ({ values: v }) => ({
      functions: numberArg(v.functions, '--functions', 1000, COUNT),
      invoked: numberArg(v.invoked, '--invoked', 50, COUNT),
      churn: numberArg(v.churn, '--churn', 10, COUNT),
      scrapes: numberArg(v.scrapes, '--scrapes', 50, COUNT),
      rounds: numberArg(v.rounds, '--rounds', 40, COUNT),
      perRound: numberArg(v['per-round'], '--per-round', 2000, COUNT),
      cpu: v.cpu ?? String(cpus().length - 1),
      control: v.control === true,
      scrapeMs: numberArg(v['scrape-ms'], '--scrape-ms', 0, { integer: true, min: 0 }),
      json: v.json,
      inProcessOnly: v['in-process'] === true,
    }),
  );
  if (args.inProcessOnly) {
    const all = await renderAllSeries(args.functions, 21);
    reportInProcess(all);
    return 0;
  }
  if (process.getuid?.() !== 0) throw new Error('needs root (it starts daemons)');
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  log(
    `load average at the start: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const work = mkdtempSync(join(tmpdir(), 'hearth-bobs-'));
  cleanup.add('work dir', () => removeDir(work));
  cleanup.created.dirs.push(work);
  try {
    const noop = join(work, 'noop');
    mkdirSync(noop);
    writeFileSync(join(noop, 'index.js'), 'exports.handler = async () => null;\n');
    const all = await renderAllSeries(args.functions, 21);
    reportInProcess(all);
    const scrape = await scrapeLatency(work, noop, cleanup, { ...args, invoked: Math.min(args.invoked, args.functions) });
    const sm = scrape.metrics;
    const sd = scrape.dashboard;
    log(
      `GET /metrics, ${scrape.functions} functions (${scrape.invoked} invoked): ${line(sm.latency, 'ms')}; daemon CPU ${f(sm.daemonCpuMsPerRequest)} ms each; ${sm.samples} samples, ${sm.bytes} bytes`,
    );
    const sc = scrape.metricsAfterInvokes;
    log(`GET /metrics after ${sc.functions} functions ran again since the last: ${line(sc.latency, 'ms')}; daemon CPU ${f(sc.daemonCpuMsPerRequest)} ms each`);
    log(`GET /api/dashboard: ${line(sd.latency, 'ms')}; daemon CPU ${f(sd.daemonCpuMsPerRequest)} ms each; ${sd.bytes} bytes`);
    const tp = await observeThroughput(work, noop, cleanup, { ...args, get });
    for (const l of throughputLines(tp, line, f)) log(l);
    const warmCpuUs = tp.daemonCpuUsPerInvocation.off.median;
    log(
      `in-process counting cost vs the "off" daemon's CPU per warm invocation: ${f(all.perRecordCpuUs, 3)} / ${f(warmCpuUs, 1)} µs = ${f((100 * all.perRecordCpuUs) / warmCpuUs, 3)} %`,
    );
    const perSecondOn = tp.perSecond.on.median;
    log(
      `one scrape of the "on" daemon (one function): ${f(tp.scrapeCpuMs)} ms CPU; every 15 s at ${f(perSecondOn, 0)} invocations/s that is ${f((1000 * tp.scrapeCpuMs) / (15 * perSecondOn), 3)} µs per invocation`,
    );
    log(
      `load average at the end: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    if (args.json)
      writeFileSync(
        args.json,
        JSON.stringify({ command: process.argv.slice(1).join(' '), loadavg: loadavg(), inProcess: all, scrape, throughput: tp }, null, 1) + '\n',
      );
  } finally {
    await cleanup.runAll();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench-observe: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
