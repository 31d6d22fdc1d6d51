/**
 * The headline of a run: the figures of issue 18's table under stable keys, so that two runs (or a
 * run and a target) can be compared by a script. Computed from the suites' results by one pure
 * function; bench.ts writes it as `headline` at the top of results.json.
 *
 * Shape: a latency is `{ median, p99, n }` in ms (n: samples behind it); a per-runtime figure is
 * `{ python, node }`; throughput is a plain number per second. A figure the run could not produce
 * is `null`, and `missing` says why, keyed by its path (e.g. `"generic_ms.node"`).
 */
import { summarize } from './stats.js';
import type { BenchResults, Suite } from './results.js';
import type { Method } from './start-latency.js';

export interface Latency {
  median: number;
  p99: number;
  n: number;
}

export interface PerRuntime<T> {
  python: T | null;
  node: T | null;
}

export interface Headline {
  /** Start latency, hello handler, end to end from the client. */
  generic_ms: PerRuntime<Latency>;
  bwrap_ms: PerRuntime<Latency>;
  crun_ms: PerRuntime<Latency>;
  /** A start that makes a new instance (no generic pool): a new Node process, a Python zygote fork. */
  new_instance_ms: PerRuntime<Latency>;
  /** A generic start after the host sat idle for 0.5 s. */
  generic_after_idle_ms: PerRuntime<Latency>;
  /** Its floor, measured in the same run: a Unix-socket round trip after 0.5 s idle, one hop and through a relay process. */
  idle_floor_ms: { one_hop: Latency | null; relay: Latency | null };
  /** A warm call interleaved with other work: the start suite's warm series (each call follows the other methods' starts). */
  warm_interleaved_ms: PerRuntime<Latency>;
  /** Warm invoke minus a bare round trip to the same shim, blocks order: median of the difference, p99 difference. */
  warm_overhead_ms: PerRuntime<Latency>;
  /** Warm no-op invocations per second at client concurrency 8 (default daemon). */
  throughput_per_s: PerRuntime<number>;
  /** Trace replay, warm invocations: client round trip minus handler time (Python functions only). */
  replay_warm_overhead_ms: Latency | null;
  /** p99 over every instance made (both runtimes, cold and refill) of the daemon's longest event-loop callback, ms. */
  loop_block_p99_ms: number | null;
  /** The same per runtime, with its median. */
  loop_block_ms: PerRuntime<Latency>;
  /** Why a figure is null, by its path. */
  missing: Record<string, string>;
}

const RUNTIMES = ['python', 'node'] as const;
/** Client concurrency of `throughput_per_s`. */
export const HEADLINE_CONCURRENCY = 8;

const latency = (samples: readonly number[]): Latency => {
  const s = summarize(samples);
  return { median: s.median, p99: s.p99, n: s.n };
};

export function computeHeadline(r: BenchResults): Headline {
  const missing: Record<string, string> = {};
  /** Why a suite's figures are absent, or undefined when it ran. */
  const absent = (suite: Suite): string | undefined => {
    if (r.suites[suite]) return undefined;
    const err = r.errors[suite];
    return err ? `suite ${suite} failed: ${err.split('\n')[0].slice(0, 200)}` : `suite ${suite} did not run`;
  };
  const perRuntime = <T>(key: string, get: (rt: (typeof RUNTIMES)[number]) => T | string): PerRuntime<T> => {
    const out: PerRuntime<T> = { python: null, node: null };
    for (const rt of RUNTIMES) {
      const v = get(rt);
      if (typeof v === 'string') missing[`${key}.${rt}`] = v;
      else out[rt] = v;
    }
    return out;
  };
  const start = (method: Method) => (rt: string) => {
    const why = absent('start');
    if (why) return why;
    const s = r.suites.start!.series.find((x) => x.runtime === rt && x.handler === 'hello' && x.method === method);
    if (!s) return `no ${method} series in this run`;
    if (s.samples.length === 0) return s.error ? `${method} failed: ${s.error.split('\n')[0].slice(0, 200)}` : `${method}: no samples`;
    return latency(s.samples);
  };
  const floor = (method: Method, key: string): Latency | null => {
    const why = absent('start');
    const series = r.suites.start?.series.filter((x) => x.method === method) ?? [];
    const samples = series.flatMap((x) => x.samples);
    if (why || samples.length === 0) {
      missing[`idle_floor_ms.${key}`] = why ?? (series.find((x) => x.error)?.error?.slice(0, 200) || `no ${method} samples in this run`);
      return null;
    }
    return latency(samples);
  };
  const blocks = (rt?: string): number[] | string => {
    const why = absent('start');
    if (why) return why;
    const series = (r.suites.start!.loopBlock ?? []).filter((x) => rt === undefined || x.runtime === rt);
    const samples = series.flatMap((x) => x.samples);
    if (samples.length > 0) return samples;
    return series.find((x) => x.error)?.error?.slice(0, 200) ?? 'the loop probe did not run in this run';
  };
  const allBlocks = blocks();
  if (typeof allBlocks === 'string') missing.loop_block_p99_ms = allBlocks;
  const replayWhy = absent('replay');
  const replay = r.suites.replay?.live.overhead.warm;
  if (replayWhy || !replay || replay.n === 0) missing.replay_warm_overhead_ms = replayWhy ?? 'no warm invocations in the replay';

  return {
    generic_ms: perRuntime('generic_ms', start('hearth-generic')),
    bwrap_ms: perRuntime('bwrap_ms', start('bwrap')),
    crun_ms: perRuntime('crun_ms', start('crun')),
    new_instance_ms: perRuntime('new_instance_ms', start('hearth-cold')),
    generic_after_idle_ms: perRuntime('generic_after_idle_ms', start('hearth-generic-idle')),
    idle_floor_ms: { one_hop: floor('uds-idle', 'one_hop'), relay: floor('uds-relay-idle', 'relay') },
    warm_interleaved_ms: perRuntime('warm_interleaved_ms', start('hearth-warm')),
    warm_overhead_ms: perRuntime('warm_overhead_ms', (rt) => {
      const o = r.suites.throughput?.overhead.find((x) => x.runtime === rt && x.order === 'blocks');
      if (!o) return absent('throughput') ?? 'no overhead measurement in this run';
      return { median: o.addedMedianMs, p99: o.addedP99Ms, n: o.hearth.n };
    }),
    throughput_per_s: perRuntime('throughput_per_s', (rt) => {
      const p = r.suites.throughput?.throughput.find((x) => x.runtime === rt && x.concurrency === HEADLINE_CONCURRENCY && x.replyPoll !== true);
      if (!p) return absent('throughput') ?? `no concurrency-${HEADLINE_CONCURRENCY} point in this run`;
      return p.perSecond;
    }),
    replay_warm_overhead_ms: missing.replay_warm_overhead_ms || !replay ? null : { median: replay.median, p99: replay.p99, n: replay.n },
    loop_block_p99_ms: typeof allBlocks === 'string' ? null : latency(allBlocks).p99,
    loop_block_ms: perRuntime('loop_block_ms', (rt) => {
      const b = blocks(rt);
      return typeof b === 'string' ? b : latency(b);
    }),
    missing,
  };
}

/** Issue 18's targets, for the report (medians unless said). */
const TARGETS: Record<string, string> = {
  generic_ms: '≤ 1.0 / ≤ 1.5 ms, ≥ 20× faster than bubblewrap',
  new_instance_ms: '≤ 4 / ≤ 24 ms, and faster than bubblewrap',
  generic_after_idle_ms: '≤ 1.5 ms',
  warm_interleaved_ms: '≤ 0.5 ms',
  warm_overhead_ms: '≤ 0.1 ms',
  throughput_per_s: '≥ 20,000 per s',
  replay_warm_overhead_ms: '≤ 1 ms',
  loop_block_ms: '≤ 0.2 ms (p99)',
};

const WHAT: Record<string, string> = {
  generic_ms: 'generic start, hello',
  bwrap_ms: 'bubblewrap + fresh runtime',
  crun_ms: 'crun + fresh runtime',
  new_instance_ms: 'new instance (no generic free; Python: zygote fork)',
  generic_after_idle_ms: 'generic start after 0.5 s idle',
  idle_floor_ms: 'its floor: Unix-socket round trip after 0.5 s idle, one hop / through a relay',
  warm_interleaved_ms: 'warm call, interleaved with other work',
  warm_overhead_ms: 'warm overhead over a bare round trip (blocks)',
  throughput_per_s: `warm throughput, no-op, concurrency ${HEADLINE_CONCURRENCY}`,
  replay_warm_overhead_ms: 'trace replay, warm overhead (Python)',
  loop_block_ms: 'daemon event-loop block while an instance is made',
};

/** `median (p99 x)` in ms, or a dash. */
function cell(v: Latency | number | null | undefined): string {
  const f = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return v.toFixed(0);
  return `${f(v.median)} (p99 ${f(v.p99)})`;
}

/** The headline as a markdown table, with the targets of issue 18 and why a figure is missing. */
export function headlineSection(h: Headline): string[] {
  const out = ['| key | figure | Python | Node | target (Python / Node) |', '| --- | --- | ---: | ---: | --- |'];
  const row = (key: string, py: string, node: string): void => void out.push(`| \`${key}\` | ${WHAT[key]} | ${py} | ${node} | ${TARGETS[key] ?? ''} |`);
  for (const key of ['generic_ms', 'bwrap_ms', 'crun_ms', 'new_instance_ms', 'generic_after_idle_ms'] as const)
    row(key, cell(h[key].python), cell(h[key].node));
  row('idle_floor_ms', `${cell(h.idle_floor_ms.one_hop)} / ${cell(h.idle_floor_ms.relay)}`, '(same processes)');
  for (const key of ['warm_interleaved_ms', 'warm_overhead_ms', 'throughput_per_s'] as const) row(key, cell(h[key].python), cell(h[key].node));
  row('replay_warm_overhead_ms', cell(h.replay_warm_overhead_ms), '');
  row('loop_block_ms', cell(h.loop_block_ms.python), cell(h.loop_block_ms.node));
  const ratio = (rt: 'python' | 'node'): string => {
    const g = h.generic_ms[rt];
    const b = h.bwrap_ms[rt];
    return g && b && g.median > 0 ? `${(b.median / g.median).toFixed(1)}×` : '–';
  };
  out.push(
    '',
    `Generic start against bubblewrap (ratio of medians): Python ${ratio('python')}, Node ${ratio('node')}. ` +
      `\`loop_block_p99_ms\` (both runtimes, cold and refill): ${h.loop_block_p99_ms === null ? '–' : `${h.loop_block_p99_ms.toFixed(3)} ms`}.`,
  );
  const missing = Object.entries(h.missing);
  if (missing.length) out.push('', 'Missing in this run:', '', ...missing.map(([k, why]) => `- \`${k}\`: ${why.replace(/\|/g, '/')}`));
  return out;
}
