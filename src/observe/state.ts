/**
 * What observability reads at scrape time: the deployed functions, the pool's instances and
 * memory, the queue's counts and the policy's current decision per function. Built from the same
 * components the control API's services read (catalogue, pool, queue, policy), typed, so metrics
 * and the dashboard need not re-parse the API's JSON.
 */
import type { Clock } from '../clock.js';
import type { Policy } from '../model/policy.js';
import type { Pool } from '../pool/pool.js';
import type { PoolInstanceView } from '../pool/types.js';
import type { EventQueue, QueueStats } from '../queue/event-queue.js';
import type { FunctionCatalogue } from '../registry/catalogue.js';

/** The policy's current decision for one function. */
export interface Decision {
  policy: string;
  /** Keep-alive an instance that becomes idle now would get, ms; null: kept until memory is needed. */
  keepAliveMs: number | null;
  /** When an instance should be ready for a predicted arrival (ms since the epoch), or null. */
  prewarmAt: number | null;
  targetInstances: number;
}

export interface ObservedState {
  /** Deployed functions, by name. */
  functions(): Array<{ name: string; runtime: string }>;
  /** Whether `name` is deployed now. */
  exists(name: string): boolean;
  instances(): PoolInstanceView[];
  memory(): { inUseMb: number; budgetMb: number };
  queueStats(): Promise<QueueStats>;
  decision(fn: string): Decision;
}

export interface StateComponents {
  catalogue: Pick<FunctionCatalogue, 'records' | 'lookup'>;
  pool: Pick<Pool, 'list' | 'memoryInUseMb'>;
  queue: Pick<EventQueue, 'stats'>;
  policy: Pick<Policy, 'decisions' | 'name'>;
  /** The time the policy sees. */
  policyClock: Clock;
  memoryBudgetMb: number;
}

export function observedState(c: StateComponents): ObservedState {
  return {
    functions: () => c.catalogue.records().map((r) => ({ name: r.name, runtime: r.runtime })),
    exists: (name) => c.catalogue.lookup(name) !== undefined,
    instances: () => c.pool.list(),
    memory: () => ({ inUseMb: c.pool.memoryInUseMb(), budgetMb: c.memoryBudgetMb }),
    queueStats: () => c.queue.stats(),
    decision: (fn) => {
      const d = c.policy.decisions(fn, c.policyClock.now());
      // Not spread: a spread into a literal is V8's slow path, microseconds per function per scrape.
      return { policy: c.policy.name, keepAliveMs: d.keepAliveMs, prewarmAt: d.prewarmAt, targetInstances: d.targetInstances };
    },
  };
}
