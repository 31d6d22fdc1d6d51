/**
 * Turns results.json into BENCHMARKS.md and the SVG plots. The page is generated whole; prose
 * that should survive regeneration lives in scripts/bench/notes.md and is copied in.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative, dirname } from 'node:path';
import { repoRoot } from './daemon-process.js';
import type { BenchResults } from './results.js';
import type { StartSeries } from './start-latency.js';
import { OVERHEAD_BLOCK, POLLED_US } from './throughput.js';
import type { Summary } from './stats.js';
import { cdfChart, lineChart, rangeChart, type RangeRow } from '../chart/svg.js';

/** Everything below this line in BENCHMARKS.md is kept as it is when the page is regenerated. */
export const KEEP_MARKER = '<!-- End of the generated part: sections below this line are kept when `npm run bench` regenerates the page. -->';

export interface ReportOptions {
  svgDir: string;
  markdown: string;
  resultsDir: string;
}

const n2 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(2)} %` : '–');
const row = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |`;
/** A table's header row and its alignment row: the first `textColumns` left, the rest right (numbers). */
const header = (names: string[], textColumns = 1): string[] => [row(names), row(names.map((_, i) => (i < textColumns ? '---' : '---:')))];
const sumCells = (s: Summary): string[] => [String(s.n), n2(s.median), n2(s.p99), n2(s.min), n2(s.max)];

const METHOD_LABEL: Record<string, string> = {
  'hearth-warm': 'Hearth warm',
  'hearth-generic': 'Hearth generic (code mounted at trigger)',
  'hearth-cold': 'Hearth cold (new instance)',
  'fresh-sandbox': 'fresh Hearth sandbox per invocation',
  bwrap: 'bubblewrap, fresh process per invocation',
  crun: 'crun, fresh OCI container per invocation',
};

function find(r: BenchResults, rt: string, handler: string, method: string): StartSeries | undefined {
  return r.suites.start?.series.find((s) => s.runtime === rt && s.handler === handler && s.method === method);
}

function targets(r: BenchResults): string[] {
  const out = [row(['target', 'measured', 'met']), row(['---', '---', '---'])];
  const yes = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? 'yes' : '**no**');
  const med = (rt: string, m: string): number | undefined => {
    const s = find(r, rt, 'hello', m);
    return s && s.summary.n > 0 ? s.summary.median : undefined;
  };
  const lim = (label: string, v: number | undefined, max: number, unit = 'ms'): void => {
    out.push(row([label, v === undefined ? '–' : `${n2(v)} ${unit}`, yes(v === undefined ? undefined : v <= max)]));
  };
  lim('generic start, Python, median ≤ 3 ms', med('python', 'hearth-generic'), 3);
  lim('generic start, Node, median ≤ 5 ms', med('node', 'hearth-generic'), 5);
  lim('warm invoke, Python, median ≤ 0.3 ms (interleaved with other work)', med('python', 'hearth-warm'), 0.3);
  lim('warm invoke, Node, median ≤ 0.3 ms (interleaved with other work)', med('node', 'hearth-warm'), 0.3);
  for (const rt of ['python', 'node']) {
    const p = r.suites.throughput?.throughput.find((q) => q.runtime === rt && q.concurrency === 1 && q.replyPoll !== true);
    lim(`warm invoke, ${rt === 'python' ? 'Python' : 'Node'}, median ≤ 0.3 ms (back to back, concurrency 1)`, p?.latency.median, 0.3);
  }
  lim('cold start, Python (zygote), median ≤ 10 ms', med('python', 'hearth-cold'), 10);
  for (const rt of ['python', 'node']) {
    const g = med(rt, 'hearth-generic');
    for (const alt of ['fresh-sandbox', 'bwrap', 'crun']) {
      const a = med(rt, alt);
      const ratio = g !== undefined && a !== undefined ? a / g : undefined;
      out.push(row([`generic ≥ 10× faster than ${alt}, ${rt === 'python' ? 'Python' : 'Node'}`, ratio === undefined ? '–' : `${ratio.toFixed(1)}×`, yes(ratio === undefined ? undefined : ratio >= 10)]));
    }
  }
  for (const o of r.suites.throughput?.overhead ?? []) {
    const how = o.order === 'alternating' ? 'alternating every call, for reference' : `blocks of ${OVERHEAD_BLOCK} calls`;
    out.push(row([`warm overhead over a bare round trip ≤ 0.2 ms, ${o.runtime === 'python' ? 'Python' : 'Node'} (medians, ${how})`, `${n2(o.addedMedianMs)} ms`, yes(o.addedMedianMs <= 0.2)]));
  }
  const py = r.suites.density?.points.find((p) => p.runtime === 'python' && p.state === 'generic');
  if (py) out.push(row(['idle generic Python instance < 5 MB PSS (median)', `${n2(py.pssMb.median)} MB`, yes(py.pssMb.median < 5)]));
  return out;
}

function startSection(r: BenchResults, svgRel: (f: string) => string): string[] {
  const s = r.suites.start;
  if (!s) return ['Not run.'];
  const out: string[] = [];
  out.push(
    `${s.rounds.hello} rounds for hello, ${s.rounds.bigdep} for bigdep; each round takes one sample of every method in a rotating order. ` +
      `Times in ms, end to end from the client (see Method). "× generic" divides each median by Hearth generic's; "daemon-side init" is the \`initMs\` the daemon reports ` +
      `(from taking or creating the instance to the handler imported: cgroup limits, code mount, specialise round trip).`,
    '',
  );
  for (const rt of ['python', 'node'] as const) {
    for (const handler of ['hello', 'bigdep'] as const) {
      const rows = s.series.filter((x) => x.runtime === rt && x.handler === handler);
      if (!rows.length) continue;
      const g = rows.find((x) => x.method === 'hearth-generic')?.summary.median;
      const size = handler === 'bigdep' && r.fixtures ? ` (${(r.fixtures.bigdep[rt].bytes / 1e6).toFixed(1)} MB in ${r.fixtures.bigdep[rt].files} files)` : '';
      out.push(`**${rt === 'python' ? 'Python' : 'Node'}, ${handler}${size}**`, '');
      out.push(...header(['method', 'n', 'median', 'p99', 'min', 'max', '× generic', 'daemon-side init, median']));
      for (const x of rows) {
        const label = METHOD_LABEL[x.method] ?? x.method;
        if (x.error && x.summary.n === 0) {
          out.push(row([label, '0', `failed: ${x.error.replace(/\|/g, '/').slice(0, 160)}`, '', '', '', '', '']));
          continue;
        }
        const ratio = g && Number.isFinite(x.summary.median) ? `${(x.summary.median / g).toFixed(1)}` : '–';
        out.push(row([label + (x.excluded ? ` (${x.excluded} excluded)` : ''), ...sumCells(x.summary), ratio, x.initMs ? n2(x.initMs.median) : '']));
      }
      const fresh = rows.find((x) => x.method === 'fresh-sandbox' && x.steps);
      if (fresh?.steps) {
        out.push('', `Fresh sandbox, mean time at each step: ${Object.entries(fresh.steps).map(([k, v]) => `${k} ${n2(v)} ms`).join(', ')}.`);
      }
      out.push('');
    }
  }
  out.push(`![start latency, Python](${svgRel('bench-start-python.svg')}) ![start latency, Node](${svgRel('bench-start-node.svg')})`, '');
  out.push(`![start latency ranges](${svgRel('bench-start-ranges.svg')})`, '');
  out.push(`Cold series: ${s.coldDaemonRestarts} restarts of its daemon (see Method).`, '');
  return out;
}

function stepsSection(r: BenchResults): string[] {
  const x = r.suites.steps;
  if (!x) return ['Not run.'];
  const out = [
    `The steps of a generic start, timed one by one below the daemon (Hearth's SandboxDriver and InstanceConnection in the benchmark process, no HTTP), ` +
      `${x.samples} samples each, medians in ms; the instance idles ${x.idleMs} ms first. "with refill" starts a spawn of the same runtime just before: what a start ` +
      `pays when a refill spawn lands next to it (the pool refilled at this point until commit 6a55375; it now refills after the reply, but a burst of starts still overlaps ` +
      `refills). \`refillSpawnSync\` is how long that spawn call blocks the caller's event loop.`,
    '',
  ];
  const names = ['refillSpawnSync', 'setLimits', 'mountCode', 'specialized', 'shimImport', 'firstResult', 'total', 'secondInvoke'];
  out.push(row(['runtime', 'variant', ...names]), row(['---', '---', ...names.map(() => '---:')]));
  for (const p of x.points) out.push(row([p.runtime, p.refill ? 'with refill' : 'alone', ...names.map((k) => (p.steps[k] ? n2(p.steps[k].median) : '–'))]));
  out.push('', '`specialized` runs from sending the specialise message (with the first invocation in the same write, as the pool does) to its reply; `shimImport` is the import time the shim reports, inside it; `firstResult` from that reply to the first invocation\'s result. `total` runs from before the refill spawn (or setLimits) to the first result.', '');
  return out;
}

function throughputSection(r: BenchResults): string[] {
  const t = r.suites.throughput;
  if (!t) return ['Not run.'];
  const out = ['No-op handler, one function with concurrency above the client\'s; latency in ms per invocation.', ''];
  out.push(...header(['runtime', 'client concurrency', 'invocations/s', 'median', 'p99', 'max', 'daemon CPU ms / invocation', 'non-warm']));
  for (const p of t.throughput) {
    const c = p.replyPoll === true ? `${p.concurrency}, reply polling on` : String(p.concurrency);
    out.push(row([p.runtime, c, p.perSecond.toFixed(0), n2(p.latency.median), n2(p.latency.p99), n2(p.latency.max), n2(p.daemonCpuMsPerInvocation), p.nonWarm]));
  }
  if (t.throughput.some((p) => p.replyPoll === true)) {
    out.push(
      '',
      `"reply polling on": a second daemon with \`replyPollUs: ${POLLED_US}\` (the default is 0, off), which busy-polls for up to ${POLLED_US} µs for a quick handler's answer when it is the only one awaited, instead of sleeping until it arrives (src/runtimes/reply-poller.ts). The difference in daemon CPU per invocation is what the polling costs.`,
    );
  }
  out.push(
    '',
    'Added latency: a warm invoke through the daemon against a bare round trip to the same shim on a socketpair (no sandbox, no daemon), and against a trivial Node HTTP server ' +
      'on a Unix socket answering a fixed body through the same client (the transport floor of any HTTP control API on this machine); ms. ' +
      `"blocks": ${OVERHEAD_BLOCK} consecutive calls of one method, then the next, the order rotating (a warm instance serving a stream of requests; drift affects all of them). ` +
      '"alternating": the method changes on every call, so each call follows the other methods\' work on the CPUs and in their caches; the daemon\'s path crosses one more process than the bare one and pays more for it.',
    '',
  );
  out.push(...header(['runtime', 'order', 'n', 'bare shim median', 'bare p99', 'HTTP echo median', 'HTTP echo p99', 'Hearth warm median', 'Hearth warm p99', 'added over bare (median)', 'added over HTTP echo + bare (median)', 'Hearth, reply polling on: median', 'p99', 'added over bare (median)'], 2));
  for (const o of t.overhead) {
    const np = o.hearthPoll;
    out.push(row([o.runtime, o.order ?? 'alternating', o.bare.n, n2(o.bare.median), n2(o.bare.p99), n2(o.httpEcho.median), n2(o.httpEcho.p99), n2(o.hearth.median), n2(o.hearth.p99), n2(o.addedMedianMs), n2(o.hearth.median - o.httpEcho.median - o.bare.median), np ? n2(np.median) : '–', np ? n2(np.p99) : '–', np ? n2(np.median - o.bare.median) : '–']));
  }
  out.push('');
  return out;
}

function densitySection(r: BenchResults): string[] {
  const d = r.suites.density;
  if (!d) return ['Not run.'];
  const out = ['PSS summed over the processes of each instance\'s cgroup (from /proc/PID/smaps_rollup), MB; "fit in 4 GB" = 4096 ÷ median PSS.', ''];
  out.push(...header(['runtime', 'state', 'instances', 'PSS median', 'PSS max', 'RSS median', 'private median', 'fit in 4 GB'], 2));
  for (const p of d.points) out.push(row([p.runtime, p.state, p.instances, n2(p.pssMb.median), n2(p.pssMb.max), n2(p.rssMb.median), n2(p.privateMb.median), p.fitIn4GB]));
  if (d.zygotePssMb !== null) out.push('', `The Python zygote itself (one per daemon, shared by every Python instance): ${n2(d.zygotePssMb)} MB PSS.`);
  out.push('');
  return out;
}

function scaleSection(r: BenchResults): string[] {
  const s = r.suites.scale;
  if (!s) return ['Not run.'];
  const out = [
    `Python hello functions; live instances include the generic pool. Deploys: ${s.deploysPerSecond.toFixed(0)}/s. Idle CPU is the daemon's CPU time over an idle window (% of one core), CPU per warm invoke is measured over a run of back-to-back invokes; latencies in ms.`,
    '',
  ];
  out.push(...header(['axis', 'functions', 'live instances', 'daemon idle CPU', 'warm median', 'warm p99', 'generic median', 'generic p99', 'daemon CPU ms / warm invoke', 'daemon RSS MB']));
  for (const p of s.points) out.push(row([p.axis, p.functions, p.liveInstances, `${p.idleCpuPercent.toFixed(2)} %`, n2(p.warm.median), n2(p.warm.p99), n2(p.generic.median), n2(p.generic.p99), n2(p.daemonCpuMsPerWarmInvocation), n2(p.daemonRssMb)]));
  out.push('');
  return out;
}

function replaySection(r: BenchResults, svgRel: (f: string) => string): string[] {
  const x = r.suites.replay;
  if (!x) return ['Not run.'];
  const t = x.trace;
  const out = [
    `Slice: minutes ${t.fromMinute}–${t.fromMinute + t.minutes - 1} of \`${t.files.map((f) => basename(f)).join('`, `')}\`, the first ${t.functions} functions with arrivals in it: ` +
      `${t.invocations} invocations, replayed at ${t.speedup}× (${t.wallSeconds.toFixed(0)} s). Live keep-alive ${(x.keepAliveMs / 60_000).toFixed(0)} min ÷ ${t.speedup}.`,
    '',
  ];
  out.push(...header(['', 'invocations', 'cold starts (= function instances created)', 'cold-start ratio', 'peak memory of function instances, MB', 'wasted memory GB·s']));
  const cold = x.live.invocations - x.live.failed - (x.live.starts['warm'] ?? 0);
  out.push(
    row([
      `**live**, fixed ${(x.keepAliveMs / 60_000).toFixed(0)} min (÷ ${t.speedup})`,
      x.live.invocations,
      `${cold} (${Object.entries(x.live.starts).filter(([k]) => k !== 'warm').map(([k, v]) => `${v} ${k}`).join(', ')})`,
      pct(x.live.coldStartRatio),
      n2(x.live.peakSpecialisedMb),
      '–',
    ]),
  );
  for (const s of x.simulated) {
    const pre = s.instancesCreated - s.coldStarts;
    out.push(row([`simulator, ${s.policy}`, s.invocations, `${s.coldStarts}${pre > 0 ? ` (+${pre} pre-warmed)` : ''}`, pct(s.coldStartRatio), n2(s.peakMemoryMB), n2(s.wastedMemoryGBs)]));
  }
  out.push('');
  out.push(
    `Memory of function instances is each function's configured memory (its app's average allocation in the trace, 64–4096 MB), as the simulator counts it. ` +
      `Live: ${x.live.failed} failed; peak ${x.live.peakSpecialised} function instances, ${x.live.peakInstances} including the generic pool (${n2(x.live.peakReservedMb)} MB reserved in all); ` +
      `peak PSS actually used by all instances ${n2(x.live.peakPssMb)} MB (the handlers only sleep). ` +
      `Overhead (client round trip − handler time), ms: all ${n2(x.live.overhead.all.median)} median / ${n2(x.live.overhead.all.p99)} p99; ` +
      `warm ${n2(x.live.overhead.warm.median)} / ${n2(x.live.overhead.warm.p99)}; generic or cold ${n2(x.live.overhead.nonWarm.median)} / ${n2(x.live.overhead.nonWarm.p99)}. ` +
      `Arrivals fired late by ${n2(x.live.lateness.median)} ms median, ${n2(x.live.lateness.max)} ms max.`,
    '',
  );
  if (x.errors.length) out.push(`Errors (first ${x.errors.length}): ${x.errors.slice(0, 5).map((e) => '`' + e.replace(/`/g, "'").slice(0, 160) + '`').join('; ')}`, '');
  out.push(`![replay](${svgRel('bench-replay.svg')})`, '', `![replay memory](${svgRel('bench-replay-memory.svg')})`, '');
  return out;
}

function writeSvgs(r: BenchResults, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const s = r.suites.start;
  if (s) {
    for (const rt of ['python', 'node'] as const) {
      const series = s.series.filter((x) => x.runtime === rt && x.handler === 'hello').map((x) => ({ label: x.method, values: x.samples }));
      writeFileSync(join(dir, `bench-start-${rt}.svg`), cdfChart(`Start latency, ${rt} hello (CDF, end to end)`, 'ms (log scale)', series));
    }
    const rows: RangeRow[] = [];
    let group = 0;
    for (const rt of ['python', 'node'] as const) {
      for (const handler of ['hello', 'bigdep'] as const) {
        for (const x of s.series.filter((q) => q.runtime === rt && q.handler === handler)) {
          rows.push({ label: `${rt} ${handler} ${x.method}`, min: x.summary.min, median: x.summary.median, p99: x.summary.p99, max: x.summary.max, group });
        }
        group++;
      }
    }
    writeFileSync(join(dir, 'bench-start-ranges.svg'), rangeChart('Start latency by method (ms, log scale)', 'ms', rows));
  }
  const x = r.suites.replay;
  if (x) {
    writeFileSync(
      join(dir, 'bench-replay.svg'),
      lineChart(`Trace replay, live at ${x.trace.speedup}×: arrivals and cold starts per trace minute`, 'trace minute', 'invocations per minute', [
        { label: 'arrivals', points: x.live.perMinute.map((p) => [p.minute, p.arrivals]), kind: 'bar' },
        { label: 'cold starts (generic+cold)', points: x.live.perMinute.map((p) => [p.minute, p.coldStarts]), kind: 'bar' },
      ], 3),
    );
    writeFileSync(
      join(dir, 'bench-replay-memory.svg'),
      lineChart('Trace replay, live: instances and memory over trace time', 'trace minute', 'count / MB', [
        { label: 'live instances', points: x.live.samples.map((q) => [q.traceMin, q.instances]), kind: 'step' },
        { label: 'function instances', points: x.live.samples.map((q) => [q.traceMin, q.specialised ?? q.instances]), kind: 'step' },
        { label: 'busy instances', points: x.live.samples.map((q) => [q.traceMin, q.busy]), kind: 'step' },
        { label: 'PSS of instances, MB', points: x.live.samples.map((q) => [q.traceMin, q.pssMb]), kind: 'line' },
      ]),
    );
  }
}

export function writeReport(r: BenchResults, o: ReportOptions): void {
  writeSvgs(r, o.svgDir);
  const mdDir = dirname(o.markdown);
  const svgRel = (f: string): string => relative(mdDir, join(o.svgDir, f)) || f;
  const m = r.machine;
  const notesFile = join(repoRoot, 'scripts', 'bench', 'notes.md');
  const notes = existsSync(notesFile) ? readFileSync(notesFile, 'utf8').trim() : '';
  const lines: string[] = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (scripts/bench.ts, scripts/bench/report.ts). Edit the generator or scripts/bench/notes.md, not this file. -->',
    '',
    `Measured ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC with \`${r.command}\` (mode \`${r.mode}\`, ${((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 60_000).toFixed(1)} min). ` +
      `Raw results: \`${relative(repoRoot, join(o.resultsDir, 'results.json'))}\` (bench-results/ is not committed; rerun to reproduce).`,
    '',
    '## Machine',
    '',
    row(['CPU', 'cores', 'memory', 'kernel (`uname -r`)', 'OS', 'cgroups', 'Node', 'Python', 'bubblewrap', 'crun']),
    row(Array<string>(10).fill('---')),
    row([m.cpu, m.cores, `${(m.memoryMb / 1024).toFixed(1)} GiB`, m.kernel, m.os, m.cgroups, m.node, m.python, m.bwrap, m.crun]),
    '',
    '## Targets',
    '',
    ...targets(r),
    '',
    ...(
      [
        ['## 1. Start latency', startSection(r, svgRel)],
        ['### Where a generic start\'s time goes', stepsSection(r)],
        ['## 2. Throughput and overhead', throughputSection(r)],
        ['## 3. Density', densitySection(r)],
        ['## 4. Scale', scaleSection(r)],
        ['## 5. Trace replay, live', replaySection(r, svgRel)],
      ] as Array<[string, string[]]>
    ).flatMap(([heading, body]) => [heading, '', ...body]),
  ];
  if (Object.keys(r.errors).length) {
    lines.push('## Suites that failed in this run', '');
    for (const [k, v] of Object.entries(r.errors)) lines.push(`- ${k}: \`${v.split('\n')[0].replace(/`/g, "'")}\``);
    lines.push('');
  }
  if (notes) lines.push(notes, '');
  lines.push(
    '## Reproduce',
    '',
    '```sh',
    'bash scripts/install.sh          # Debian packages (bubblewrap, crun, ...), npm ci, build',
    'npm run bench -- --quick         # about 5 minutes; --full for the long run; --smoke for one tiny iteration',
    'npm run bench -- --only start,density             # some suites; report and plots next to results.json, BENCHMARKS.md untouched',
    'npm run bench -- --report-from bench-results/<stamp>/results.json   # rewrite this page and its plots from a run',
    '```',
    '',
  );
  lines.push(KEEP_MARKER, '');
  // Hand-written sections after the marker (e.g. other areas' benchmarks) survive regeneration.
  if (existsSync(o.markdown)) {
    const old = readFileSync(o.markdown, 'utf8');
    const at = old.indexOf(KEEP_MARKER);
    if (at >= 0) lines.push(old.slice(at + KEEP_MARKER.length).replace(/^\n+/, ''));
  }
  writeFileSync(o.markdown, lines.join('\n').replace(/\n+$/, '\n'));
}
