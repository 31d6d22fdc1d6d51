/**
 * What the policies share, so that each file holds only its own decisions: the traits a caller
 * describes, the busy count each function reported last, oldest-idle eviction, no pre-warming, and
 * the frame of `explain`. Pure, like every policy: no I/O, no timers, no clock.
 */
import { chooseOldestIdle, GreedyDual } from './eviction.js';
import type { EvictionCandidate, FunctionTraits, IdleContext, Policy, PolicyDecisions, PolicyExplanation, PoolCounts } from './policy.js';

/**
 * A Policy whose defaults a subclass overrides where it decides differently. Defaults: instances
 * are counted as they start and finish (`targetInstances` = the running count), nothing is
 * pre-warmed, and `explain` shows no window or predictions. Victims are the idle instances idle
 * longest, or with `eviction: 'greedy-dual'` those of lowest value in `gd` (which the subclass
 * touches on use). A subclass that keeps more per function extends `forget` (calling super).
 */
export abstract class BasePolicy implements Policy {
  abstract readonly name: string;
  /** The last traits `describe` gave per function. */
  protected readonly traits = new Map<string, FunctionTraits>();
  /** Value-based eviction state; used when the policy evicts by 'greedy-dual'. */
  protected readonly gd = new GreedyDual();
  private readonly running = new Map<string, number>();

  constructor(private readonly eviction: 'oldest-idle' | 'greedy-dual' = 'oldest-idle') {}

  abstract keepAliveMs(fn: string, now: number, ctx: IdleContext): number;

  describe(fn: string, traits: FunctionTraits): void {
    this.traits.set(fn, traits);
  }

  onArrival(fn: string, _now: number, pool: PoolCounts): void {
    this.running.set(fn, pool.busy + 1);
  }

  onFinish(fn: string, _now: number, _durationMs: number, pool: PoolCounts): void {
    this.running.set(fn, pool.busy);
  }

  prewarmAt(_fn: string, _now: number): number | null {
    return null;
  }

  /** One instance per pre-warm (the contract's default). */
  prewarmCount(_fn: string, _now: number): number {
    return 1;
  }

  targetInstances(fn: string, _now: number): number {
    return this.running.get(fn) ?? 0;
  }

  chooseVictims(candidates: readonly EvictionCandidate[], needMb: number, _now: number): string[] {
    return this.eviction === 'greedy-dual' ? this.gd.chooseVictims(candidates, needMb) : chooseOldestIdle(candidates, needMb);
  }

  forget(fn: string): void {
    this.traits.delete(fn);
    this.running.delete(fn);
    this.gd.forget(fn);
  }

  explain(fn: string, now: number): PolicyExplanation {
    return this.explanation(fn, now, this.targetInstances(fn, now), {}, {});
  }

  /**
   * The explanation frame: the decisions are this policy's own answers at `now` for an instance
   * that becomes idle after a finish while `busy` others run (a keep-alive of Infinity is null).
   */
  protected explanation(fn: string, now: number, busy: number, window: Record<string, unknown>, predictions: Record<string, unknown>): PolicyExplanation {
    return { policy: this.name, fn, now, window, predictions, decisions: this.decisionsWith(fn, now, busy) };
  }

  decisions(fn: string, now: number): PolicyDecisions {
    return this.decisionsWith(fn, now, this.busyNow(fn, now));
  }

  /** The busy count `explain` and `decisions` answer for (default: the running count). */
  protected busyNow(fn: string, now: number): number {
    return this.targetInstances(fn, now);
  }

  private decisionsWith(fn: string, now: number, busy: number): PolicyDecisions {
    const keepAliveMs = this.keepAliveMs(fn, now, { idle: 1, busy, cause: 'finish' });
    return {
      keepAliveMs: Number.isFinite(keepAliveMs) ? keepAliveMs : null,
      prewarmAt: this.prewarmAt(fn, now),
      targetInstances: this.targetInstances(fn, now),
    };
  }
}
