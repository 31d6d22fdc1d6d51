/**
 * The pre-warmer: after a function's instances end (or it is used), asks the policy when it will
 * next need one, and at that time specialises instances for it until it has as many idle as the
 * policy's prewarmCount (default 1; none when it has them by then, or when it runs). At most one
 * pre-warm timer per function; a later plan replaces it.
 *
 * The function's current definition comes from the injected `lookup` (no lookup: no pre-warming);
 * a function gone by then is skipped. Time is the policy clock's. Concurrency: event-loop only.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';
import type { Policy } from '../model/policy.js';
import type { PoolFunction, PoolTarget } from './types.js';

export interface PrewarmerOptions {
  policy: Policy;
  policyClock: Clock;
  log: Logger;
  lookup?: (name: string) => PoolTarget | undefined;
  /** Idle and busy instances of a function now. */
  counts: (fnName: string) => { idle: number; busy: number };
  /** Specialises an instance for `fn` and keeps it idle; false when that failed. */
  warm: (fn: PoolFunction, codeDir: string) => Promise<boolean>;
}

export class Prewarmer {
  private readonly timers = new Map<string, { at: number; timer: TimerHandle }>();
  /** Functions with a pre-warm in progress. */
  private readonly warming = new Set<string>();
  private stopped = false;

  constructor(private readonly opts: PrewarmerOptions) {}

  start(): void {
    this.stopped = false;
  }

  /** Cancels every armed pre-warm; none is armed until start(). */
  stop(): void {
    this.stopped = true;
    for (const p of this.timers.values()) this.opts.policyClock.clearTimeout(p.timer);
    this.timers.clear();
  }

  /** Asks the policy when fn will next need an instance, and arms (or replaces) its pre-warm timer. */
  plan(fnName: string): void {
    if (this.stopped || !this.opts.lookup) return;
    const clock = this.opts.policyClock;
    const now = clock.now();
    const at = this.opts.policy.prewarmAt(fnName, now);
    const prev = this.timers.get(fnName);
    if (at === null) {
      this.cancel(fnName);
      return;
    }
    if (prev) {
      if (prev.at === at) return;
      clock.clearTimeout(prev.timer);
    }
    const timer = clock.setTimeout(
      () => {
        this.timers.delete(fnName);
        void this.fire(fnName);
      },
      Math.max(0, at - now),
    );
    timer.unref?.();
    this.timers.set(fnName, { at, timer });
  }

  /** Drops fn's armed pre-warm, if any (the function was retired). */
  cancel(fnName: string): void {
    const p = this.timers.get(fnName);
    if (p) this.opts.policyClock.clearTimeout(p.timer);
    this.timers.delete(fnName);
  }

  /** Pre-warm times armed now, per function (for the API). */
  schedule(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [fn, p] of this.timers) out[fn] = new Date(p.at).toISOString();
    return out;
  }

  private async fire(fnName: string): Promise<void> {
    const target = this.opts.lookup?.(fnName);
    if (!target || this.stopped || this.warming.has(fnName)) return;
    if (this.opts.counts(fnName).busy > 0) return;
    const policy = this.opts.policy;
    // As many idle instances as the policy wants ready (a burst's), loaded one after another; an
    // arrival meanwhile (busy > 0) or a failure stops the rest.
    const want = policy.prewarmCount?.(fnName, this.opts.policyClock.now()) ?? 1;
    this.warming.add(fnName);
    try {
      for (let c = this.opts.counts(fnName); c.idle < want && c.busy === 0 && !this.stopped; c = this.opts.counts(fnName)) {
        const ok = await this.opts.warm(target.fn, target.codeDir);
        this.opts.log.debug({ fn: fnName, ok, want }, 'pre-warmed an instance ahead of a predicted arrival');
        // A failed start, or an instance the policy ended at once: loading more would repeat it.
        if (!ok || this.opts.counts(fnName).idle <= c.idle) break;
      }
    } catch (err) {
      this.opts.log.warn({ err, fn: fnName }, 'pre-warm failed');
    } finally {
      this.warming.delete(fnName);
    }
  }
}
