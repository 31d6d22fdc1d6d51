/**
 * The Pareto picture of docs/pool-policy.md: every policy on both training files, cold starts
 * against wasted memory (each relative to fixed-10m on the same file, so the files share one
 * chart), plus Hearth at other prices of a cold start; and the tune / held-out split.
 *
 *   npx tsc -p tsconfig.json && flock /tmp/hearth-bench.lock node dist/scripts/sim-pareto.js [--data DIR] [--svg docs/pool-policy-pareto.svg]
 *
 * Prints markdown tables (paste into docs/pool-policy.md) and writes the SVG.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPolicy, HearthPolicy, MINUTE_MS, POLICY_NAMES, type Policy } from '../src/model/index.js';
import { scatterChart, type ScatterPoint } from './chart/svg.js';
import { scriptArgs, VALUE } from './cli-args.js';
import { peakBusyMemoryMb, simulate, type SimResult } from './sim/simulator.js';
import { readTrace, splitTrace, type Trace } from './sim/trace.js';

const USAGE = 'usage: node dist/scripts/sim-pareto.js [--data DIR] [--svg OUT.svg]';
const { DATA, SVG } = scriptArgs('sim-pareto', USAGE, { data: VALUE, svg: VALUE }, ({ values: v }) => ({
  DATA: v.data ?? '/work/shared/data/azure2019',
  SVG: v.svg ?? 'docs/pool-policy-pareto.svg',
}));

const FILES = ['sample100', 'train350'] as const;
/** Hearth at other prices of a cold start (minutes of a 150 MB instance's idle time). */
const PRICES_MIN = [30, 60];

function load(name: string): Trace {
  return readTrace(join(DATA, `${name}_inv.csv`), join(DATA, `${name}_run.csv`), join(DATA, `${name}_mem.csv`));
}

function run(trace: Trace, name: string, make: () => Policy): SimResult {
  const capMb = 2 * peakBusyMemoryMb(trace);
  return { ...simulate(trace, make(), name === 'faascache' ? { memoryCapMb: capMb } : {}), name };
}

const row = (file: string, r: SimResult, base: SimResult): string =>
  `| ${file} | ${r.name} | ${r.coldStarts} | ${(r.coldStarts / base.coldStarts).toFixed(2)}× | ${r.p75FunctionColdStartRatio.toFixed(3)} | ` +
  `${Math.round(r.wastedMemoryGBs)} | ${(r.wastedMemoryGBs / base.wastedMemoryGBs).toFixed(2)}× |`;

const HEAD = [
  '| file | policy | cold starts | vs fixed-10m | p75 per-function cold-start ratio | wasted memory GB·s | vs fixed-10m |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
];

function main(): void {
  const points: ScatterPoint[] = [];
  const full: string[] = [...HEAD];
  const split: string[] = [...HEAD];
  for (const file of FILES) {
    const trace = load(file);
    const results = POLICY_NAMES.map((n) => run(trace, n, () => createPolicy(n)));
    for (const m of PRICES_MIN) results.push(run(trace, `hearth (${m} min)`, () => new HearthPolicy({ coldCostMs: m * MINUTE_MS })));
    const base = results.find((r) => r.name === 'fixed-10m')!;
    for (const r of results) {
      full.push(row(file, r, base));
      points.push({
        label: `${r.name} · ${file}`,
        x: r.wastedMemoryGBs / base.wastedMemoryGBs,
        y: r.coldStarts / base.coldStarts,
        note: `${r.name} on ${file}: ${r.coldStarts} cold starts, ${Math.round(r.wastedMemoryGBs)} GB·s`,
      });
    }
    for (const part of ['tune', 'holdout'] as const) {
      const half = splitTrace(trace, part);
      const rs = (['fixed-10m', 'hybrid-histogram', 'hearth'] as const).map((n) => run(half, n, () => createPolicy(n)));
      for (const r of rs) split.push(row(`${file} ${part} (${half.functions.length} fns)`, r, rs[0]));
    }
  }
  const svg = scatterChart(
    'Cold starts vs wasted memory, relative to fixed-10m on the same file (lower left is better)',
    'wasted memory ÷ fixed-10m',
    'cold starts ÷ fixed-10m',
    points,
  );
  writeFileSync(SVG, svg);
  process.stdout.write(['Whole files:', '', ...full, '', 'Tune / held-out halves:', '', ...split, ''].join('\n'));
}

main();
