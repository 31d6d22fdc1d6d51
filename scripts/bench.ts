/**
 * Hearth's performance suite: Hearth against the alternatives, side by side in one run.
 *
 *   npm run bench -- [--smoke | --quick | --full] [--only SUITE,...] [--out DIR] [--no-docs]
 *   npm run bench -- --report-from bench-results/<stamp>/results.json
 *
 * Suites: start (start latency vs fresh sandbox, bubblewrap, crun), steps (where a generic start's
 * time goes, below the daemon), throughput (warm invocations/s
 * and overhead over a bare round trip), density (PSS per instance), scale (functions and live
 * instances), replay (a slice of the Azure 2019 trace, live, next to the simulator).
 * Raw results go to bench-results/<timestamp>/results.json (or --out DIR); a quick or full run of
 * every suite also rewrites BENCHMARKS.md and docs/bench-*.svg (not with --no-docs, --only or
 * --smoke: those write the report and plots next to results.json instead).
 * Root only. Everything it starts is undone at exit, also on SIGINT/SIGTERM.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { repoRoot } from './bench/daemon-process.js';
import { writeFixtures } from './bench/fixtures.js';
import { machineInfo, type BenchResults, type Mode, SUITES, type Suite } from './bench/results.js';
import { runStartLatency } from './bench/start-latency.js';
import { runThroughput } from './bench/throughput.js';
import { runDensity } from './bench/density.js';
import { runScale } from './bench/scale.js';
import { runReplay } from './bench/replay.js';
import { runSteps } from './bench/steps.js';
import { writeReport } from './bench/report.js';
import { findTool } from '../src/host-tools.js';
import { readArgs, scriptArgs, SWITCH, UsageError, VALUE } from './cli-args.js';

interface Args {
  /** Regenerate BENCHMARKS.md and the plots from this results.json instead of measuring. */
  reportFrom?: string;
  mode: Mode;
  only: Suite[];
  out?: string;
  docs: boolean;
}

const USAGE = `usage: npm run bench -- [--smoke|--quick|--full] [--only ${SUITES.join(',')}] [--out DIR] [--no-docs]
       npm run bench -- --report-from bench-results/<stamp>/results.json   (rewrite BENCHMARKS.md and plots only)`;

const OPTIONS = { smoke: SWITCH, quick: SWITCH, full: SWITCH, only: VALUE, out: VALUE, 'report-from': VALUE, 'no-docs': SWITCH };

function toArgs({ values: v, tokens }: ReturnType<typeof readArgs<typeof OPTIONS>>): Args {
  // The last of --smoke, --quick and --full wins; quick without any.
  const modes = tokens.flatMap((t) => (t.kind === 'option' && ['smoke', 'quick', 'full'].includes(t.name) ? [t.name as Mode] : []));
  const only = v.only === undefined ? [...SUITES] : v.only.split(',').filter(Boolean);
  for (const s of only) if (!(SUITES as readonly string[]).includes(s)) throw new UsageError(`unknown suite ${s}`);
  const a: Args = { mode: modes.at(-1) ?? 'quick', only: only as Suite[], docs: !v['no-docs'], out: v.out, reportFrom: v['report-from'] };
  // BENCHMARKS.md and the plots describe a whole run: a smoke run or a subset leaves them alone.
  if (a.mode === 'smoke' || a.only.length !== SUITES.length) a.docs = false;
  return a;
}

/** Sizes of each mode. */
function plan(mode: Mode) {
  const pick = <T>(smoke: T, quick: T, full: T): T => (mode === 'smoke' ? smoke : mode === 'quick' ? quick : full);
  return {
    startRounds: pick(2, 40, 200),
    bigdepRounds: pick(2, 10, 30),
    stepsSamples: pick(2, 20, 50),
    bigdepModules: pick(20, 150, 150),
    throughputSeconds: pick(0.3, 3, 10),
    concurrency: pick([1, 8], [1, 8, 64], [1, 8, 64]),
    overheadSamples: pick(20, 500, 2000),
    densityGeneric: pick(2, 8, 16),
    scaleFunctions: pick([4, 8], [10, 100, 300], [10, 100, 1000]),
    scaleInstances: pick([2, 4], [10, 50, 150], [10, 100, 500]),
    scaleSamples: pick(2, 20, 50),
    scaleIdleSeconds: pick(0.5, 2, 5),
    scaleCpuInvocations: pick(10, 300, 1000),
    replay: pick(
      { fromMinute: 1, minutes: 2, speedup: 60, functions: 5 },
      { fromMinute: 1, minutes: 60, speedup: 40, functions: 40 },
      { fromMinute: 1, minutes: 60, speedup: 12, functions: 100 },
    ),
  };
}

async function main(): Promise<number> {
  const args = scriptArgs('bench', USAGE, OPTIONS, toArgs);
  if (args.reportFrom) {
    const r = JSON.parse(readFileSync(args.reportFrom, 'utf8')) as BenchResults;
    writeReport(r, { svgDir: join(repoRoot, 'docs'), markdown: join(repoRoot, 'BENCHMARKS.md'), resultsDir: dirname(resolve(args.reportFrom)) });
    process.stderr.write(`bench: BENCHMARKS.md and docs/bench-*.svg rewritten from ${args.reportFrom}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: must run as root (the daemon and the alternatives build sandboxes)\n');
    return 1;
  }
  // The start suite measures Hearth against bubblewrap and crun: say what is missing before
  // starting anything, rather than failing in the middle of a run.
  if (args.only.includes('start')) {
    const missing = [
      ['bwrap', 'bubblewrap'],
      ['crun', 'crun'],
    ].filter(([tool]) => findTool(tool) === undefined);
    if (missing.length > 0) {
      const list = missing.map(([tool, pkg]) => `\`${tool}\` (apt-get install ${pkg})`).join(', ');
      process.stderr.write(`bench: the start suite compares against bubblewrap and crun; not found: ${list}. Install them, or run --only with other suites.\n`);
      return 1;
    }
  }
  const p = plan(args.mode);
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const out = args.out ?? join(repoRoot, 'bench-results', stamp);
  mkdirSync(out, { recursive: true });
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const work = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
  cleanup.add('work dir', () => removeDir(work));
  cleanup.created.dirs.push(work);
  const log = (s: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
  const results: BenchResults = {
    version: 1,
    mode: args.mode,
    command,
    startedAt: started.toISOString(),
    finishedAt: '',
    machine: machineInfo(),
    suites: {},
    errors: {},
  };
  const save = (): void => writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  try {
    log(`bench ${args.mode}: ${args.only.join(', ')}; results in ${out}`);
    const fx = writeFixtures(join(work, 'fixtures'), { bigdepModules: p.bigdepModules });
    results.fixtures = {
      bigdep: { python: { bytes: fx.bigdep.python.bytes, files: fx.bigdep.python.files }, node: { bytes: fx.bigdep.node.bytes, files: fx.bigdep.node.files } },
    };
    const run = async (suite: Suite, fn: () => Promise<unknown>): Promise<void> => {
      if (!args.only.includes(suite) || cleanup.aborted) return;
      const t0 = Date.now();
      log(`suite ${suite}: start`);
      try {
        (results.suites as Record<string, unknown>)[suite] = await fn();
      } catch (err) {
        results.errors[suite] = (err as Error).stack ?? String(err);
        log(`suite ${suite} FAILED: ${(err as Error).message}`);
      }
      log(`suite ${suite}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      save();
    };
    await run('start', () => runStartLatency(work, fx, cleanup, { rounds: p.startRounds, bigdepRounds: p.bigdepRounds, runtimes: ['python', 'node'], log }));
    await run('steps', () => runSteps(work, fx, cleanup, { samples: p.stepsSamples, log }));
    await run('throughput', () =>
      runThroughput(work, fx, cleanup, { seconds: p.throughputSeconds, concurrency: p.concurrency, overheadSamples: p.overheadSamples, log }),
    );
    await run('density', () => runDensity(work, fx, cleanup, { generic: p.densityGeneric, log }));
    await run('scale', () =>
      runScale(work, fx, cleanup, {
        functions: p.scaleFunctions,
        instances: p.scaleInstances,
        samples: p.scaleSamples,
        idleSeconds: p.scaleIdleSeconds,
        cpuInvocations: p.scaleCpuInvocations,
        log,
      }),
    );
    await run('replay', () => runReplay(work, fx, cleanup, { ...p.replay, log }));
    results.finishedAt = new Date().toISOString();
    save();
    const docsDir = args.docs ? join(repoRoot, 'docs') : out;
    writeReport(results, { svgDir: docsDir, markdown: args.docs ? join(repoRoot, 'BENCHMARKS.md') : join(out, 'BENCHMARKS.md'), resultsDir: out });
    log(`done: ${join(out, 'results.json')}${args.docs ? '; BENCHMARKS.md and docs/bench-*.svg rewritten' : ''}`);
  } finally {
    await cleanup.runAll();
    results.created = cleanup.created;
    save();
  }
  return Object.keys(results.errors).length === 0 ? 0 : 1;
}

main().then(
  (c) => (process.exitCode = c),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  },
);
