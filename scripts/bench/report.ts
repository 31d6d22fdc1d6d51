/**
 * Turns results.json into BENCHMARKS.md and the SVG plots. The page is generated whole; prose
 * that should survive regeneration lives in scripts/bench/notes.md and is copied in.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { repoRoot } from './daemon-process.js';
import type { BenchResults } from './results.js';
import { OVERHEAD_BLOCK } from './throughput.js';
import { computeHeadline, headlineSection } from './headline.js';
import { IDLE_MS } from './start-idle.js';
import { cdfChart, lineChart, rangeChart, type RangeRow } from '../chart/svg.js';
import { densitySection, find, header, METHOD_LABEL, n2, replaySection, row, scaleSection, sumCells, throughputSection } from './report-suites.js';

/** Everything below this line in BENCHMARKS.md is kept as it is when the page is regenerated. */
export const KEEP_MARKER = '<!-- End of the generated part: sections below this line are kept when `npm run bench` regenerates the page. -->';

export interface ReportOptions {
  svgDir: string;
  markdown: string;
  resultsDir: string;
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
      out.push(
        row([
          `generic ≥ 10× faster than ${alt}, ${rt === 'python' ? 'Python' : 'Node'}`,
          ratio === undefined ? '–' : `${ratio.toFixed(1)}×`,
          yes(ratio === undefined ? undefined : ratio >= 10),
        ]),
      );
    }
  }
  for (const o of r.suites.throughput?.overhead ?? []) {
    const how = o.order === 'alternating' ? 'alternating every call, for reference' : `blocks of ${OVERHEAD_BLOCK} calls`;
    out.push(
      row([
        `warm overhead over a bare round trip ≤ 0.2 ms, ${o.runtime === 'python' ? 'Python' : 'Node'} (medians, ${how})`,
        `${n2(o.addedMedianMs)} ms`,
        yes(o.addedMedianMs <= 0.2),
      ]),
    );
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
        out.push(
          '',
          `Fresh sandbox, mean time at each step: ${Object.entries(fresh.steps)
            .map(([k, v]) => `${k} ${n2(v)} ms`)
            .join(', ')}.`,
        );
      }
      out.push('');
    }
  }
  out.push(`![start latency, Python](${svgRel('bench-start-python.svg')}) ![start latency, Node](${svgRel('bench-start-node.svg')})`, '');
  out.push(`![start latency ranges](${svgRel('bench-start-ranges.svg')})`, '');
  out.push(`Cold series: ${s.coldDaemonRestarts} restarts of its daemon (see Method).`, '');
  if (s.idleRounds) {
    out.push(
      `After ${IDLE_MS} ms idle (${s.idleRounds} rounds, in each runtime's hello table): before each sample nothing runs for ${IDLE_MS} ms, then one generic start, or one ` +
        'round trip of 64 bytes on a Unix socket to an echo process, directly or through a relay process (two plain Node processes copying bytes: the floor of a ' +
        'two-hop path after idleness).',
      '',
    );
  }
  if (s.loopBlock?.length) {
    out.push(
      "The daemon's event-loop block while an instance is made: with a probe preloaded into the daemon (scripts/bench/loop-probe.ts, off outside the windows), the " +
        'longest single callback on its loop per window, in ms. `cold`: an invoke that makes a new instance on a daemon with no generic pool; `refill`: a generic start ' +
        'and the refill of the pool after it. "busy": all callbacks of the window together.',
      '',
      ...header(['runtime', 'kind', 'n', 'median', 'p99', 'min', 'max', 'busy, median'], 2),
    );
    for (const b of s.loopBlock) {
      if (b.error && b.summary.n === 0) out.push(row([b.runtime, b.kind, '0', `failed: ${b.error.replace(/\|/g, '/').slice(0, 160)}`, '', '', '', '']));
      else out.push(row([b.runtime, b.kind + (b.excluded ? ` (${b.excluded} excluded)` : ''), ...sumCells(b.summary), n2(b.busyMs.median)]));
    }
    out.push('');
  }
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
  out.push(
    '',
    "`specialized` runs from sending the specialise message (with the first invocation in the same write, as the pool does) to its reply; `shimImport` is the import time the shim reports, inside it; `firstResult` from that reply to the first invocation's result. `total` runs from before the refill spawn (or setLimits) to the first result.",
    '',
  );
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
      lineChart(
        `Trace replay, live at ${x.trace.speedup}×: arrivals and cold starts per trace minute`,
        'trace minute',
        'invocations per minute',
        [
          { label: 'arrivals', points: x.live.perMinute.map((p) => [p.minute, p.arrivals]), kind: 'bar' },
          { label: 'cold starts (generic+cold)', points: x.live.perMinute.map((p) => [p.minute, p.coldStarts]), kind: 'bar' },
        ],
        3,
      ),
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
    '## Headline',
    '',
    'The `headline` object of results.json (key in the first column; median with p99, ms; the keys are explained under "Headline keys" further down).',
    '',
    ...headlineSection(r.headline ?? computeHeadline(r)),
    '',
    '## Targets',
    '',
    ...targets(r),
    '',
    ...(
      [
        ['## 1. Start latency', startSection(r, svgRel)],
        ["### Where a generic start's time goes", stepsSection(r)],
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
    'npm run bench -- --quick         # about 6 minutes; results.json (with its headline), report and plots in bench-results/<stamp>/',
    'npm run bench -- --full          # the long run; also rewrites this page and docs/bench-*.svg (not with --no-docs)',
    'npm run bench -- --smoke         # one tiny iteration, to check that the suites run',
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
