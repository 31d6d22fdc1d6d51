/**
 * Plain SVG charts, written by hand (no dependencies): cumulative distributions and
 * min–median–p99–max ranges on a log or linear axis, and line/step charts over time.
 */

export const PALETTE = ['#d62728', '#ff7f0e', '#2ca02c', '#1f77b4', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (n: number): string => (Math.round(n * 10) / 10).toString();

interface Axis {
  min: number;
  max: number;
  log: boolean;
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
  const w = 820;
  const h = 420;
  const L = 60;
  const R = 200;
  const T = 35;
  const B = 60;
  const a = logAxis(series.flatMap((s) => s.values));
  const x = scale(a, L, w - R);
  const y = (p: number): number => h - B - p * (h - B - T);
  const body = xAxis(a, x, T, h - B, xLabel, fmtMs);
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    body.push(`<line x1="${L}" y1="${f(y(p))}" x2="${w - R}" y2="${f(y(p))}" stroke="#ddd"/>`);
    body.push(`<text x="${L - 5}" y="${f(y(p) + 4)}" text-anchor="end">${p * 100}%</text>`);
  }
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const v = [...s.values].sort((p, q) => p - q);
    if (v.length) {
      const pts: string[] = [`${f(x(v[0]!))},${f(y(0))}`];
      v.forEach((val, k) => {
        pts.push(`${f(x(val))},${f(y(k / v.length))}`, `${f(x(val))},${f(y((k + 1) / v.length))}`);
      });
      body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    }
    body.push(`<rect x="${w - R + 15}" y="${T + i * 20}" width="12" height="12" fill="${color}"/>`);
    body.push(`<text x="${w - R + 32}" y="${T + i * 20 + 11}">${esc(s.label)}${v.length ? '' : ' (no data)'}</text>`);
  });
  body.push(`<rect x="${L}" y="${T}" width="${w - R - L}" height="${h - B - T}" fill="none" stroke="#333"/>`);
  return frame(w, h, title, body);
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
  const w = 860;
  const rowH = 22;
  const L = 230;
  const R = 30;
  const T = 45;
  const B = 50;
  const h = T + rows.length * rowH + B;
  const vals = rows.flatMap((r) => [r.min, r.max]).filter((v) => Number.isFinite(v));
  const a = logAxis(vals);
  const x = scale(a, L, w - R);
  const body = xAxis(a, x, T - 5, h - B, xLabel, fmtMs);
  body.push(`<text x="${L}" y="${T - 12}" font-size="11" fill="#555">thin line: min to max; bar: median to p99; dot: median</text>`);
  rows.forEach((r, i) => {
    const cy = T + i * rowH + rowH / 2;
    const color = PALETTE[r.group % PALETTE.length]!;
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
  const w = 860;
  const h = 360;
  const L = 70;
  const R = 220;
  const T = 35;
  const B = 55;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const ax: Axis = { min: xs.length ? Math.min(...xs) : 0, max: xs.length ? Math.max(...xs) : 1, log: false };
  const ay: Axis = { min: 0, max: ys.length ? Math.max(...ys) * 1.05 || 1 : 1, log: false };
  const x = scale(ax, L, w - R);
  const y = scale(ay, h - B, T);
  const body = xAxis(ax, x, T, h - B, xLabel, (v) => String(v));
  for (const t of ticks(ay)) {
    body.push(`<line x1="${L}" y1="${f(y(t))}" x2="${w - R}" y2="${f(y(t))}" stroke="#ddd"/>`);
    body.push(`<text x="${L - 5}" y="${f(y(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  body.push(`<text x="15" y="${(T + h - B) / 2}" text-anchor="middle" transform="rotate(-90 15 ${(T + h - B) / 2})">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = PALETTE[(i + colorOffset) % PALETTE.length]!;
    const kind = s.kind ?? 'line';
    if (kind === 'bar') {
      const bw = Math.max(1, ((w - R - L) / Math.max(1, s.points.length)) * 0.8);
      for (const [px, py] of s.points) body.push(`<rect x="${f(x(px) - bw / 2)}" y="${f(y(py))}" width="${f(bw)}" height="${f(y(0) - y(py))}" fill="${color}" opacity="0.55"/>`);
    } else if (s.points.length) {
      const pts: string[] = [];
      s.points.forEach(([px, py], k) => {
        if (kind === 'step' && k > 0) pts.push(`${f(x(px))},${f(y(s.points[k - 1]![1]))}`);
        pts.push(`${f(x(px))},${f(y(py))}`);
      });
      body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    }
    body.push(`<rect x="${w - R + 15}" y="${T + i * 20}" width="12" height="12" fill="${color}"/>`);
    body.push(`<text x="${w - R + 32}" y="${T + i * 20 + 11}">${esc(s.label)}</text>`);
  });
  body.push(`<rect x="${L}" y="${T}" width="${w - R - L}" height="${h - B - T}" fill="none" stroke="#333"/>`);
  return frame(w, h, title, body);
}
