/**
 * What observability costs, measured on daemons run as child processes (root; everything removed
 * at the end, also on SIGINT/SIGTERM):
 *
 *  1. GET /metrics (and the dashboard's GET /api/dashboard) with 1,000 deployed functions, of which
 *     `--invoked` have run (so they have counter and histogram series): median and p99 latency of
 *     sequential scrapes, and the size of the answer.
 *  2. Warm throughput with metrics off and on, side by side in the same run: two daemons with one
 *     no-op function each, the same client loop against each in alternating rounds; the "on"
 *     daemon is scraped every second while it runs (Prometheus' default is every 15 s).
 *
 *   node dist/scripts/bench-observe.js [--functions 1000] [--invoked 50] [--scrapes 50] [--rounds 8] [--round-ms 2000] [--json OUT]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { DaemonProcess, processCpuMs } from './bench/daemon-process.js';
import { HearthMetrics } from '../src/observe/metrics.js';
import type { ObservedState } from '../src/observe/state.js';
import { emptyCounts } from '../src/queue/event-queue.js';
import { freePort } from './bench/free-port.js';
import { msSince, sleep, summarize, type Summary } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

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

async function scrapeLatency(work: string, noop: string, cleanup: Cleanup, o: { functions: number; invoked: number; scrapes: number }) {
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
    for (let i = 0; i < o.invoked; i++) {
      const name = `fn-${String(Math.floor((i * o.functions) / o.invoked)).padStart(4, '0')}`;
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
    const g = await loop('/api/dashboard');
    const samples = m.body.split('\n').filter((l) => l && !l.startsWith('#')).length;
    return {
      functions: o.functions,
      invoked: o.invoked,
      metrics: { latency: m.latency, daemonCpuMsPerRequest: m.daemonCpuMsPerRequest, bytes: m.bytes, samples },
      dashboard: { latency: g.latency, daemonCpuMsPerRequest: g.daemonCpuMsPerRequest, bytes: g.bytes },
    };
  } finally {
    await d.stop();
  }
}

async function throughput(work: string, noop: string, cleanup: Cleanup, o: { rounds: number; roundMs: number }) {
  const port = await freePort();
  const off = await DaemonProcess.start(work, { generic: { node: 1, python: 0 }, policy: 'fixed' }, cleanup);
  const on = await DaemonProcess.start(work, { generic: { node: 1, python: 0 }, policy: 'fixed', metricsListen: `127.0.0.1:${port}` }, cleanup);
  try {
    for (const d of [off, on]) {
      await d.deploy('noop', noop, 'node', 'index.handler');
      for (let i = 0; i < 200; i++) await d.invoke('noop');
    }
    const perSecond = { off: [] as number[], on: [] as number[] };
    const latency = { off: [] as number[], on: [] as number[] };
    /** Daemon CPU per invocation, µs (the scrapes of the "on" daemon included). */
    const cpuUs = { off: [] as number[], on: [] as number[] };
    let scrapes = 0;
    for (let r = 0; r < o.rounds; r++) {
      // Alternate which goes first, so drift over the run affects both alike.
      for (const which of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        cleanup.check();
        const d = which === 'on' ? on : off;
        let scraping = which === 'on';
        const scraper = (async () => {
          while (scraping) {
            await get(port, '/metrics');
            scrapes++;
            await sleep(1000);
          }
        })();
        const end = Date.now() + o.roundMs;
        const cpu0 = processCpuMs(d.pid);
        let n = 0;
        const t0 = process.hrtime.bigint();
        while (Date.now() < end) {
          const { ms } = await d.invoke('noop');
          latency[which].push(ms);
          n++;
        }
        perSecond[which].push(n / (msSince(t0) / 1000));
        cpuUs[which].push(((processCpuMs(d.pid) - cpu0) * 1000) / n);
        scraping = false;
        await scraper;
      }
    }
    const ratio = perSecond.on.map((v, i) => v / perSecond.off[i]);
    return {
      rounds: o.rounds,
      roundMs: o.roundMs,
      scrapes,
      perSecond: { off: summarize(perSecond.off), on: summarize(perSecond.on) },
      latencyMs: { off: summarize(latency.off), on: summarize(latency.on) },
      daemonCpuUsPerInvocation: { off: summarize(cpuUs.off), on: summarize(cpuUs.on) },
      onOverOff: summarize(ratio),
    };
  } finally {
    await on.stop();
    await off.stop();
  }
}

/** In this process: HearthMetrics alone, every one of `functions` functions with every kind of series (the worst case for a scrape). */
async function renderAllSeries(functions: number, renders: number) {
  const names = Array.from({ length: functions }, (_, i) => `fn-${i}`);
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
    decision: () => ({ policy: 'hearth', keepAliveMs: 600_000, prewarmAt: Date.now() + 60_000, targetInstances: 1 }),
  };
  const m = new HearthMetrics(state);
  const t0 = process.hrtime.bigint();
  let records = 0;
  for (const fn of names)
    for (const start of ['cold', 'generic', 'warm'] as const)
      for (const trigger of ['sync', 'async'] as const)
        for (const outcome of ['ok', 'error'] as const) {
          m.onInvocation({ id: 'x', function: fn, trigger, start, initMs: 1, durationMs: 0.3 + (records % 7), outcome, error: null, logs: '', endedAt: 0 });
          records++;
        }
  const perRecordUs = (msSince(t0) * 1000) / records;
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < renders; i++) {
    const t = process.hrtime.bigint();
    bytes = (await m.render()).length;
    ms.push(msSince(t));
  }
  return { functions, render: summarize(ms.slice(1)), bytes, perRecordUs };
}

const f = (x: number, d = 2): string => x.toFixed(d);
const line = (s: Summary, unit: string): string => `median ${f(s.median)} ${unit}, p99 ${f(s.p99)} ${unit} (n=${s.n})`;

async function main(): Promise<number> {
  const usage = 'usage: node dist/scripts/bench-observe.js [--functions N] [--invoked N] [--scrapes N] [--rounds N] [--round-ms MS] [--json OUT]';
  const args = scriptArgs(
    'bench-observe',
    usage,
    { functions: VALUE, invoked: VALUE, scrapes: VALUE, rounds: VALUE, 'round-ms': VALUE, json: VALUE },
    ({ values: v }) => ({
      functions: numberArg(v.functions, '--functions', 1000, COUNT),
      invoked: numberArg(v.invoked, '--invoked', 50, COUNT),
      scrapes: numberArg(v.scrapes, '--scrapes', 50, COUNT),
      rounds: numberArg(v.rounds, '--rounds', 8, COUNT),
      roundMs: numberArg(v['round-ms'], '--round-ms', 2000, COUNT),
      json: v.json,
    }),
  );
  if (process.getuid?.() !== 0) throw new Error('needs root (it starts daemons)');
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const work = mkdtempSync(join(tmpdir(), 'hearth-bobs-'));
  cleanup.add('work dir', () => removeDir(work));
  cleanup.created.dirs.push(work);
  try {
    const noop = join(work, 'noop');
    mkdirSync(noop);
    writeFileSync(join(noop, 'index.js'), 'exports.handler = async () => null;\n');
    const all = await renderAllSeries(args.functions, 11);
    log(
      `in-process render, ${all.functions} functions with every series: ${line(all.render, 'ms')}; ${all.bytes} bytes; ${f(all.perRecordUs)} µs per counted invocation`,
    );
    const scrape = await scrapeLatency(work, noop, cleanup, { ...args, invoked: Math.min(args.invoked, args.functions) });
    const sm = scrape.metrics;
    const sd = scrape.dashboard;
    log(
      `GET /metrics, ${scrape.functions} functions (${scrape.invoked} invoked): ${line(sm.latency, 'ms')}; daemon CPU ${f(sm.daemonCpuMsPerRequest)} ms each; ${sm.samples} samples, ${sm.bytes} bytes`,
    );
    log(`GET /api/dashboard: ${line(sd.latency, 'ms')}; daemon CPU ${f(sd.daemonCpuMsPerRequest)} ms each; ${sd.bytes} bytes`);
    const tp = await throughput(work, noop, cleanup, args);
    log(`warm invocations/s, metrics off: ${line(tp.perSecond.off, '/s')}; latency ${line(tp.latencyMs.off, 'ms')}`);
    log(`warm invocations/s, metrics on (scraped every 1 s, ${tp.scrapes} scrapes): ${line(tp.perSecond.on, '/s')}; latency ${line(tp.latencyMs.on, 'ms')}`);
    log(`daemon CPU per invocation: off ${line(tp.daemonCpuUsPerInvocation.off, 'µs')}; on ${line(tp.daemonCpuUsPerInvocation.on, 'µs')}`);
    log(`on/off throughput ratio per round: median ${f(tp.onOverOff.median, 4)}, min ${f(tp.onOverOff.min, 4)}, max ${f(tp.onOverOff.max, 4)}`);
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
