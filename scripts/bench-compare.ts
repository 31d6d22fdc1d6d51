/**
 * Two benchmark runs side by side, with the change in percent: the `headline` of each run's
 * results.json, figure by figure (median and p99), or the "Targets" table of each run's
 * BENCHMARKS.md (as written next to results.json by `npm run bench -- --out DIR`), joined by target.
 *
 *   node dist/scripts/bench-compare.js --before BEFORE/results.json --after AFTER/results.json [--labels before,after]
 *   node dist/scripts/bench-compare.js --before BEFORE/BENCHMARKS.md --after AFTER/BENCHMARKS.md [--labels before,after]
 *
 * Prints a markdown table on stdout. Markdown figures are read as written (the first number of the
 * "measured" cell and its unit); rows found in only one run are shown with a dash on the other side.
 * A results.json without a headline (older runs) gets one computed from its suites.
 */
import { readFileSync } from 'node:fs';
import { computeHeadline, type Headline, type Latency } from './bench/headline.js';
import type { BenchResults } from './bench/results.js';
import { scriptArgs, UsageError, VALUE } from './cli-args.js';

interface Row {
  target: string;
  measured: string;
  met: string;
}

/** The rows of the first table under a `## Targets` heading. */
export function targetRows(markdown: string): Row[] {
  const at = markdown.indexOf('## Targets');
  if (at < 0) throw new Error('no "## Targets" section');
  const rows: Row[] = [];
  for (const line of markdown.slice(at).split('\n').slice(1)) {
    if (line.startsWith('## ')) break;
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || cells[1] === 'target' || /^-+$/.test(cells[1] ?? '')) continue;
    rows.push({ target: cells[1], measured: cells[2], met: cells[3] });
  }
  return rows;
}

function firstNumber(s: string): number | undefined {
  const m = /-?\d+(?:\.\d+)?/.exec(s);
  return m ? Number(m[0]) : undefined;
}

export function compareTables(before: Row[], after: Row[], labels: [string, string]): string {
  const byTarget = new Map(after.map((r) => [r.target, r]));
  const out = [`| target | ${labels[0]} | ${labels[1]} | change |`, '| --- | ---: | ---: | ---: |'];
  const seen = new Set<string>();
  for (const b of before) {
    seen.add(b.target);
    const a = byTarget.get(b.target);
    const x = firstNumber(b.measured);
    const y = a ? firstNumber(a.measured) : undefined;
    const change = x !== undefined && y !== undefined && x !== 0 ? `${(((y - x) / x) * 100).toFixed(0)}%` : '';
    out.push(`| ${b.target} | ${b.measured} | ${a?.measured ?? '–'} | ${change} |`);
  }
  for (const a of after) if (!seen.has(a.target)) out.push(`| ${a.target} | – | ${a.measured} | |`);
  return out.join('\n') + '\n';
}

/** A headline flattened to `key.runtime.median`-style paths and numbers (nulls left out). */
export function headlineFigures(h: Headline): Map<string, number> {
  const out = new Map<string, number>();
  const put = (path: string, v: Latency | number | null): void => {
    if (v === null) return;
    if (typeof v === 'number') out.set(path, v);
    else {
      out.set(`${path}.median`, v.median);
      out.set(`${path}.p99`, v.p99);
    }
  };
  for (const [key, v] of Object.entries(h) as Array<[string, unknown]>) {
    if (key === 'missing') continue;
    if (v === null || typeof v === 'number' || (typeof v === 'object' && 'median' in v)) put(key, v as Latency | number | null);
    else for (const [sub, x] of Object.entries(v as object)) put(`${key}.${sub}`, x as Latency | number | null);
  }
  return out;
}

/** The figures of two headlines side by side; lower is better except `throughput_per_s`. */
export function compareHeadlines(before: Headline, after: Headline, labels: [string, string]): string {
  const b = headlineFigures(before);
  const a = headlineFigures(after);
  const f = (v: number | undefined): string => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
  const out = [`| figure | ${labels[0]} | ${labels[1]} | change |`, '| --- | ---: | ---: | ---: |'];
  for (const path of [...new Set([...b.keys(), ...a.keys()])]) {
    const x = b.get(path);
    const y = a.get(path);
    const change = x !== undefined && y !== undefined && x !== 0 ? `${(((y - x) / x) * 100).toFixed(0)}%` : '';
    out.push(`| ${path} | ${f(x)} | ${f(y)} | ${change} |`);
  }
  return out.join('\n') + '\n';
}

function readHeadline(path: string): Headline {
  const r = JSON.parse(readFileSync(path, 'utf8')) as BenchResults;
  return r.headline ?? computeHeadline(r);
}

const USAGE = `usage: node dist/scripts/bench-compare.js --before BEFORE/results.json --after AFTER/results.json [--labels before,after]
       node dist/scripts/bench-compare.js --before BEFORE/BENCHMARKS.md --after AFTER/BENCHMARKS.md [--labels before,after]`;

function main(): void {
  const args = scriptArgs('bench-compare', USAGE, { before: VALUE, after: VALUE, labels: VALUE }, ({ values }) => {
    if (!values.before || !values.after) throw new UsageError('--before and --after are both needed');
    return { before: values.before, after: values.after, labels: (values.labels ?? 'before,after').split(',') as [string, string] };
  });
  const json = [args.before, args.after].map((p) => p.endsWith('.json'));
  if (json[0] !== json[1]) throw new Error('--before and --after must both be results.json files, or both BENCHMARKS.md');
  if (json[0]) {
    process.stdout.write(compareHeadlines(readHeadline(args.before), readHeadline(args.after), args.labels));
    return;
  }
  const [b, a] = [args.before, args.after].map((p) => targetRows(readFileSync(p, 'utf8')));
  process.stdout.write(compareTables(b, a, args.labels));
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`bench-compare: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
