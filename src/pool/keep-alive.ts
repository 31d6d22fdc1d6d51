/**
 * The reaper: ends idle instances. After each use (or a pre-warm) it asks the policy how long to
 * keep the instance idle and ends it when that keep-alive runs out; under a memory budget it ends
 * the idle instances the policy values least to make room for a new one. Each end that leaves a
 * function without instances lets the pre-warmer plan the next one (`planPrewarm`).
 *
 * Time is the policy clock's (injected: tests advance it). Concurrency: event-loop only.
 */
import type { Clock } from '../clock.js';
import type { Policy } from '../model/policy.js';
import type { Instance, InstanceTable } from './instances.js';

export interface ReaperOptions {
  policy: Policy;
  policyClock: Clock;
  table: InstanceTable;
  /** Memory for all instances, MB; unset: no budget. */
  memoryBudgetMb?: number;
  /** Ends an instance (lifecycle.ts). */
  end: (inst: Instance, why: string) => void;
  /** Asks the pre-warmer to plan the function's next instance. */
  planPrewarm: (fnName: string) => void;
}

export class KeepAliveReaper {
  constructor(private readonly opts: ReaperOptions) {}

  /**
   * Makes `inst` (done with its work) idle and keeps it as long as the policy says: ends it now
   * when the policy expects no arrival soon, else arms its keep-alive.
   */
  keep(inst: Instance, cause: 'finish' | 'prewarm'): void {
    const { policy, policyClock, table } = this.opts;
    const now = policyClock.now();
    const fnName = inst.fnName ?? '';
    inst.state = 'idle';
    inst.idleCause = cause;
    if (cause === 'finish') inst.lastUsedAt = now;
    const keep = Math.max(0, policy.keepAliveMs(fnName, now, { ...table.counts(fnName), cause }));
    if (keep === 0) {
      this.opts.end(inst, 'the model does not expect another arrival soon');
      this.opts.planPrewarm(fnName);
      return;
    }
    inst.keepUntil = now + keep;
    if (Number.isFinite(keep)) this.arm(inst);
    if (cause === 'finish') this.opts.planPrewarm(fnName);
  }

  /** Drops the keep-alive timer of an instance being ended. */
  disarm(inst: Instance): void {
    if (inst.keepAliveTimer) this.opts.policyClock.clearTimeout(inst.keepAliveTimer);
    inst.keepAliveTimer = undefined;
  }

  /** Makes room for `needMb` under the budget by ending idle instances the policy values least. */
  makeRoom(needMb: number): void {
    const { memoryBudgetMb: budget, table } = this.opts;
    if (budget === undefined) return;
    const over = table.memoryInUseMb() + needMb - budget;
    if (over <= 0) return;
    const idle = [...table.values()].filter((i) => i.state === 'idle' && i.fnName);
    const victims = this.opts.policy.chooseVictims(
      idle.map((i) => ({ id: i.id, fn: i.fnName!, memoryMb: i.memoryMb, idleSince: i.lastUsedAt })),
      over,
      this.opts.policyClock.now(),
    );
    for (const id of victims) {
      const inst = table.get(id);
      if (inst && inst.state === 'idle') this.opts.end(inst, 'evicted under the memory budget');
    }
  }

  /**
   * Ensures a timer fires no later than `inst.keepUntil`. One timer per instance, re-armed lazily:
   * a warm instance in use keeps its timer, and each release only moves `keepUntil` (a timer per
   * invocation was a measurable share of the warm path).
   */
  private arm(inst: Instance): void {
    const clock = this.opts.policyClock;
    if (inst.keepAliveTimer !== undefined) {
      if (inst.keepAliveAt <= inst.keepUntil) return; // it fires first and re-arms for the rest
      clock.clearTimeout(inst.keepAliveTimer);
    }
    inst.keepAliveAt = inst.keepUntil;
    inst.keepAliveTimer = clock.setTimeout(() => this.expire(inst), Math.max(0, inst.keepUntil - clock.now()));
    inst.keepAliveTimer.unref?.();
  }

  private expire(inst: Instance): void {
    inst.keepAliveTimer = undefined;
    if (inst.state !== 'idle') return; // in use: its next release arms the timer again
    if (this.opts.policyClock.now() < inst.keepUntil) {
      this.arm(inst);
      return;
    }
    this.opts.end(inst, 'keep-alive expired');
    this.opts.planPrewarm(inst.fnName ?? '');
  }
}
