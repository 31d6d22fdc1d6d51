/** Table, JSON and SVG plot of simulation results. */
import type { SimResult } from './simulator.js';

export interface PolicyRow {
  name: string;
  invocations: number;
  coldStarts: number;
  coldStartRatio: number;
  p75FunctionColdStartRatio: number;
  wastedMemoryGBs: number;
  peakMemoryMB: number;
}

export function rowOf(r: SimResult): PolicyRow {
  return {
    name: r.name,
    invocations: r.invocations,
    coldStarts: r.coldStarts,
    coldStartRatio: r.coldStartRatio,
    p75FunctionColdStartRatio: r.p75FunctionColdStartRatio,
    wastedMemoryGBs: r.wastedMemoryGBs,
    peakMemoryMB: r.peakMemoryMB,
  };
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
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
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

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceStep(range: number, ticks: number): number {
  const raw = range / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * mag;
}

const COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];

/**
 * Scatter plot, cold-start ratio (y) against wasted memory (x), one labelled point per policy.
 * `metric` picks the y value: the overall ratio or the 75th-percentile per-function ratio.
 */
export function plotSvg(
  results: readonly SimResult[],
  title: string,
  metric: 'coldStartRatio' | 'p75FunctionColdStartRatio' = 'coldStartRatio',
): string {
  const W = 720;
  const H = 480;
  const L = 80;
  const R = 190;
  const T = 50;
  const B = 60;
  const xs = results.map((r) => r.wastedMemoryGBs);
  const ys = results.map((r) => r[metric]);
  const xMax0 = Math.max(1e-9, ...xs) * 1.1;
  const yMax0 = Math.max(1e-9, ...ys) * 1.1;
  const xStep = niceStep(xMax0, 5);
  const yStep = niceStep(yMax0, 5);
  const xMax = Math.ceil(xMax0 / xStep) * xStep;
  const yMax = Math.ceil(yMax0 / yStep) * yStep;
  const px = (x: number): number => L + (x / xMax) * (W - L - R);
  const py = (y: number): number => H - B - (y / yMax) * (H - T - B);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="24" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    parts.push(`<line x1="${px(x)}" y1="${T}" x2="${px(x)}" y2="${H - B}" stroke="#eee"/>`);
    parts.push(`<text x="${px(x)}" y="${H - B + 18}" text-anchor="middle">${+x.toPrecision(6)}</text>`);
  }
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    parts.push(`<line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" stroke="#eee"/>`);
    parts.push(`<text x="${L - 8}" y="${py(y) + 4}" text-anchor="end">${+y.toPrecision(6)}</text>`);
  }
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">wasted memory (GB·s, idle instance MB × s / 1024)</text>`);
  const yLabel = metric === 'coldStartRatio' ? 'cold-start ratio' : '75th-percentile per-function cold-start ratio';
  parts.push(`<text transform="translate(20 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`);
  results.forEach((r, i) => {
    const c = COLOURS[i % COLOURS.length]!;
    const x = px(xs[i]!);
    const y = py(ys[i]!);
    parts.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="6" fill="${c}"><title>${esc(r.name)}: ${ys[i]!.toFixed(4)} at ${xs[i]!.toFixed(1)} GB·s</title></circle>`);
    parts.push(`<text x="${(x + 9).toFixed(1)}" y="${(y - 8).toFixed(1)}" font-size="11">${esc(r.name)}</text>`);
    const ly = T + 10 + i * 22;
    parts.push(`<circle cx="${W - R + 20}" cy="${ly}" r="6" fill="${c}"/>`);
    parts.push(`<text x="${W - R + 32}" y="${ly + 4}">${esc(r.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
