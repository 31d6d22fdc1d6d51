/**
 * Suite 2: warm invocations per second of a no-op handler at several client concurrencies
 * (function concurrency set above the highest), and Hearth's added latency over a bare round trip
 * to a runtime shim on a socketpair (no sandbox, no daemon), measured two ways: in blocks of
 * consecutive calls per method (a warm instance serving a stream of requests; the methods' blocks
 * rotate so drift affects all), and alternating method on every call (each call follows the other
 * methods' work, so caches and CPUs have moved on: the longer path pays more for it). A second
 * daemon with reply polling on (replyPollUs 100; the default is off) runs the concurrency-1
 * throughput and takes part in the overhead rotation, so what polling buys and costs is measured
 * in the same run.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { BareShim } from './alternatives.js';
import type { Cleanup } from './cleanup.js';
import { DaemonProcess, type Runtime } from './daemon-process.js';
import type { Fixtures } from './fixtures.js';
import { msSince, sleep, summarize, type Summary } from './stats.js';

/** Starts a Node HTTP server on a Unix socket that answers every request with a small JSON body. */
async function startHttpEcho(socket: string, cleanup: Cleanup): Promise<{ client: ControlClient; stop: () => Promise<void> }> {
  const code = `require('http').createServer((q, s) => { q.resume(); q.on('end', () => { s.setHeader('Content-Type', 'application/json'); s.end('{"result":null,"start":"warm"}'); }); }).listen(${JSON.stringify(socket)}, () => process.stdout.write('up\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'], env: {} });
  const stop = cleanup.add(`http echo ${child.pid}`, () => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`http echo exited ${c}`)));
  });
  return { client: new ControlClient(socket), stop };
}

export interface ThroughputPoint {
  runtime: Runtime;
  concurrency: number;
  seconds: number;
  invocations: number;
  perSecond: number;
  latency: Summary;
  /** Daemon CPU (user+system) per invocation, ms. */
  daemonCpuMsPerInvocation: number;
  nonWarm: number;
  /** true: the comparison daemon with reply polling on (absent or false: the default daemon). */
  replyPoll?: boolean;
}

/** replyPollUs of the comparison daemon. */
export const POLLED_US = 100;

/** Consecutive calls per method in the `blocks` overhead measurement. */
export const OVERHEAD_BLOCK = 50;

export interface OverheadPoint {
  runtime: Runtime;
  /** `blocks`: OVERHEAD_BLOCK consecutive calls per method, rotating; `alternating`: the method changes every call. */
  order: 'blocks' | 'alternating';
  bare: Summary;
  /** A trivial Node HTTP server on a Unix socket answering `{}`: the control API's transport floor. */
  httpEcho: Summary;
  hearth: Summary;
  /** The same warm invoke on a daemon with reply polling on (absent in older results). */
  hearthPoll?: Summary;
  /** hearth median - bare median, ms. */
  addedMedianMs: number;
  addedP99Ms: number;
}

export interface ThroughputResult {
  throughput: ThroughputPoint[];
  overhead: OverheadPoint[];
}

export interface ThroughputOptions {
  seconds: number;
  concurrency: number[];
  overheadSamples: number;
  runtimes?: Runtime[];
  log: (s: string) => void;
}

export async function runThroughput(work: string, fx: Fixtures, cleanup: Cleanup, o: ThroughputOptions): Promise<ThroughputResult> {
  const runtimes = o.runtimes ?? ['python', 'node'];
  const maxC = Math.max(...o.concurrency);
  const d = await DaemonProcess.start(work, { generic: { node: 2, python: 4 }, policy: 'fixed' }, cleanup);
  let polled: DaemonProcess | undefined;
  const out: ThroughputResult = { throughput: [], overhead: [] };
  try {
    polled = await DaemonProcess.start(work, { generic: { node: 0, python: 0 }, policy: 'fixed', replyPollUs: POLLED_US }, cleanup);
    for (const rt of runtimes) {
      const h = fx.noop[rt];
      const name = `tp-${rt}`;
      await d.deploy(name, h.dir, rt, h.handler, { concurrency: Math.max(maxC, 1) });
      await polled.deploy(name, h.dir, rt, h.handler, { concurrency: 1 });
      // Warm-up: enough instances for the highest concurrency.
      await Promise.all(Array.from({ length: maxC }, () => d.invoke(name)));
      for (let i = 0; i < 50; i++) await d.invoke(name);

      const measure = async (daemon: DaemonProcess, c: number, replyPoll: boolean): Promise<void> => {
        // Untimed warm-up at this concurrency: a no-op finishes so fast that a single burst of c
        // requests creates fewer than c instances; the rest would be created while measuring.
        const warmEnd = Date.now() + Math.min(1000, (o.seconds * 1000) / 3);
        await Promise.all(
          Array.from({ length: c }, async () => {
            while (Date.now() < warmEnd) await daemon.invoke(name);
          }),
        );
        const lat: number[] = [];
        let nonWarm = 0;
        const cpu0 = daemon.cpuMs();
        const t0 = Date.now();
        const end = t0 + o.seconds * 1000;
        await Promise.all(
          Array.from({ length: c }, async () => {
            while (Date.now() < end && !cleanup.aborted) {
              const r = await daemon.invoke(name);
              lat.push(r.ms);
              if (r.reply.start !== 'warm') nonWarm++;
            }
          }),
        );
        const secs = (Date.now() - t0) / 1000;
        const cpu = daemon.cpuMs() - cpu0;
        const p: ThroughputPoint = {
          runtime: rt,
          concurrency: c,
          seconds: secs,
          invocations: lat.length,
          perSecond: lat.length / secs,
          latency: summarize(lat),
          daemonCpuMsPerInvocation: cpu / Math.max(1, lat.length),
          nonWarm,
          replyPoll,
        };
        out.throughput.push(p);
        o.log(
          `throughput ${rt} c=${c}${replyPoll ? ' (reply polling on)' : ''}: ${p.perSecond.toFixed(0)}/s, median ${p.latency.median.toFixed(2)} ms, daemon CPU ${p.daemonCpuMsPerInvocation.toFixed(3)} ms/invocation`,
        );
      };
      for (const c of o.concurrency) {
        await measure(d, c, false);
        if (c === 1) await measure(polled, 1, true);
      }
      // Overhead, after the throughput runs (tens of thousands of invocations: the daemon has
      // long reached its steady state): bare shim, HTTP echo and Hearth warm invoke (the default
      // daemon, and the second one with reply polling on).
      const bare = new BareShim(h, cleanup);
      await bare.start();
      const echo = await startHttpEcho(join(work, `echo-${rt}.sock`), cleanup);
      const echoOnce = async (): Promise<number> => {
        const t0 = process.hrtime.bigint();
        await echo.client.call('POST', `/v1/functions/${name}/invoke`, {});
        return msSince(t0);
      };
      const bareMs: number[] = [];
      const echoMs: number[] = [];
      const hearthMs: number[] = [];
      const polledMs: number[] = [];
      const polledDaemon = polled;
      // Untimed warm-up: the daemon's invoke path keeps getting faster over its first few thousand
      // calls (V8 tiering up its hot functions: about 0.41, 0.30, 0.25, 0.24 ms medians over four
      // successive batches of 1,000 here); steady state is what a busy daemon runs in.
      for (let i = 0; i < Math.min(3000, 6 * o.overheadSamples); i++) {
        await bare.invoke({});
        await echoOnce();
        await d.invoke(name);
        await polledDaemon.invoke(name);
      }
      const steps = [
        async () => void bareMs.push(await bare.invoke({})),
        async () => void echoMs.push(await echoOnce()),
        async () => void hearthMs.push((await d.invoke(name)).ms),
        async () => void polledMs.push((await polledDaemon.invoke(name)).ms),
      ];
      const record = (order: OverheadPoint['order']): void => {
        const b = summarize(bareMs.splice(0));
        const hs = summarize(hearthMs.splice(0));
        const e = summarize(echoMs.splice(0));
        const hp = summarize(polledMs.splice(0));
        out.overhead.push({
          runtime: rt,
          order,
          bare: b,
          httpEcho: e,
          hearth: hs,
          hearthPoll: hp,
          addedMedianMs: hs.median - b.median,
          addedP99Ms: hs.p99 - b.p99,
        });
        o.log(
          `overhead ${rt} (${order}): bare ${b.median.toFixed(3)} ms, http echo ${e.median.toFixed(3)} ms, hearth ${hs.median.toFixed(3)} ms, hearth with reply polling ${hp.median.toFixed(3)} ms`,
        );
      };
      // In blocks: OVERHEAD_BLOCK calls of one method, then the next, in a rotating order.
      const blocks = Math.max(1, Math.round(o.overheadSamples / OVERHEAD_BLOCK));
      for (let i = 0; i < blocks; i++) {
        cleanup.check();
        for (let k = 0; k < steps.length; k++) {
          const step = steps[(i + k) % steps.length];
          for (let j = 0; j < Math.min(OVERHEAD_BLOCK, o.overheadSamples); j++) await step();
        }
      }
      record('blocks');
      // Alternating: the method changes on every call, in a rotating order.
      for (let i = 0; i < o.overheadSamples; i++) {
        if (i % 100 === 0) cleanup.check();
        for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]();
      }
      record('alternating');
      bare.stop();
      echo.client.close();
      await echo.stop();
      await sleep(10);

      await d.remove(name);
      await polled.remove(name);
    }
  } finally {
    await polled?.stop();
    await d.stop();
  }
  return out;
}
