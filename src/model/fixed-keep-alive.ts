/**
 * Fixed keep-alive: every idle instance lives for the same time after its last use (AWS Lambda
 * is reported at about 10 minutes, Azure Functions at 20). No pre-warming; one instance per
 * concurrent invocation.
 */
import {
  chooseOldestIdle,
  MINUTE_MS,
  type EvictionCandidate,
  type FunctionTraits,
  type IdleContext,
  type Policy,
  type PolicyExplanation,
  type PoolCounts,
} from './policy.js';

export class FixedKeepAlivePolicy implements Policy {
  readonly name: string;
  private readonly busy = new Map<string, number>();

  constructor(readonly keepAliveWindowMs: number, name?: string) {
    if (!(keepAliveWindowMs >= 0)) throw new RangeError('keep-alive must be ≥ 0');
    this.name = name ?? `fixed-${Math.round(keepAliveWindowMs / MINUTE_MS)}m`;
  }

  describe(_fn: string, _traits: FunctionTraits): void {}

  onArrival(fn: string, _now: number, pool: PoolCounts): void {
    this.busy.set(fn, pool.busy + 1);
  }

  onFinish(fn: string, _now: number, _durationMs: number, pool: PoolCounts): void {
    this.busy.set(fn, pool.busy);
  }

  keepAliveMs(_fn: string, _now: number, _ctx: IdleContext): number {
    return this.keepAliveWindowMs;
  }

  prewarmAt(_fn: string, _now: number): number | null {
    return null;
  }

  targetInstances(fn: string, _now: number): number {
    return this.busy.get(fn) ?? 0;
  }

  chooseVictims(candidates: readonly EvictionCandidate[], needMb: number, _now: number): string[] {
    return chooseOldestIdle(candidates, needMb);
  }

  forget(fn: string): void {
    this.busy.delete(fn);
  }

  explain(fn: string, now: number): PolicyExplanation {
    return {
      policy: this.name,
      fn,
      now,
      window: {},
      predictions: {},
      decisions: {
        keepAliveMs: this.keepAliveWindowMs,
        prewarmAt: null,
        targetInstances: this.targetInstances(fn, now),
      },
    };
  }
}
