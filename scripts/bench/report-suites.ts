/**
 * The pieces of BENCHMARKS.md (report.ts assembles the page): number and table formatting, and the
 * sections of the throughput, density, scale and replay suites.
 */
import { basename } from 'node:path';
import type { BenchResults } from './results.js';
import type { StartSeries } from './start-latency.js';
import { OVERHEAD_BLOCK, POLLED_US } from './throughput.js';
import type { Summary } from './stats.js';

export const n2 = (v: number | undefined): string =>
  v === undefined || !Number.isFinite(v) ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
export const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(2)} %` : '–');
export const row = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |`;
/** A table's header row and its alignment row: the first `textColumns` left, the rest right (numbers). */
export const header = (names: string[], textColumns = 1): string[] => [row(names), row(names.map((_, i) => (i < textColumns ? '---' : '---:')))];
export const sumCells = (s: Summary): string[] => [String(s.n), n2(s.median), n2(s.p99), n2(s.min), n2(s.max)];

export const METHOD_LABEL: Record<string, string> = {
  'hearth-warm': 'Hearth warm',
  'hearth-generic': 'Hearth generic (code mounted at trigger)',
  'hearth-cold': 'Hearth cold (new instance)',
  'fresh-sandbox': 'fresh Hearth sandbox per invocation',
  bwrap: 'bubblewrap, fresh process per invocation',
  crun: 'crun, fresh OCI container per invocation',
  'hearth-generic-idle': 'Hearth generic, after 0.5 s idle',
  'uds-idle': 'floor: Unix-socket round trip after 0.5 s idle',
  'uds-relay-idle': 'floor: the same through a relay process',
};

export function find(r: BenchResults, rt: string, handler: string, method: string): StartSeries | undefined {
  return r.suites.start?.series.find((s) => s.runtime === rt && s.handler === handler && s.method === method);
}

export function throughputSection(r: BenchResults): string[] {
  const t = r.suites.throughput;
  if (!t) return ['Not run.'];
  const out = ["No-op handler, one function with concurrency above the client's; latency in ms per invocation.", ''];
  out.push(...header(['runtime', 'client concurrency', 'invocations/s', 'median', 'p99', 'max', 'daemon CPU ms / invocation', 'non-warm']));
  for (const p of t.throughput) {
    const c = p.replyPoll === true ? `${p.concurrency}, reply polling on` : String(p.concurrency);
    out.push(
      row([p.runtime, c, p.perSecond.toFixed(0), n2(p.latency.median), n2(p.latency.p99), n2(p.latency.max), n2(p.daemonCpuMsPerInvocation), p.nonWarm]),
    );
  }
  if (t.throughput.some((p) => p.replyPoll === true)) {
    out.push(
      '',
      `"reply polling on": a second daemon with \`replyPollUs: ${POLLED_US}\` (the default is 0, off), which busy-polls for up to ${POLLED_US} µs for a quick handler's answer when it is the only one awaited, instead of sleeping until it arrives (src/runtimes/reply-poller.ts). The difference in daemon CPU per invocation is what the polling costs.`,
    );
  }
  out.push(
    '',
    'Added latency: a warm invoke through the daemon against a bare round trip to the same shim on a socketpair (no sandbox, no daemon), and against a trivial Node HTTP server ' +
      'on a Unix socket answering a fixed body through the same client (the transport floor of any HTTP control API on this machine); ms. ' +
      `"blocks": ${OVERHEAD_BLOCK} consecutive calls of one method, then the next, the order rotating (a warm instance serving a stream of requests; drift affects all of them). ` +
      '"alternating": the method changes on every call, so each call follows the other methods\' work on the CPUs and in their caches; the daemon\'s path crosses one more process than the bare one and pays more for it.',
    '',
  );
  out.push(
    ...header(
      [
        'runtime',
        'order',
        'n',
        'bare shim median',
        'bare p99',
        'HTTP echo median',
        'HTTP echo p99',
        'Hearth warm median',
        'Hearth warm p99',
        'added over bare (median)',
        'added over HTTP echo + bare (median)',
        'Hearth, reply polling on: median',
        'p99',
        'added over bare (median)',
      ],
      2,
    ),
  );
  for (const o of t.overhead) {
    const np = o.hearthPoll;
    out.push(
      row([
        o.runtime,
        o.order ?? 'alternating',
        o.bare.n,
        n2(o.bare.median),
        n2(o.bare.p99),
        n2(o.httpEcho.median),
        n2(o.httpEcho.p99),
        n2(o.hearth.median),
        n2(o.hearth.p99),
        n2(o.addedMedianMs),
        n2(o.hearth.median - o.httpEcho.median - o.bare.median),
        np ? n2(np.median) : '–',
        np ? n2(np.p99) : '–',
        np ? n2(np.median - o.bare.median) : '–',
      ]),
    );
  }
  out.push('');
  return out;
}

export function densitySection(r: BenchResults): string[] {
  const d = r.suites.density;
  if (!d) return ['Not run.'];
  const out = ['PSS summed over the processes of each instance\'s cgroup (from /proc/PID/smaps_rollup), MB; "fit in 4 GB" = 4096 ÷ median PSS.', ''];
  out.push(...header(['runtime', 'state', 'instances', 'PSS median', 'PSS max', 'RSS median', 'private median', 'fit in 4 GB'], 2));
  for (const p of d.points)
    out.push(row([p.runtime, p.state, p.instances, n2(p.pssMb.median), n2(p.pssMb.max), n2(p.rssMb.median), n2(p.privateMb.median), p.fitIn4GB]));
  if (d.zygotePssMb !== null) out.push('', `The Python zygote itself (one per daemon, shared by every Python instance): ${n2(d.zygotePssMb)} MB PSS.`);
  out.push('');
  return out;
}

export function scaleSection(r: BenchResults): string[] {
  const s = r.suites.scale;
  if (!s) return ['Not run.'];
  const out = [
    `Python hello functions; live instances include the generic pool. Deploys: ${s.deploysPerSecond.toFixed(0)}/s. Idle CPU is the daemon's CPU time over an idle window (% of one core), CPU per warm invoke is measured over a run of back-to-back invokes; latencies in ms.`,
    '',
  ];
  out.push(
    ...header([
      'axis',
      'functions',
      'live instances',
      'daemon idle CPU',
      'warm median',
      'warm p99',
      'generic median',
      'generic p99',
      'daemon CPU ms / warm invoke',
      'daemon RSS MB',
    ]),
  );
  for (const p of s.points)
    out.push(
      row([
        p.axis,
        p.functions,
        p.liveInstances,
        `${p.idleCpuPercent.toFixed(2)} %`,
        n2(p.warm.median),
        n2(p.warm.p99),
        n2(p.generic.median),
        n2(p.generic.p99),
        n2(p.daemonCpuMsPerWarmInvocation),
        n2(p.daemonRssMb),
      ]),
    );
  out.push('');
  return out;
}

export function replaySection(r: BenchResults, svgRel: (f: string) => string): string[] {
  const x = r.suites.replay;
  if (!x) return ['Not run.'];
  const t = x.trace;
  const out = [
    `Slice: minutes ${t.fromMinute}–${t.fromMinute + t.minutes - 1} of \`${t.files.map((f) => basename(f)).join('`, `')}\`, the first ${t.functions} functions with arrivals in it: ` +
      `${t.invocations} invocations, replayed at ${t.speedup}× (${t.wallSeconds.toFixed(0)} s). Live keep-alive ${(x.keepAliveMs / 60_000).toFixed(0)} min ÷ ${t.speedup}.`,
    '',
  ];
  out.push(
    ...header([
      '',
      'invocations',
      'cold starts (= function instances created)',
      'cold-start ratio',
      'peak memory of function instances, MB',
      'wasted memory GB·s',
    ]),
  );
  const cold = x.live.invocations - x.live.failed - (x.live.starts['warm'] ?? 0);
  out.push(
    row([
      `**live**, fixed ${(x.keepAliveMs / 60_000).toFixed(0)} min (÷ ${t.speedup})`,
      x.live.invocations,
      `${cold} (${Object.entries(x.live.starts)
        .filter(([k]) => k !== 'warm')
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')})`,
      pct(x.live.coldStartRatio),
      n2(x.live.peakSpecialisedMb),
      '–',
    ]),
  );
  for (const s of x.simulated) {
    const pre = s.instancesCreated - s.coldStarts;
    out.push(
      row([
        `simulator, ${s.policy}`,
        s.invocations,
        `${s.coldStarts}${pre > 0 ? ` (+${pre} pre-warmed)` : ''}`,
        pct(s.coldStartRatio),
        n2(s.peakMemoryMB),
        n2(s.wastedMemoryGBs),
      ]),
    );
  }
  out.push('');
  out.push(
    `Memory of function instances is each function's configured memory (its app's average allocation in the trace, 64–4096 MB), as the simulator counts it. ` +
      `Live: ${x.live.failed} failed; peak ${x.live.peakSpecialised} function instances, ${x.live.peakInstances} including the generic pool (${n2(x.live.peakReservedMb)} MB reserved in all); ` +
      `peak PSS actually used by all instances ${n2(x.live.peakPssMb)} MB (the handlers only sleep). ` +
      `Overhead (client round trip − handler time), ms: all ${n2(x.live.overhead.all.median)} median / ${n2(x.live.overhead.all.p99)} p99; ` +
      `warm ${n2(x.live.overhead.warm.median)} / ${n2(x.live.overhead.warm.p99)}; generic or cold ${n2(x.live.overhead.nonWarm.median)} / ${n2(x.live.overhead.nonWarm.p99)}. ` +
      `Arrivals fired late by ${n2(x.live.lateness.median)} ms median, ${n2(x.live.lateness.max)} ms max.`,
    '',
  );
  if (x.errors.length)
    out.push(
      `Errors (first ${x.errors.length}): ${x.errors
        .slice(0, 5)
        .map((e) => '`' + e.replace(/`/g, "'").slice(0, 160) + '`')
        .join('; ')}`,
      '',
    );
  out.push(`![replay](${svgRel('bench-replay.svg')})`, '', `![replay memory](${svgRel('bench-replay-memory.svg')})`, '');
  return out;
}
