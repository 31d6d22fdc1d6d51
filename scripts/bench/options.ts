/**
 * The bench command line (scripts/bench.ts) and the size of each mode. Pure code, so that which
 * files a run may write is unit-tested (test/unit/bench-options.test.ts).
 *
 * What a run writes: results.json (with its `headline`), a BENCHMARKS.md and the plots, all in its
 * output folder. Only a full run of every suite (or `--report-from`) rewrites the committed
 * BENCHMARKS.md and docs/bench-*.svg, unless `--no-docs`; a quick run does so only with `--docs`.
 */
import { SUITES, type Mode, type Suite } from './results.js';
import { readArgs, SWITCH, UsageError, VALUE } from '../cli-args.js';

export interface BenchArgs {
  /** Regenerate BENCHMARKS.md and the plots from this results.json instead of measuring. */
  reportFrom?: string;
  mode: Mode;
  only: Suite[];
  out?: string;
  /** Rewrite the committed BENCHMARKS.md and docs/bench-*.svg (otherwise they go next to results.json). */
  docs: boolean;
}

export const USAGE = `usage: npm run bench -- [--smoke|--quick|--full] [--only ${SUITES.join(',')}] [--out DIR] [--docs|--no-docs]
       npm run bench -- --report-from bench-results/<stamp>/results.json   (rewrite BENCHMARKS.md and plots only)
  Writes results.json (its "headline" holds the key figures, see BENCHMARKS.md), a report and plots
  in DIR (default bench-results/<stamp>/). BENCHMARKS.md and docs/bench-*.svg are rewritten only by
  a --full run of every suite (not with --no-docs), or a --quick one with --docs.`;

export const OPTIONS = {
  smoke: SWITCH,
  quick: SWITCH,
  full: SWITCH,
  only: VALUE,
  out: VALUE,
  'report-from': VALUE,
  docs: SWITCH,
  'no-docs': SWITCH,
} as const;

export function toArgs({ values: v, tokens }: ReturnType<typeof readArgs<typeof OPTIONS>>): BenchArgs {
  // The last of --smoke, --quick and --full wins; quick without any.
  const modes = tokens.flatMap((t) => (t.kind === 'option' && ['smoke', 'quick', 'full'].includes(t.name) ? [t.name as Mode] : []));
  const only = v.only === undefined ? [...SUITES] : v.only.split(',').filter(Boolean);
  for (const s of only) if (!(SUITES as readonly string[]).includes(s)) throw new UsageError(`unknown suite ${s}`);
  if (v.docs && v['no-docs']) throw new UsageError('--docs and --no-docs contradict each other');
  const mode = modes.at(-1) ?? 'quick';
  const whole = only.length === SUITES.length;
  // BENCHMARKS.md and the plots describe a whole run: a smoke run or a subset never writes them.
  if (v.docs && (mode === 'smoke' || !whole)) throw new UsageError('--docs needs a --quick or --full run of every suite (no --smoke, no --only)');
  const docs = v.docs === true || (mode === 'full' && whole && !v['no-docs']);
  return { mode, only: only as Suite[], docs, out: v.out, reportFrom: v['report-from'] };
}

/** Sizes of each mode. */
export function plan(mode: Mode) {
  const pick = <T>(smoke: T, quick: T, full: T): T => (mode === 'smoke' ? smoke : mode === 'quick' ? quick : full);
  return {
    startRounds: pick(2, 40, 200),
    bigdepRounds: pick(2, 10, 30),
    /** Rounds of the start suite's after-idle series (each sample sleeps 0.5 s first). */
    idleRounds: pick(2, 15, 60),
    /** Instance creations per runtime and kind with the daemon's loop probe on. */
    loopBlockSamples: pick(2, 15, 50),
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
