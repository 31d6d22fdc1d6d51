/**
 * Part of the start suite (start-latency.ts runs it after its rounds): the daemon's event-loop block
 * while an instance is made. With the daemon's loop probe (loop-probe.ts) on for the window, the
 * longest callback on the daemon's loop while
 * - `cold`: an invoke makes a new instance, on a daemon with no generic pool (a new Node process,
 *   a Python zygote fork), restarted whenever it is `coldEpochMs` old as in the cold series;
 * - `refill`: a generic start takes a pooled instance and the pool makes its replacement (the
 *   window lasts until the pool is full again).
 * These run on daemons of their own: enabling async hooks once deoptimizes promise code for the
 * rest of a process's life, which must not touch the daemons the other series are measured on.
 * Each daemon's first window (untimed) takes that hit. Round trips in a window are not used as
 * start latencies.
 */
import type { Cleanup } from './cleanup.js';
import { DaemonProcess, type Runtime } from './daemon-process.js';
import type { HandlerDir } from './fixtures.js';
import { summarize, type Summary } from './stats.js';

export interface LoopBlockSeries {
  runtime: Runtime;
  kind: 'cold' | 'refill';
  /** Per window (one instance made): the longest callback on the daemon's event loop, ms. */
  samples: number[];
  summary: Summary;
  /** Per window: the loop's busy time (all callbacks together), ms. */
  busyMs: Summary;
  /** Windows whose start kind was not the expected one (not counted). */
  excluded: number;
  error?: string;
}

export interface LoopBlockOptions {
  runtimes: Runtime[];
  handlers: Record<Runtime, HandlerDir>;
  samples: number;
  coldEpochMs: number;
  /** How old a generic instance must be before a generic start takes it (see start-latency.ts). */
  genericMinAgeMs: Record<Runtime, number>;
  log: (s: string) => void;
}

export async function runLoopBlock(work: string, cleanup: Cleanup, o: LoopBlockOptions): Promise<LoopBlockSeries[]> {
  const out: LoopBlockSeries[] = [];
  let seq = 0;
  let coldD: DaemonProcess | undefined;
  const pooled = await DaemonProcess.start(work, { generic: { node: 2, python: 4 }, policy: 'fixed', loopProbe: true }, cleanup);
  // Untimed: each daemon's first window, and a few starts of each runtime.
  const warmUp = async (d: DaemonProcess): Promise<void> => {
    const probe = await d.loopProbe();
    await probe.start();
    for (const rt of o.runtimes) {
      for (let i = 0; i < 3; i++) {
        const name = `lw-${rt}-${++seq}`;
        await d.deploy(name, o.handlers[rt].dir, rt, o.handlers[rt].handler);
        for (let k = 0; k < 5; k++) await d.invoke(name);
        await d.removeAndWait(name);
      }
    }
    await probe.stop();
  };
  const cold = async (): Promise<DaemonProcess> => {
    if (coldD && Date.now() - coldD.startedAt < o.coldEpochMs) return coldD;
    await coldD?.stop();
    coldD = await DaemonProcess.start(work, { generic: { node: 0, python: 0 }, policy: 'fixed', loopProbe: true }, cleanup);
    await warmUp(coldD);
    return coldD;
  };
  try {
    await warmUp(pooled);
    for (const rt of o.runtimes) {
      const h = o.handlers[rt];
      for (const kind of ['cold', 'refill'] as const) {
        const s: LoopBlockSeries = { runtime: rt, kind, samples: [], summary: summarize([]), busyMs: summarize([]), excluded: 0 };
        out.push(s);
        const busy: number[] = [];
        try {
          for (let i = 0; i < o.samples; i++) {
            cleanup.check();
            const d = kind === 'cold' ? await cold() : pooled;
            const name = `l${kind[0]}-${rt}-${++seq}`;
            await d.deploy(name, h.dir, rt, h.handler);
            if (kind === 'refill') await d.waitGenericRefilled(rt, 150, 20_000, o.genericMinAgeMs[rt]);
            const probe = await d.loopProbe();
            await probe.start();
            const r = await d.invoke(name);
            // The refill spawns after the reply: the window lasts until the pool is full again.
            if (kind === 'refill') await d.waitGenericRefilled(rt, 150, 20_000);
            const w = await probe.stop();
            if (r.reply.start === (kind === 'cold' ? 'cold' : 'generic')) {
              s.samples.push(w.maxSpanMs);
              busy.push(w.busyMs);
            } else s.excluded++;
            await d.removeAndWait(name);
          }
        } catch (err) {
          s.error = (err as Error).message.slice(0, 500);
          o.log(`start-latency: ${rt} loop block (${kind}) failed: ${s.error}`);
        }
        s.summary = summarize(s.samples);
        s.busyMs = summarize(busy);
      }
      o.log(
        `start-latency ${rt}: daemon loop block while an instance is made: ` +
          out
            .filter((s) => s.runtime === rt)
            .map((s) => `${s.kind} ${s.error ? 'FAILED' : `median ${s.summary.median.toFixed(3)} / p99 ${s.summary.p99.toFixed(3)} ms`}`)
            .join(', '),
      );
    }
  } finally {
    await coldD?.stop();
    await pooled.stop();
  }
  return out;
}
