/**
 * Suite 1: start latency end to end, Hearth (warm, generic, cold) against a fresh Hearth sandbox,
 * bubblewrap and crun per invocation, for hello and bigdep handlers in Node and Python. Every
 * round takes one sample of every method, in a rotating order, so drift affects all alike.
 *
 * Hearth's cold series runs on a second daemon with no generic pool. Its generic-pool sizer raises
 * the pool after non-warm arrivals (first pass 5 s after start), which would turn later cold
 * starts into generic ones, so that daemon is restarted (untimed) whenever it is older than
 * `coldEpochMs`. Each sample's reported start kind is checked; mismatches are excluded and counted.
 *
 * After each runtime's hello rounds: starts after the host sat idle, with their floor
 * (start-idle.ts). After all rounds: the daemon's event-loop block while an instance is made, on
 * daemons of its own (loop-block.ts).
 */
import { join } from 'node:path';
import { Launcher, bwrapArgv, CrunBundles, FreshSandbox } from './alternatives.js';
import type { Cleanup } from './cleanup.js';
import { DaemonProcess, type Runtime } from './daemon-process.js';
import type { Fixtures, HandlerDir } from './fixtures.js';
import { IdleFloor } from './idle-floor.js';
import { runLoopBlock, type LoopBlockSeries } from './loop-block.js';
import { IDLE_METHODS, runIdleRounds } from './start-idle.js';
import { summarize, type Summary } from './stats.js';

export const METHODS = ['hearth-warm', 'hearth-generic', 'hearth-cold', 'fresh-sandbox', 'bwrap', 'crun'] as const;
export type Method = (typeof METHODS)[number] | (typeof IDLE_METHODS)[number];

export interface StartSeries {
  runtime: Runtime;
  handler: 'hello' | 'bigdep';
  method: Method;
  samples: number[];
  summary: Summary;
  /** Samples whose start kind was not the series' (not counted). */
  excluded: number;
  /** Why the series has no samples, if it failed. */
  error?: string;
  /** Mean time of each step (fresh-sandbox only). */
  steps?: Record<string, number>;
  /** Hearth generic/cold: the daemon's own specialisation time (`initMs` of the reply: instance, mount, import). */
  initMs?: Summary;
}

export interface StartLatencyResult {
  rounds: Record<'hello' | 'bigdep', number>;
  /** Rounds of the after-idle series (methods IDLE_METHODS, hello only); absent in older results. */
  idleRounds?: number;
  coldDaemonRestarts: number;
  series: StartSeries[];
  /** The daemon's event-loop block while an instance is made, per runtime and kind; absent in older results. */
  loopBlock?: LoopBlockSeries[];
}

export interface StartLatencyOptions {
  rounds: number;
  bigdepRounds: number;
  /** Rounds of the after-idle series (0: none). */
  idleRounds?: number;
  /** Instances made per runtime and kind with the loop probe on (0: none). */
  loopBlockSamples?: number;
  runtimes: Runtime[];
  coldEpochMs?: number;
  log: (s: string) => void;
}

const EVENT = { name: 'bench' };
/** How old (since its spawn began) the generic instance a `generic` sample takes is, at least. */
export const GENERIC_MIN_AGE_MS: Record<Runtime, number> = { node: 150, python: 0 };

export async function runStartLatency(work: string, fx: Fixtures, cleanup: Cleanup, o: StartLatencyOptions): Promise<StartLatencyResult> {
  const coldEpochMs = o.coldEpochMs ?? 4000;
  const warmD = await DaemonProcess.start(work, { generic: { node: 2, python: 4 }, policy: 'fixed' }, cleanup);
  let coldD: DaemonProcess | undefined;
  let restarts = 0;
  const fresh = new FreshSandbox(join(work, 'fresh-state'), cleanup);
  await fresh.start();
  const launcher = await Launcher.start(fx.runners, cleanup);
  const crun = new CrunBundles(join(work, 'crun'), fx.runners, cleanup);
  const eventJson = JSON.stringify(EVENT);
  const series: StartSeries[] = [];
  const loopBlock: LoopBlockSeries[] = [];
  let seq = 0;
  const floor = (o.idleRounds ?? 0) > 0 ? await IdleFloor.start(work, cleanup) : undefined;

  const coldDaemon = async (): Promise<DaemonProcess> => {
    if (coldD && Date.now() - coldD.startedAt < coldEpochMs) return coldD;
    if (coldD) {
      await coldD.stop();
      restarts++;
    }
    coldD = await DaemonProcess.start(work, { generic: { node: 0, python: 0 }, policy: 'fixed' }, cleanup);
    // Untimed warm-up of the new daemon: a few cold starts of each runtime (the first starts the
    // Python zygote) and warm invokes, so that its own code is past the interpreter's first runs.
    for (const rt of o.runtimes) {
      for (let i = 0; i < 3; i++) {
        const name = `cw-${rt}-${i}`;
        await coldD.deploy(name, fx.noop[rt].dir, rt, fx.noop[rt].handler);
        for (let k = 0; k < 5; k++) await coldD.invoke(name);
        await coldD.remove(name);
      }
    }
    return coldD;
  };

  try {
    for (const rt of o.runtimes) {
      for (const handler of ['hello', 'bigdep'] as const) {
        const h: HandlerDir = handler === 'hello' ? fx.hello[rt] : fx.bigdep[rt];
        const rounds = handler === 'hello' ? o.rounds : o.bigdepRounds;
        const mine = new Map<Method, StartSeries>();
        for (const method of METHODS) {
          const s: StartSeries = { runtime: rt, handler, method, samples: [], summary: summarize([]), excluded: 0 };
          mine.set(method, s);
          series.push(s);
        }
        const warmName = `w-${rt}-${handler}`;
        await warmD.deploy(warmName, h.dir, rt, h.handler, { concurrency: 1 });
        await warmD.invoke(warmName, EVENT);
        const stepSums: Record<string, number> = {};
        const inits = new Map<Method, number[]>();

        const sample = async (method: Method): Promise<void> => {
          const s = mine.get(method)!;
          if (s.error) return;
          try {
            const expect = (kind: string, got: string, ms: number, initMs?: number): void => {
              if (kind !== got) {
                s.excluded++;
                return;
              }
              s.samples.push(ms);
              if (initMs !== undefined) (inits.get(method) ?? inits.set(method, []).get(method)!).push(initMs);
            };
            switch (method) {
              case 'hearth-warm': {
                const r = await warmD.invoke(warmName, EVENT);
                expect('warm', r.reply.start, r.ms);
                break;
              }
              case 'hearth-generic': {
                const name = `g-${rt}-${handler}-${++seq}`;
                await warmD.deploy(name, h.dir, rt, h.handler);
                // A generic instance that has sat in the pool (not one a burst just refilled): Node's
                // warm-up runs 25 ms after ready, Python's before ready.
                await warmD.waitGenericRefilled(rt, 150, 20_000, GENERIC_MIN_AGE_MS[rt]);
                const r = await warmD.invoke(name, EVENT);
                expect('generic', r.reply.start, r.ms, r.reply.initMs);
                await warmD.removeAndWait(name); // its teardown is over before the next sample, as for the alternatives
                break;
              }
              case 'hearth-cold': {
                const d = await coldDaemon();
                const name = `c-${rt}-${handler}-${++seq}`;
                await d.deploy(name, h.dir, rt, h.handler);
                const r = await d.invoke(name, EVENT);
                expect('cold', r.reply.start, r.ms, r.reply.initMs);
                await d.removeAndWait(name);
                break;
              }
              case 'fresh-sandbox': {
                const r = await fresh.run(h, EVENT);
                s.samples.push(r.ms);
                for (const [k, v] of Object.entries(r.steps)) stepSums[k] = (stepSums[k] ?? 0) + v;
                break;
              }
              case 'bwrap': {
                const r = await launcher.run(bwrapArgv(h, fx.runners, eventJson));
                s.samples.push(r.ms);
                break;
              }
              case 'crun': {
                const r = await launcher.run(crun.argv(h, eventJson));
                s.samples.push(r.ms);
                break;
              }
            }
          } catch (err) {
            s.error = (err as Error).message.slice(0, 500);
            o.log(`start-latency: ${rt}/${handler}/${method} failed: ${s.error}`);
          }
        };

        for (let r = 0; r < rounds; r++) {
          cleanup.check();
          for (let k = 0; k < METHODS.length; k++) await sample(METHODS[(r + k) % METHODS.length]);
        }
        await warmD.remove(warmName);
        for (const s of mine.values()) {
          s.summary = summarize(s.samples);
          const init = inits.get(s.method);
          if (init) s.initMs = summarize(init);
          if (s.method === 'fresh-sandbox' && s.samples.length) {
            s.steps = Object.fromEntries(Object.entries(stepSums).map(([k, v]) => [k, v / s.samples.length]));
          }
        }
        o.log(`start-latency ${rt}/${handler}: ` + [...mine.values()].map((s) => `${s.method} ${s.error ? 'FAILED' : s.summary.median.toFixed(2)}`).join(', '));
        if (handler !== 'hello') continue;
        const ctx = {
          rt,
          h,
          event: EVENT,
          warm: warmD,
          genericMinAgeMs: GENERIC_MIN_AGE_MS[rt],
          cleanup,
          log: o.log,
          name: (p: string) => `${p}-${rt}-${++seq}`,
        };
        if (floor) series.push(...(await runIdleRounds(ctx, floor, o.idleRounds ?? 0)));
      }
    }
    if (o.loopBlockSamples) {
      const handlers = { python: fx.hello.python, node: fx.hello.node };
      const opts = { runtimes: o.runtimes, handlers, samples: o.loopBlockSamples, coldEpochMs, genericMinAgeMs: GENERIC_MIN_AGE_MS, log: o.log };
      loopBlock.push(...(await runLoopBlock(work, cleanup, opts)));
    }
  } finally {
    await floor?.stop();
    await launcher.stop();
    await fresh.stop();
    if (coldD) await coldD.stop();
    await warmD.stop();
  }
  return { rounds: { hello: o.rounds, bigdep: o.bigdepRounds }, idleRounds: o.idleRounds ?? 0, coldDaemonRestarts: restarts, series, loopBlock };
}
