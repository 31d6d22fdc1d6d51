/**
 * Plain SVG charts, written by hand (no dependencies), the one SVG writer of the scripts:
 * cumulative distributions and min–median–p99–max ranges on a log or linear axis, line/step
 * charts over time (the benchmarks), and labelled scatter plots (the simulator).
 */

export const PALETTE = ['#d62728', '#ff7f0e', '#2ca02c', '#1f77b4', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (n: number): string => (Math.round(n * 10) / 10).toString();

interface Axis {
  min: number;
  max: number;
  log: boolean;
}

/** A chart's size and the margins around its plot area, px. */
interface Box {
  w: number;
  h: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Legend entry i at the right of the plot area: a colour mark and a label. */
function legendEntry(b: Box, i: number, color: string, label: string, mark: 'square' | 'dot' = 'square'): string[] {
  const y = b.top + i * 20;
  const sign =
    mark === 'dot'
      ? `<circle cx="${b.w - b.right + 21}" cy="${y + 6}" r="6" fill="${color}"/>`
      : `<rect x="${b.w - b.right + 15}" y="${y}" width="12" height="12" fill="${color}"/>`;
  return [sign, `<text x="${b.w - b.right + 32}" y="${y + 11}">${esc(label)}</text>`];
}

/** `frame` for a chart with a plot area: the body, then the plot area's outline on top. */
function plotFrame(b: Box, title: string, body: string[]): string {
  const outline = `<rect x="${b.left}" y="${b.top}" width="${b.w - b.right - b.left}" height="${b.h - b.bottom - b.top}" fill="none" stroke="#333"/>`;
  return frame(b.w, b.h, title, [...body, outline]);
}

/** A label along the y axis, rotated. */
function yAxisLabel(b: Box, label: string): string {
  const mid = (b.top + b.h - b.bottom) / 2;
  return `<text x="15" y="${mid}" text-anchor="middle" transform="rotate(-90 15 ${mid})">${esc(label)}</text>`;
}

/** Horizontal grid lines with labels at the left, for the y values `at`. */
function yGrid(b: Box, y: (v: number) => number, at: number[], fmt: (v: number) => string): string[] {
  return at.flatMap((t) => [
    `<line x1="${b.left}" y1="${f(y(t))}" x2="${b.w - b.right}" y2="${f(y(t))}" stroke="#ddd"/>`,
    `<text x="${b.left - 5}" y="${f(y(t) + 4)}" text-anchor="end">${esc(fmt(t))}</text>`,
  ]);
}

function scale(a: Axis, from: number, to: number): (v: number) => number {
  if (a.log) {
    const lo = Math.log10(a.min);
    const hi = Math.log10(a.max);
    return (v) => from + ((Math.log10(Math.max(v, a.min)) - lo) / (hi - lo || 1)) * (to - from);
  }
  return (v) => from + ((v - a.min) / (a.max - a.min || 1)) * (to - from);
}

function ticks(a: Axis): number[] {
  if (a.log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(a.min)); e <= Math.ceil(Math.log10(a.max)); e++) {
      for (const m of [1, 3]) {
        const v = Number((m * 10 ** e).toPrecision(3));
        if (v >= a.min * 0.999 && v <= a.max * 1.001) out.push(v);
      }
    }
    return out;
  }
  const span = a.max - a.min || 1;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= 8) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(a.min / nice) * nice; v <= a.max + 1e-9; v += nice) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

function logAxis(values: number[]): Axis {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  const lo = pos.length ? Math.min(...pos) : 0.1;
  const hi = pos.length ? Math.max(...pos) : 1;
  return { min: 10 ** Math.floor(Math.log10(lo)), max: 10 ** Math.ceil(Math.log10(hi)), log: true };
}

function frame(w: number, h: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function xAxis(a: Axis, x: (v: number) => number, top: number, bottom: number, label: string, fmt: (v: number) => string): string[] {
  const out: string[] = [];
  for (const t of ticks(a)) {
    out.push(`<line x1="${f(x(t))}" y1="${top}" x2="${f(x(t))}" y2="${bottom}" stroke="#ddd"/>`);
    out.push(`<text x="${f(x(t))}" y="${bottom + 15}" text-anchor="middle">${esc(fmt(t))}</text>`);
  }
  out.push(`<text x="${f((x(a.min) + x(a.max)) / 2)}" y="${bottom + 32}" text-anchor="middle">${esc(label)}</text>`);
  return out;
}

const fmtMs = (v: number): string => (v >= 1 ? String(v) : v.toString());

export interface CdfSeries {
  label: string;
  values: number[];
}

/** Cumulative distribution of each series on a log x axis. */
export function cdfChart(title: string, xLabel: string, series: CdfSeries[]): string {
  const b: Box = { w: 820, h: 420, left: 60, right: 200, top: 35, bottom: 60 };
  const { w, h, bottom: B } = b;
  const a = logAxis(series.flatMap((s) => s.values));
  const x = scale(a, b.left, w - b.right);
  const y = (p: number): number => h - B - p * (h - B - b.top);
  const body = xAxis(a, x, b.top, h - B, xLabel, fmtMs);
  body.push(...yGrid(b, y, [0, 0.25, 0.5, 0.75, 1], (p) => `${p * 100}%`));
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const v = [...s.values].sort((p, q) => p - q);
    if (v.length) {
      const pts: string[] = [`${f(x(v[0]))},${f(y(0))}`];
      v.forEach((val, k) => {
        pts.push(`${f(x(val))},${f(y(k / v.length))}`, `${f(x(val))},${f(y((k + 1) / v.length))}`);
      });
      body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    }
    body.push(...legendEntry(b, i, color, `${s.label}${v.length ? '' : ' (no data)'}`));
  });
  return plotFrame(b, title, body);
}

export interface RangeRow {
  label: string;
  min: number;
  median: number;
  p99: number;
  max: number;
  /** Rows with the same group share a colour. */
  group: number;
}

/** One row per series: a thin line min..max, a thick bar median..p99, a dot at the median (log x). */
export function rangeChart(title: string, xLabel: string, rows: RangeRow[]): string {
  const rowH = 22;
  const [w, L, R, T, B] = [860, 230, 30, 45, 50];
  const h = T + rows.length * rowH + B;
  const vals = rows.flatMap((r) => [r.min, r.max]).filter((v) => Number.isFinite(v));
  const a = logAxis(vals);
  const x = scale(a, L, w - R);
  const body = xAxis(a, x, T - 5, h - B, xLabel, fmtMs);
  body.push(`<text x="${L}" y="${T - 12}" font-size="11" fill="#555">thin line: min to max; bar: median to p99; dot: median</text>`);
  rows.forEach((r, i) => {
    const cy = T + i * rowH + rowH / 2;
    const color = PALETTE[r.group % PALETTE.length];
    body.push(`<text x="${L - 8}" y="${cy + 4}" text-anchor="end">${esc(r.label)}</text>`);
    if (!Number.isFinite(r.median)) {
      body.push(`<text x="${L + 5}" y="${cy + 4}" fill="#999">no data</text>`);
      return;
    }
    body.push(`<line x1="${f(x(r.min))}" y1="${cy}" x2="${f(x(r.max))}" y2="${cy}" stroke="${color}" stroke-width="1.5"/>`);
    body.push(`<rect x="${f(x(r.median))}" y="${cy - 5}" width="${f(Math.max(1, x(r.p99) - x(r.median)))}" height="10" fill="${color}" opacity="0.6"/>`);
    body.push(`<circle cx="${f(x(r.median))}" cy="${cy}" r="4" fill="${color}"/>`);
  });
  return frame(w, h, title, body);
}

export interface LineSeries {
  label: string;
  points: Array<[number, number]>;
  /** 'line' joins points; 'step' holds each value until the next point; 'bar' draws columns. */
  kind?: 'line' | 'step' | 'bar';
}

/** Line, step or bar series over a linear x axis, with a linear y axis from 0. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: LineSeries[], colorOffset = 0): string {
  const b: Box = { w: 860, h: 360, left: 70, right: 220, top: 35, bottom: 55 };
  const { w, h, left: L, right: R, top: T, bottom: B } = b;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const ax: Axis = { min: xs.length ? Math.min(...xs) : 0, max: xs.length ? Math.max(...xs) : 1, log: false };
  const ay: Axis = { min: 0, max: ys.length ? Math.max(...ys) * 1.05 || 1 : 1, log: false };
  const x = scale(ax, L, w - R);
  const y = scale(ay, h - B, T);
  const body = xAxis(ax, x, T, h - B, xLabel, (v) => String(v));
  body.push(...yGrid(b, y, ticks(ay), String), yAxisLabel(b, yLabel));
  series.forEach((s, i) => {
    const color = PALETTE[(i + colorOffset) % PALETTE.length];
    const kind = s.kind ?? 'line';
    if (kind === 'bar') {
      const bw = Math.max(1, ((w - R - L) / Math.max(1, s.points.length)) * 0.8);
      for (const [px, py] of s.points)
        body.push(`<rect x="${f(x(px) - bw / 2)}" y="${f(y(py))}" width="${f(bw)}" height="${f(y(0) - y(py))}" fill="${color}" opacity="0.55"/>`);
    } else if (s.points.length) {
      const pts: string[] = [];
      s.points.forEach(([px, py], k) => {
        if (kind === 'step' && k > 0) pts.push(`${f(x(px))},${f(y(s.points[k - 1][1]))}`);
        pts.push(`${f(x(px))},${f(y(py))}`);
      });
      body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    }
    body.push(...legendEntry(b, i, color, s.label));
  });
  return plotFrame(b, title, body);
}

export interface ScatterPoint {
  label: string;
  x: number;
  y: number;
  /** Tooltip text (the point's <title>). */
  note?: string;
}

/** One labelled dot per point over linear x and y axes from 0, with a legend of the labels. */
export function scatterChart(title: string, xLabel: string, yLabel: string, points: ScatterPoint[]): string {
  const b: Box = { w: 760, h: 480, left: 80, right: 200, top: 45, bottom: 60 };
  const { w, h } = b;
  const ax: Axis = { min: 0, max: Math.max(1e-9, ...points.map((p) => p.x)) * 1.1, log: false };
  const ay: Axis = { min: 0, max: Math.max(1e-9, ...points.map((p) => p.y)) * 1.1, log: false };
  const x = scale(ax, b.left, w - b.right);
  const y = scale(ay, h - b.bottom, b.top);
  const body = xAxis(ax, x, b.top, h - b.bottom, xLabel, (v) => String(+v.toPrecision(6)));
  body.push(...yGrid(b, y, ticks(ay), (v) => String(+v.toPrecision(6))), yAxisLabel(b, yLabel));
  points.forEach((p, i) => {
    const color = PALETTE[i % PALETTE.length];
    const tip = p.note === undefined ? '' : `<title>${esc(p.note)}</title>`;
    body.push(`<circle cx="${f(x(p.x))}" cy="${f(y(p.y))}" r="6" fill="${color}">${tip}</circle>`);
    body.push(`<text x="${f(x(p.x) + 9)}" y="${f(y(p.y) - 8)}" font-size="11">${esc(p.label)}</text>`);
    body.push(...legendEntry(b, i, color, p.label, 'dot'));
  });
  return plotFrame(b, title, body);
}
