/** Table, JSON and SVG plot of simulation results. */
import { scatterChart } from '../chart/svg.js';
import type { SimResult } from './simulator.js';

/** The result fields a report shows, in the order of the JSON output. */
const ROW_KEYS = ['name', 'invocations', 'coldStarts', 'coldStartRatio', 'p75FunctionColdStartRatio', 'wastedMemoryGBs', 'peakMemoryMB'] as const;

export type PolicyRow = Pick<SimResult, (typeof ROW_KEYS)[number]>;

export function rowOf(r: SimResult): PolicyRow {
  return Object.fromEntries(ROW_KEYS.map((k) => [k, r[k]])) as PolicyRow;
}

export function toJson(results: readonly SimResult[]): { policies: PolicyRow[] } {
  return { policies: results.map(rowOf) };
}

/** A ratio with 4 decimals, or 3 significant digits when it is tiny (busy traces). */
export function formatRatio(x: number): string {
  if (x !== 0 && Math.abs(x) < 0.001) return x.toExponential(2);
  return x.toFixed(4);
}

export function formatTable(results: readonly SimResult[]): string {
  const head = ['policy', 'invocations', 'coldStarts', 'coldStartRatio', 'p75FnColdRatio', 'wastedGB·s', 'peakMB'];
  const rows = results.map((r) => [
    r.name,
    String(r.invocations),
    String(r.coldStarts),
    formatRatio(r.coldStartRatio),
    formatRatio(r.p75FunctionColdStartRatio),
    r.wastedMemoryGBs.toFixed(1),
    r.peakMemoryMB.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Markdown version of the table, for docs. */
export function formatMarkdown(results: readonly SimResult[]): string {
  const out = [
    '| policy | invocations | cold starts | cold-start ratio | p75 per-function cold-start ratio | wasted memory (GB·s) | peak memory (MB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    out.push(
      `| ${r.name} | ${r.invocations} | ${r.coldStarts} | ${formatRatio(r.coldStartRatio)} | ${formatRatio(r.p75FunctionColdStartRatio)} | ${r.wastedMemoryGBs.toFixed(1)} | ${r.peakMemoryMB.toFixed(0)} |`,
    );
  }
  return out.join('\n');
}

/**
 * Scatter plot, cold-start ratio (y) against wasted memory (x), one labelled point per policy.
 * `metric` picks the y value: the overall ratio or the 75th-percentile per-function ratio.
 */
export function plotSvg(results: readonly SimResult[], title: string, metric: 'coldStartRatio' | 'p75FunctionColdStartRatio' = 'coldStartRatio'): string {
  const yLabel = metric === 'coldStartRatio' ? 'cold-start ratio' : '75th-percentile per-function cold-start ratio';
  const points = results.map((r) => ({
    label: r.name,
    x: r.wastedMemoryGBs,
    y: r[metric],
    note: `${r.name}: ${r[metric].toFixed(4)} at ${r.wastedMemoryGBs.toFixed(1)} GB·s`,
  }));
  return scatterChart(title, 'wasted memory (GB·s, idle instance MB × s / 1024)', yLabel, points);
}
