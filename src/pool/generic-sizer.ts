/** Re-sizes the generic pools every few seconds from recent non-warm arrivals (see model/generic-demand.ts). */
import type { Clock, TimerHandle } from '../clock.js';
import { genericTarget } from '../model/generic-demand.js';
import type { Pool } from './pool.js';
import { runtimes, type Runtime } from './types.js';

export class GenericPoolSizer {
  private timer: TimerHandle | undefined;
  private stopped = true;
  constructor(private readonly opts: { pool: Pool; clock: Clock; base: Record<Runtime, number>; periodMs?: number }) {}

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
    for (const rt of runtimes) {
      const times = this.opts.pool.coldArrivals[rt];
      const cut = now - 15 * 60_000;
      while (times.length && times[0]! < cut) times.shift();
      out[rt] = genericTarget(times, now, this.opts.base[rt]);
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
