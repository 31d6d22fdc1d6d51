/**
 * The live function table: what the pool's and the dispatcher's `lookup` read, kept in step with
 * the registry, and the reactions to each registry change. It depends on narrow interfaces of the
 * components it moves (the wiring passes the real ones, tests fakes), never on the daemon.
 *
 * On a change of function `f` (put or delete), in this order, synchronously in the registry's
 * listener: `f`'s instances are retired (their invocations finish; a deleted function's idle ones
 * end now) → the table entry is replaced or removed (the next lookup sees the new definition) →
 * the policy learns the new traits → the generic pools of private networks are sized (one pool of
 * `genericPerNetwork` per runtime and network that functions use; zero for the others). Then,
 * asynchronously: schedules are set or removed, a deleted function's queued events are purged,
 * and a code GC is armed (unreferenced bundles go `codeGcDelayMs` after the last change; bundles
 * mounted in live instances stay). Failures of the asynchronous steps are logged, never thrown.
 *
 * Life: construct (the table is empty) → `start(followers)` (loads every function, applies their
 * schedules, subscribes to changes, arms a first GC) → `stop()` (unsubscribes, disarms the GC).
 * The followers are given at start because the pool and the dispatcher are built with `lookup`.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';
import type { CodeStore } from './code-store.js';
import type { FunctionRecord, Runtime } from './function-spec.js';
import type { FunctionRegistry } from './registry.js';

/**
 * One function as the layers below see it: the record (the pool's and the dispatcher's targets are
 * structural subsets of this entry, so the catalogue imports nothing from them) and where its code
 * bundle is.
 */
export interface CatalogueEntry {
  readonly fn: FunctionRecord;
  readonly codeDir: string;
  /** The same record as `fn`, for readers that want the full definition by name. */
  readonly record: FunctionRecord;
}

/** What the catalogue moves in the pool. */
export interface CataloguePool {
  /** Instances of `fn` are not reused any more (deleted: the idle ones end now). */
  retire(fn: string, deleted: boolean): void;
  genericTargets(): Record<string, number>;
  setGenericTarget(runtime: Runtime, n: number, network: string | null): void;
  /** Code shas mounted in live instances (kept by the code GC). */
  liveCodeShas(): Iterable<string>;
}

/** The scheduler's part (src/queue/scheduler.ts). */
export interface CatalogueSchedules {
  set(fn: string, expressions: readonly string[], target: { maxAttempts: number; maxEventAgeMs: number }): Promise<void>;
  remove(fn: string): Promise<void>;
}

/** The queue's part (src/queue/event-queue.ts). */
export interface CatalogueQueue {
  purgeFunction(fn: string): Promise<unknown>;
}

/** The policy's part (src/model/policy.ts); `expectedColdRatePerHour` only some policies have. */
export interface CataloguePolicy {
  describe(fn: string, traits: { memoryMb: number }): void;
  expectedColdRatePerHour?: (fn: string, now: number) => number;
}

export interface CatalogueFollowers {
  pool: CataloguePool;
  queue: CatalogueQueue;
  schedules: CatalogueSchedules;
  /** Removes bundles no function references except `alsoLive` (FunctionService.gcCode). */
  gcCode(alsoLive: Iterable<string>): Promise<string[]>;
}

export interface CatalogueOptions {
  registry: FunctionRegistry;
  /** Only `path` is read: where a function's bundle is mounted from. */
  store: Pick<CodeStore, 'path'>;
  policy: CataloguePolicy;
  clock: Clock;
  log: Logger;
  /** Generic instances kept per (runtime, network) that functions use. */
  genericPerNetwork: number;
  /** Delay of the code GC after a change (default 30 s) and after start (default 5 s). */
  codeGcDelayMs?: number;
  firstCodeGcDelayMs?: number;
}

export class FunctionCatalogue {
  private readonly table = new Map<string, CatalogueEntry>();
  private followers: CatalogueFollowers | undefined;
  private unsubscribe: (() => void) | undefined;
  private gcTimer: TimerHandle | undefined;

  constructor(private readonly opts: CatalogueOptions) {}

  /** The current definition of a function, or undefined (bound: hand it over as `lookup`). */
  readonly lookup = (name: string): CatalogueEntry | undefined => this.table.get(name);

  /** Cold arrivals the policy expects per hour for `runtime`'s functions without a network (bound). */
  readonly predictedColdRatePerHour = (runtime: Runtime, now: number): number => {
    const rate = this.opts.policy.expectedColdRatePerHour;
    if (!rate) return 0;
    let sum = 0;
    for (const e of this.table.values()) if (e.fn.runtime === runtime && !e.fn.network) sum += rate.call(this.opts.policy, e.fn.name, now);
    return sum;
  };

  get size(): number {
    return this.table.size;
  }

  /** Every function's record, sorted by name. */
  records(): FunctionRecord[] {
    return [...this.table.values()].map((e) => e.record).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Names of the functions on `network`. */
  usersOf(network: string): string[] {
    return [...this.table.values()].filter((e) => e.fn.network === network).map((e) => e.fn.name);
  }

  async start(followers: CatalogueFollowers): Promise<void> {
    this.followers = followers;
    for (const r of await this.opts.registry.list()) this.track(r.name, r);
    this.sizeNetworkPools();
    this.unsubscribe = this.opts.registry.onChange((name, record) => this.changed(name, record));
    for (const e of [...this.table.values()]) await this.syncSchedules(e.record.name, e.record);
    this.armCodeGc(this.opts.firstCodeGcDelayMs ?? 5_000);
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.gcTimer) this.opts.clock.clearTimeout(this.gcTimer);
    this.gcTimer = undefined;
    this.followers = undefined;
  }

  private changed(name: string, record: FunctionRecord | undefined): void {
    const f = this.followers;
    if (!f) return;
    f.pool.retire(name, record === undefined);
    this.track(name, record);
    this.sizeNetworkPools();
    void this.syncSchedules(name, record);
    if (!record) void f.queue.purgeFunction(name).catch((err: unknown) => this.opts.log.error({ err, fn: name }, 'cannot purge events'));
    this.armCodeGc(this.opts.codeGcDelayMs ?? 30_000);
  }

  private track(name: string, record: FunctionRecord | undefined): void {
    if (!record) {
      this.table.delete(name);
      return;
    }
    this.opts.policy.describe(name, { memoryMb: record.memoryMb });
    this.table.set(name, { fn: record, codeDir: this.opts.store.path(record.codeSha256), record });
  }

  /** One generic pool per (runtime, network) that has functions; the others go to zero. */
  private sizeNetworkPools(): void {
    const pool = this.followers?.pool;
    if (!pool) return;
    const want = new Map<string, { runtime: Runtime; network: string }>();
    for (const e of this.table.values()) {
      if (e.fn.network) want.set(`${e.fn.runtime}@${e.fn.network}`, { runtime: e.fn.runtime, network: e.fn.network });
    }
    for (const key of Object.keys(pool.genericTargets())) {
      if (key.includes('@') && !want.has(key)) {
        const [rt, network] = key.split('@') as [Runtime, string];
        pool.setGenericTarget(rt, 0, network);
      }
    }
    for (const w of want.values()) pool.setGenericTarget(w.runtime, this.opts.genericPerNetwork, w.network);
  }

  private async syncSchedules(name: string, record: FunctionRecord | undefined): Promise<void> {
    const schedules = this.followers?.schedules;
    if (!schedules) return;
    try {
      if (!record || record.schedules.length === 0) await schedules.remove(name);
      else await schedules.set(name, record.schedules, { maxAttempts: record.retries + 1, maxEventAgeMs: record.maxEventAgeS * 1000 });
    } catch (err) {
      this.opts.log.error({ err, fn: name }, 'cannot apply schedules');
    }
  }

  /**
   * Removes code bundles no function and no live instance uses, a while after a change (retired
   * instances end when their invocation finishes; a bundle is never removed while mounted). A GC
   * already armed is not moved.
   */
  private armCodeGc(delayMs: number): void {
    if (this.gcTimer || !this.followers) return;
    this.gcTimer = this.opts.clock.setTimeout(() => {
      this.gcTimer = undefined;
      const f = this.followers;
      if (!f) return;
      void f
        .gcCode(f.pool.liveCodeShas())
        .then((removed) => {
          if (removed.length) this.opts.log.info({ removed: removed.length }, 'removed unused code bundles');
        })
        .catch((err: unknown) => this.opts.log.error({ err }, 'code gc failed'));
    }, delayMs);
    this.gcTimer.unref?.();
  }
}
