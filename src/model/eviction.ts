/**
 * Value-based eviction under a memory budget, greedy-dual style (Cao & Irani's GreedyDual-Size,
 * as used for functions by FaaSCache): each function has a priority
 *     priority = clock + frequency × cost / size
 * refreshed when it is used; victims are the idle instances with the lowest priority, and the
 * clock then rises to the highest victim priority, so that unused functions age out without any
 * timer. frequency × cost / size is the value of a byte of the function's instance: how much
 * cold-start time is saved per MB kept.
 */
import type { EvictionCandidate } from './policy.js';

export class GreedyDual {
  /** Rises to the priority of the last victim. */
  clock = 0;
  private readonly prio = new Map<string, number>();

  /** Refreshes fn's priority after a use: clock + frequency × cost / size. */
  touch(fn: string, frequency: number, cost: number, sizeMb: number): void {
    this.prio.set(fn, this.clock + (frequency * cost) / Math.max(1e-9, sizeMb));
  }

  priority(fn: string): number {
    return this.prio.get(fn) ?? this.clock;
  }

  forget(fn: string): void {
    this.prio.delete(fn);
  }

  /**
   * Lowest priority first (ties: idle longest first), until needMb is reached; raises the clock to
   * the last victim's priority.
   */
  chooseVictims(candidates: readonly EvictionCandidate[], needMb: number): string[] {
    const victims = takeUntilFreed(
      [...candidates].sort((a, b) => this.priority(a.fn) - this.priority(b.fn) || a.idleSince - b.idleSince),
      needMb,
    );
    for (const c of victims) this.clock = Math.max(this.clock, this.priority(c.fn));
    return victims.map((c) => c.id);
  }
}

/** Oldest-idle-first victim choice, for policies with no notion of value. */
export function chooseOldestIdle(candidates: readonly EvictionCandidate[], needMb: number): string[] {
  return takeUntilFreed(
    [...candidates].sort((a, b) => a.idleSince - b.idleSince),
    needMb,
  ).map((c) => c.id);
}

/** The leading candidates of `ordered` (most expendable first) whose memory reaches needMb (or all). */
export function takeUntilFreed(ordered: readonly EvictionCandidate[], needMb: number): EvictionCandidate[] {
  const out: EvictionCandidate[] = [];
  let freed = 0;
  for (const c of ordered) {
    if (freed >= needMb) break;
    out.push(c);
    freed += c.memoryMb;
  }
  return out;
}
