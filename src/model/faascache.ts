/**
 * FaaSCache (Fuerst & Sharma, ASPLOS 2021) greedy-dual keep-alive, as a baseline: idle instances
 * are never ended by time, only when a new instance does not fit under the memory cap. Then the
 * idle instances with the lowest priority go first, where a function's priority, set at each of its
 * invocations, is
 *     priority = clock + frequency × cost / size
 * with frequency = invocations since the function last had no instance, cost = its cold-start
 * overhead (ms), size = its memory (MB), and clock = the priority of the last victim (so functions
 * not used for long age out). Instances of one function share its priority (as in the authors'
 * simulator); among them the one idle longest goes first.
 */
import type {
  EvictionCandidate,
  FunctionTraits,
  IdleContext,
  Policy,
  PolicyExplanation,
  PoolCounts,
} from './policy.js';
import { GreedyDual } from './eviction.js';

export class FaasCachePolicy implements Policy {
  readonly name = 'faascache';
  private readonly gd = new GreedyDual();
  private readonly traits = new Map<string, FunctionTraits>();
  private readonly freq = new Map<string, number>();
  private readonly busy = new Map<string, number>();

  describe(fn: string, traits: FunctionTraits): void {
    this.traits.set(fn, traits);
  }

  onArrival(fn: string, _now: number, pool: PoolCounts): void {
    const f = pool.idle + pool.busy === 0 ? 1 : (this.freq.get(fn) ?? 0) + 1;
    this.freq.set(fn, f);
    const t = this.traits.get(fn);
    this.gd.touch(fn, f, t?.coldStartMs ?? 1, t?.memoryMb ?? 1);
    this.busy.set(fn, pool.busy + 1);
  }

  onFinish(fn: string, _now: number, _durationMs: number, pool: PoolCounts): void {
    this.busy.set(fn, pool.busy);
  }

  keepAliveMs(_fn: string, _now: number, _ctx: IdleContext): number {
    return Infinity;
  }

  prewarmAt(_fn: string, _now: number): number | null {
    return null;
  }

  targetInstances(fn: string, _now: number): number {
    return this.busy.get(fn) ?? 0;
  }

  chooseVictims(candidates: readonly EvictionCandidate[], needMb: number, _now: number): string[] {
    return this.gd.chooseVictims(candidates, needMb);
  }

  forget(fn: string): void {
    this.gd.forget(fn);
    this.freq.delete(fn);
    this.busy.delete(fn);
    this.traits.delete(fn);
  }

  explain(fn: string, now: number): PolicyExplanation {
    return {
      policy: this.name,
      fn,
      now,
      window: { frequency: this.freq.get(fn) ?? 0 },
      predictions: { priority: this.gd.priority(fn), clock: this.gd.clock },
      decisions: { keepAliveMs: null, prewarmAt: null, targetInstances: this.targetInstances(fn, now) },
    };
  }
}
