/**
 * Hearth's performance suite: Hearth against the alternatives, side by side in one run.
 *
 *   npm run bench -- [--smoke | --quick | --full] [--only SUITE,...] [--out DIR] [--docs | --no-docs]
 *   npm run bench -- --report-from bench-results/<stamp>/results.json
 *
 * Suites: start (start latency vs fresh sandbox, bubblewrap, crun), steps (where a generic start's
 * time goes, below the daemon), throughput (warm invocations/s
 * and overhead over a bare round trip), density (PSS per instance), scale (functions and live
 * instances), replay (a slice of the Azure 2019 trace, live, next to the simulator).
 * Raw results go to bench-results/<timestamp>/results.json (or --out DIR), with a `headline` object
 * of the key figures under stable keys (bench/headline.ts), and a report and plots next to it. Only
 * a full run of every suite rewrites the committed BENCHMARKS.md and docs/bench-*.svg (not with
 * --no-docs); a quick one only with --docs; a smoke run or --only never (bench/options.ts).
 * Root only. Everything it starts is undone at exit, also on SIGINT/SIGTERM.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { repoRoot } from './bench/daemon-process.js';
import { writeFixtures } from './bench/fixtures.js';
import { machineInfo, type BenchResults, type Suite } from './bench/results.js';
import { runStartLatency } from './bench/start-latency.js';
import { runThroughput } from './bench/throughput.js';
import { runDensity } from './bench/density.js';
import { runScale } from './bench/scale.js';
import { runReplay } from './bench/replay.js';
import { runSteps } from './bench/steps.js';
import { writeReport } from './bench/report.js';
import { findTool } from '../src/host-tools.js';
import { computeHeadline } from './bench/headline.js';
import { OPTIONS, plan, toArgs, USAGE } from './bench/options.js';
import { scriptArgs } from './cli-args.js';

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
    headline: undefined,
    machine: machineInfo(),
    suites: {},
    errors: {},
  };
  const save = (): void => {
    results.headline = computeHeadline(results);
    writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  };
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
    await run('start', () =>
      runStartLatency(work, fx, cleanup, {
        rounds: p.startRounds,
        bigdepRounds: p.bigdepRounds,
        idleRounds: p.idleRounds,
        loopBlockSamples: p.loopBlockSamples,
        runtimes: ['python', 'node'],
        log,
      }),
    );
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
    log(
      `done: ${join(out, 'results.json')}${args.docs ? '; BENCHMARKS.md and docs/bench-*.svg rewritten' : `; report and plots in ${out} (BENCHMARKS.md untouched)`}`,
    );
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
