/**
 * Two benchmark runs side by side: the "Targets" table of each run's BENCHMARKS.md (as written by
 * `npm run bench -- --no-docs --out DIR`), joined by target, with the change in percent.
 *
 *   node dist/scripts/bench-compare.js --before BEFORE/BENCHMARKS.md --after AFTER/BENCHMARKS.md [--labels before,after]
 *
 * Prints a markdown table on stdout. Figures are read as written (the first number of the
 * "measured" cell and its unit); rows found in only one run are shown with a dash on the other side.
 */
import { readFileSync } from 'node:fs';
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

const USAGE = 'usage: node dist/scripts/bench-compare.js --before BEFORE/BENCHMARKS.md --after AFTER/BENCHMARKS.md [--labels before,after]';

function main(): void {
  const args = scriptArgs('bench-compare', USAGE, { before: VALUE, after: VALUE, labels: VALUE }, ({ values }) => {
    if (!values.before || !values.after) throw new UsageError('--before and --after are both needed');
    return { before: values.before, after: values.after, labels: (values.labels ?? 'before,after').split(',') as [string, string] };
  });
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
