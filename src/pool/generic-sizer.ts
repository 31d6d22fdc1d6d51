/**
 * Re-sizes the generic pools every few seconds: base + the larger of the burst of non-warm
 * arrivals seen lately and the need the model predicts from its expected cold-arrival rates (see
 * model/generic-demand.ts).
 */
import type { Clock, TimerHandle } from '../clock.js';
import { genericTarget, predictedGenericNeed } from '../model/generic-demand.js';
import { RUNTIMES, type Runtime } from '../runtimes/types.js';
import type { Pool } from './pool.js';

export interface GenericSizerOptions {
  pool: Pool;
  clock: Clock;
  base: Record<Runtime, number>;
  /** Predicted arrivals per hour that will find no instance of their function, per runtime. */
  predictedColdRatePerHour?: (runtime: Runtime, now: number) => number;
  periodMs?: number;
}

export class GenericPoolSizer {
  private timer: TimerHandle | undefined;
  private stopped = true;
  constructor(private readonly opts: GenericSizerOptions) {}

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
  }

  /** One sizing pass; returns the targets set. */
  resize(): Record<Runtime, number> {
    const now = this.opts.clock.now();
    const out = {} as Record<Runtime, number>;
    for (const rt of RUNTIMES) {
      const times = this.opts.pool.coldArrivals[rt];
      const cut = now - 15 * 60_000;
      while (times.length && times[0] < cut) times.shift();
      const seen = genericTarget(times, now, 0);
      const predicted = predictedGenericNeed(this.opts.predictedColdRatePerHour?.(rt, now) ?? 0);
      out[rt] = this.opts.base[rt] + Math.max(seen, predicted);
      this.opts.pool.setGenericTarget(rt, out[rt]);
    }
    return out;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.resize();
      this.arm();
    }, this.opts.periodMs ?? 5000);
    this.timer.unref?.();
  }
}
