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
import type { IdleContext, PolicyExplanation, PoolCounts } from './policy.js';
import { BasePolicy } from './policy-base.js';

export class FaasCachePolicy extends BasePolicy {
  readonly name = 'faascache';
  private readonly freq = new Map<string, number>();

  constructor() {
    super('greedy-dual');
  }

  override onArrival(fn: string, now: number, pool: PoolCounts): void {
    const f = pool.idle + pool.busy === 0 ? 1 : (this.freq.get(fn) ?? 0) + 1;
    this.freq.set(fn, f);
    const t = this.traits.get(fn);
    this.gd.touch(fn, f, t?.coldStartMs ?? 1, t?.memoryMb ?? 1);
    super.onArrival(fn, now, pool);
  }

  keepAliveMs(_fn: string, _now: number, _ctx: IdleContext): number {
    return Infinity;
  }

  override forget(fn: string): void {
    super.forget(fn);
    this.freq.delete(fn);
  }

  override explain(fn: string, now: number): PolicyExplanation {
    const window = { frequency: this.freq.get(fn) ?? 0 };
    return this.explanation(fn, now, this.targetInstances(fn, now), window, { priority: this.gd.priority(fn), clock: this.gd.clock });
  }
}
