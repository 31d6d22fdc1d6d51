/**
 * Reader for the Azure Functions Trace 2019 format (Shahrad et al., ATC 2020) and the subsets
 * of it made by vHive "invitro": one invocations file (one function a row, one column per
 * minute), one durations file (per function, `Average` ms) and one memory file (per app,
 * `AverageAllocatedMb`). Any number of rows and of minute columns; minute columns may be
 * named `minute_N` (sample100) or plain `N` (the original files).
 *
 * Functions whose durations row is missing run for DEFAULT_DURATION_MS; apps whose memory row is
 * missing get DEFAULT_MEMORY_MB. Both defaults are the medians of the Azure 2019 data set as
 * reported in the paper (durations around a second, allocated memory around 150 MB), rounded.
 */
import { readFileSync } from 'node:fs';

export const DEFAULT_DURATION_MS = 1000;
export const DEFAULT_MEMORY_MB = 150;

/** One function of a trace, with everything the replay needs. */
export interface TraceFunction {
  /** Stable identifier: HashOwner/HashApp/HashFunction (only the parts present). */
  readonly id: string;
  /** The function's app identifier (HashOwner/HashApp); memory belongs to the app. */
  readonly app: string;
  readonly trigger: string | null;
  /** Invocations started in each minute; index 0 is minute 1. */
  readonly perMinute: Uint32Array;
  /** Execution time of every invocation (the row's `Average`), ms. */
  readonly durationMs: number;
  /** The app's AverageAllocatedMb. */
  readonly memoryMb: number;
  /** Cold-start overhead estimate used by cost-aware policies: Maximum − Average, ms (≥ 1). */
  readonly coldStartMs: number;
  /** Whether the durations / memory rows were missing and defaults were used. */
  readonly defaulted: { duration: boolean; memory: boolean };
}

export interface Trace {
  readonly functions: readonly TraceFunction[];
  /** Number of minute columns; the trace ends at minutes × 60 s. */
  readonly minutes: number;
  readonly invocations: number;
}

/** Splits one CSV line; the trace files hold no quoted fields, but quotes are handled anyway. */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

interface Table {
  header: string[];
  rows: string[][];
}

export function parseCsv(text: string): Table {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error('empty CSV file');
  const header = splitCsvLine(lines[0]).map((h) => h.trim());
  return { header, rows: lines.slice(1).map(splitCsvLine) };
}

/** Indexes of the named columns in the header, -1 for each one missing. */
function cols(table: Table, ...names: string[]): number[] {
  return names.map((n) => table.header.indexOf(n));
}

function keyOf(row: string[], idx: number[]): string {
  return idx.map((i) => row[i] ?? '').join('/');
}

/** Builds a trace from the text of the three files (memory and durations may be empty strings). */
export function parseTrace(invocationsCsv: string, durationsCsv: string, memoryCsv: string): Trace {
  const inv = parseCsv(invocationsCsv);
  const [owner, app, fn, trigger] = cols(inv, 'HashOwner', 'HashApp', 'HashFunction', 'Trigger') as [number, number, number, number];
  if (fn < 0) throw new Error('invocations file has no HashFunction column');
  const minuteCols: { index: number; minute: number }[] = [];
  inv.header.forEach((h, index) => {
    const m = /^(?:minute_)?(\d+)$/.exec(h);
    if (m) minuteCols.push({ index, minute: Number(m[1]) });
  });
  if (minuteCols.length === 0) throw new Error('invocations file has no minute columns');
  minuteCols.sort((a, b) => a.minute - b.minute);
  const minutes = minuteCols[minuteCols.length - 1].minute;

  // Durations, keyed by the most specific key available in both files.
  const durations = new Map<string, { avg: number; max: number }>();
  if (durationsCsv.trim() !== '') {
    const dur = parseCsv(durationsCsv);
    const [dFn, dApp, dOwner, avg, max] = cols(dur, 'HashFunction', 'HashApp', 'HashOwner', 'Average', 'Maximum') as [number, number, number, number, number];
    if (dFn < 0 || avg < 0) throw new Error('durations file needs HashFunction and Average columns');
    for (const r of dur.rows) {
      const a = Number(r[avg]);
      if (!Number.isFinite(a)) continue;
      const mx = max >= 0 ? Number(r[max]) : NaN;
      const v = { avg: Math.max(0, a), max: Number.isFinite(mx) ? mx : a };
      durations.set(r[dFn], v);
      if (dApp >= 0) durations.set(`${dOwner >= 0 ? r[dOwner] : ''}/${r[dApp]}/${r[dFn]}`, v);
    }
  }
  const memory = new Map<string, number>();
  if (memoryCsv.trim() !== '') {
    const mem = parseCsv(memoryCsv);
    const [mApp, mOwner, mb] = cols(mem, 'HashApp', 'HashOwner', 'AverageAllocatedMb') as [number, number, number];
    if (mApp < 0 || mb < 0) throw new Error('memory file needs HashApp and AverageAllocatedMb columns');
    for (const r of mem.rows) {
      const v = Number(r[mb]);
      if (!Number.isFinite(v) || v <= 0) continue;
      memory.set(`${mOwner >= 0 ? r[mOwner] : ''}/${r[mApp]}`, v);
      if (!memory.has(`*/${r[mApp]}`)) memory.set(`*/${r[mApp]}`, v);
    }
  }

  const functions: TraceFunction[] = [];
  let invocations = 0;
  const seen = new Map<string, number>();
  for (const r of inv.rows) {
    if (r.length < 2) continue;
    const perMinute = new Uint32Array(minutes);
    let total = 0;
    for (const { index, minute } of minuteCols) {
      const v = Number(r[index] ?? 0);
      const n = Number.isFinite(v) && v > 0 ? Math.round(v) : 0;
      perMinute[minute - 1] = n;
      total += n;
    }
    const appKey = `${owner >= 0 ? r[owner] : ''}/${app >= 0 ? r[app] : r[fn]}`;
    let id = keyOf(
      r,
      [owner, app, fn].filter((i) => i >= 0),
    );
    const dup = seen.get(id) ?? 0;
    seen.set(id, dup + 1);
    if (dup > 0) id = `${id}#${dup + 1}`;
    const d = durations.get(`${appKey}/${r[fn]}`) ?? durations.get(r[fn]);
    const m = memory.get(appKey) ?? memory.get(`*/${app >= 0 ? r[app] : r[fn]}`);
    const durationMs = d ? d.avg : DEFAULT_DURATION_MS;
    functions.push({
      id,
      app: appKey,
      trigger: trigger >= 0 ? (r[trigger] ?? null) : null,
      perMinute,
      durationMs,
      memoryMb: m ?? DEFAULT_MEMORY_MB,
      coldStartMs: Math.max(1, d ? d.max - d.avg : durationMs),
      defaulted: { duration: d === undefined, memory: m === undefined },
    });
    invocations += total;
  }
  return { functions, minutes, invocations };
}

export function readTrace(invocationsPath: string, durationsPath?: string, memoryPath?: string): Trace {
  return parseTrace(
    readFileSync(invocationsPath, 'utf8'),
    durationsPath ? readFileSync(durationsPath, 'utf8') : '',
    memoryPath ? readFileSync(memoryPath, 'utf8') : '',
  );
}

/** A trace restricted to minutes [from, to) (1-based from, exclusive to), renumbered from minute 1. */
export function sliceTrace(trace: Trace, fromMinute: number, toMinute: number): Trace {
  const lo = Math.max(1, fromMinute);
  const hi = Math.min(trace.minutes + 1, toMinute);
  let invocations = 0;
  const functions = trace.functions.map((f) => {
    const perMinute = f.perMinute.slice(lo - 1, hi - 1);
    for (const n of perMinute) invocations += n;
    return { ...f, perMinute };
  });
  return { functions, minutes: Math.max(0, hi - lo), invocations };
}

/** FNV-1a hash of a string (32 bits): a stable, seedless way to split functions into parts. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The functions of one half of a trace: 'tune' keeps those whose id hashes to an even number,
 * 'holdout' the odd ones. Parameters are chosen on the tune half; the held-out half is reported
 * separately, as functions the choice never saw.
 */
export function splitTrace(trace: Trace, part: 'tune' | 'holdout'): Trace {
  const want = part === 'tune' ? 0 : 1;
  const functions = trace.functions.filter((f) => fnv1a(f.id) % 2 === want);
  let invocations = 0;
  for (const f of functions) for (const n of f.perMinute) invocations += n;
  return { functions, minutes: trace.minutes, invocations };
}
