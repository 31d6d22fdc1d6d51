/** A hand-driven ObservedState and invocation records for the observability unit tests. */
import type { InvocationRecord } from '../../src/dispatch/invocations.js';
import type { PoolInstanceView } from '../../src/pool/types.js';
import { emptyCounts, type QueueStats } from '../../src/queue/event-queue.js';
import type { Decision, ObservedState } from '../../src/observe/state.js';

export class FakeState implements ObservedState {
  fns = new Map<string, string>();
  insts: PoolInstanceView[] = [];
  queue: QueueStats = { total: emptyCounts(), functions: {}, maxQueued: 100 };
  decisions = new Map<string, Decision>();

  functions() {
    return [...this.fns].map(([name, runtime]) => ({ name, runtime }));
  }
  exists(name: string) {
    return this.fns.has(name);
  }
  instances() {
    return this.insts;
  }
  memory() {
    return { inUseMb: 256, budgetMb: 1024 };
  }
  async queueStats() {
    return this.queue;
  }
  decision(fn: string): Decision {
    return this.decisions.get(fn) ?? { policy: 'hearth', keepAliveMs: 600_000, prewarmAt: null, targetInstances: 1 };
  }
}

export function instance(over: Partial<PoolInstanceView>): PoolInstanceView {
  return {
    id: 'i',
    runtime: 'node',
    function: null,
    network: null,
    state: 'generic',
    pid: 1,
    createdAt: '',
    lastUsedAt: '',
    invocations: 0,
    ...over,
  };
}

let n = 0;
export function rec(over: Partial<InvocationRecord> = {}): InvocationRecord {
  return {
    id: `inv-${++n}`,
    function: 'f',
    trigger: 'sync',
    start: 'warm',
    initMs: 0,
    durationMs: 0.4,
    outcome: 'ok',
    error: null,
    logs: '',
    endedAt: Date.UTC(2026, 11, 2, 3, 0, 0),
    ...over,
  };
}
