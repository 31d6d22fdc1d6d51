/**
 * bench-observe's side-by-side part: warm throughput and the daemon's CPU per warm invocation with
 * metrics off and on, in the same run. Two daemons with one no-op function each; the same client
 * loop (sequential sync invokes) against each in rounds of a fixed number of invocations, which
 * daemon goes first alternating. The "on" daemon is scraped every `scrapeMs` during its rounds
 * (0: not at all); what a scrape costs is measured apart at the end and amortised over a 15 s
 * interval, because at the rate of a pinned client (hundreds to a few thousand invocations a
 * second) a scrape every second would weigh several times more than at any usual interval.
 *
 * To make a difference of 2 % visible on a shared 2-core machine:
 *  - both daemons, every process under them (the instances) and this process are pinned to the
 *    same CPU (taskset), so both see the same machine, whatever else runs on the other core;
 *  - the daemon's CPU per invocation (every thread's scheduler run time, /proc/PID/task/* /schedstat,
 *    ns) over thousands of invocations a round is the main measure: what metrics cost the
 *    daemon, less disturbed by other processes than a rate is;
 *  - each round pair gives an on/off ratio, and the median of the ratios gets a 95 % bootstrap
 *    confidence interval (percentile method, 10,000 resamples of the pairs, fixed seed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Cleanup } from './cleanup.js';
import { DaemonProcess, processCpuMs } from './daemon-process.js';
import { freePort } from './free-port.js';
import { bootstrapMedian, msSince, sleep, summarize, type MedianCi, type Summary } from './stats.js';
import { percentileSorted, sortedCopy } from '../../src/stats/percentile.js';

export interface ThroughputOptions {
  rounds: number;
  /** Invocations per daemon per round. */
  perRound: number;
  /** The CPU every process of the comparison runs on (a taskset CPU list); '' for no pinning. */
  cpu: string;
  /** Scrape the "on" daemon this often during its rounds; 0: never. */
  scrapeMs: number;
  /** A/A control: the "on" daemon has metrics off too, so the ratios show the method's own bias and spread. */
  control: boolean;
  get: (port: number, path: string) => Promise<unknown>;
}

/** `pid` and every process under it (children of any of its threads), recursively. */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const tids = ((): string[] => {
      try {
        return readdirSync(`/proc/${out[i]}/task`);
      } catch {
        return []; // exited
      }
    })();
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean)) out.push(Number(c));
      } catch {
        /* thread exited */
      }
    }
  }
  return out;
}

/** Pins every thread of `pid` to `cpu`; returns its CPU list before. */
function pin(pid: number, cpu: string): string {
  const before = spawnSync('taskset', ['-pc', String(pid)], { encoding: 'utf8' });
  const r = spawnSync('taskset', ['-a', '-pc', cpu, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -a -pc ${cpu} ${pid}: ${r.stderr || r.error?.message}`);
  return before.stdout.trim().split(': ').pop() ?? '';
}

export async function observeThroughput(work: string, noop: string, cleanup: Cleanup, o: ThroughputOptions) {
  const port = await freePort();
  const off = await DaemonProcess.start(work, { generic: { node: 1, python: 0 }, policy: 'fixed' }, cleanup);
  const on = await DaemonProcess.start(
    work,
    { generic: { node: 1, python: 0 }, policy: 'fixed', ...(o.control ? {} : { metricsListen: `127.0.0.1:${port}` }) },
    cleanup,
  );
  let unpin: string | undefined;
  try {
    for (const d of [off, on]) {
      await d.deploy('noop', noop, 'node', 'index.handler');
      for (let i = 0; i < 200; i++) await d.invoke('noop');
    }
    let pinned = 0;
    if (o.cpu !== '') {
      // After the warm-up, so the instance that serves every round exists and is pinned too.
      for (const d of [off, on])
        for (const pid of processTree(d.pid))
          if (existsSync(`/proc/${pid}`)) {
            pin(pid, o.cpu);
            pinned++;
          }
      unpin = pin(process.pid, o.cpu);
      for (const d of [off, on]) for (let i = 0; i < 200; i++) await d.invoke('noop');
    }
    const perSecond = { off: [] as number[], on: [] as number[] };
    const latency = { off: [] as number[], on: [] as number[] };
    /** Daemon CPU per invocation, µs (the scrapes of the "on" daemon included). */
    const cpuUs = { off: [] as number[], on: [] as number[] };
    let scrapes = 0;
    for (let r = 0; r < o.rounds; r++) {
      for (const which of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        cleanup.check();
        const d = which === 'on' ? on : off;
        let scraping = which === 'on' && o.scrapeMs > 0 && !o.control;
        const scraper = (async () => {
          while (scraping) {
            await o.get(port, '/metrics');
            scrapes++;
            await sleep(o.scrapeMs);
          }
        })();
        const cpu0 = processCpuMs(d.pid);
        const t0 = process.hrtime.bigint();
        for (let n = 0; n < o.perRound; n++) latency[which].push((await d.invoke('noop')).ms);
        perSecond[which].push(o.perRound / (msSince(t0) / 1000));
        cpuUs[which].push(((processCpuMs(d.pid) - cpu0) * 1000) / o.perRound);
        scraping = false;
        await scraper;
      }
    }
    // What one scrape of the "on" daemon costs it (idle, one function), to amortise over a real
    // scrape interval.
    const idle0 = processCpuMs(on.pid);
    if (!o.control) for (let i = 0; i < 20; i++) await o.get(port, '/metrics');
    const scrapeCpuMs = o.control ? 0 : (processCpuMs(on.pid) - idle0) / 20;
    const ratio = perSecond.on.map((v, i) => v / perSecond.off[i]);
    const cpuRatio = cpuUs.on.map((v, i) => v / cpuUs.off[i]);
    return {
      rounds: o.rounds,
      perRound: o.perRound,
      cpu: o.cpu,
      scrapeMs: o.scrapeMs,
      control: o.control,
      pinnedProcesses: pinned,
      scrapes,
      perSecond: { off: summarize(perSecond.off), on: summarize(perSecond.on) },
      latencyMs: { off: summarize(latency.off), on: summarize(latency.on) },
      daemonCpuUsPerInvocation: { off: summarize(cpuUs.off), on: summarize(cpuUs.on) },
      onOverOff: bootstrapMedian(ratio),
      cpuOnOverOff: bootstrapMedian(cpuRatio),
      /** Pairs in which "on" used less daemon CPU per invocation than "off". */
      cpuOnCheaper: cpuRatio.filter((x) => x < 1).length,
      cpuRatioQuartiles: quartiles(cpuRatio),
      throughputRatioQuartiles: quartiles(ratio),
      scrapeCpuMs,
    };
  } finally {
    if (unpin) pin(process.pid, unpin);
    await on.stop();
    await off.stop();
  }
}

export type ThroughputResult = Awaited<ReturnType<typeof observeThroughput>>;

function quartiles(xs: readonly number[]): [number, number] {
  const s = sortedCopy(xs);
  return [percentileSorted(s, 0.25), percentileSorted(s, 0.75)];
}

/** The report lines of a ThroughputResult (`f` formats a number). */
export function throughputLines(tp: ThroughputResult, line: (s: Summary, unit: string) => string, f: (x: number, d?: number) => string): string[] {
  const ci = (c: MedianCi): string => `median ${f(c.median, 4)}, ${Math.round(c.level * 100)} % CI ${f(c.low, 4)}-${f(c.high, 4)}`;
  const q = (x: [number, number]): string => `quartiles ${f(x[0], 4)}-${f(x[1], 4)}`;
  const pinned = tp.cpu === '' ? 'not pinned' : `pinned to CPU ${tp.cpu} (${tp.pinnedProcesses} daemon processes and this one)`;
  const c = tp.cpuOnOverOff;
  return [
    `side by side${tp.control ? ' (A/A control: "on" has metrics off too)' : ''}: ${tp.rounds} round pairs of ${tp.perRound} invocations per daemon, ${pinned}`,
    `warm invocations/s, metrics off: ${line(tp.perSecond.off, '/s')}; latency ${line(tp.latencyMs.off, 'ms')}`,
    `warm invocations/s, metrics on (${tp.scrapeMs > 0 ? `scraped every ${tp.scrapeMs} ms, ${tp.scrapes} scrapes` : 'not scraped'}): ${line(tp.perSecond.on, '/s')}; latency ${line(tp.latencyMs.on, 'ms')}`,
    `daemon CPU per invocation: off ${line(tp.daemonCpuUsPerInvocation.off, 'µs')}; on ${line(tp.daemonCpuUsPerInvocation.on, 'µs')}`,
    `on/off throughput ratio per round pair: ${ci(tp.onOverOff)}, ${q(tp.throughputRatioQuartiles)}`,
    `on/off daemon CPU per invocation per round pair: ${ci(c)}, ${q(tp.cpuRatioQuartiles)}; "on" cheaper in ${tp.cpuOnCheaper} of ${tp.rounds}`,
    `metrics' CPU cost (counting${tp.scrapeMs > 0 ? ' and scrapes' : ''}): ${f(100 * (c.median - 1))} % (95 % CI ${f(100 * (c.low - 1))} to ${f(100 * (c.high - 1))} %): ${
      c.high <= 1.02 ? 'the interval is within 2 %' : c.low > 1.02 ? 'the interval is above 2 %' : 'the interval includes 2 %'
    }`,
  ];
}
