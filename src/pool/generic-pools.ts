/**
 * The generic pools: function-less instances kept ready per runtime and network, so that a
 * function without an idle instance of its own starts by specialising one (start `generic`)
 * instead of spawning (start `cold`). Each pool has a target (set at start, by the sizer in
 * generic-sizer.ts, and per network by the daemon); a refill spawns one instance at a time per
 * pool, off the request path, and backs off exponentially while spawns fail.
 *
 * Timers (refill backoff) run on the pool's `clock`. Concurrency: event-loop only; at most one
 * refill loop per pool.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';
import { RUNTIMES, type Runtime } from '../runtimes/types.js';
import type { Instance, InstanceTable } from './instances.js';

export interface GenericPoolsOptions {
  clock: Clock;
  log: Logger;
  table: InstanceTable;
  /** Generic instances to keep ready per runtime (no network). */
  targets: Record<Runtime, number>;
  /** Memory of one generic instance, MB (room is made for it under the budget). */
  instanceMemoryMb: number;
  /** First delay before a failed refill is retried, ms; default 500. */
  refillBackoffMs?: number;
  /** Spawns a generic instance, ready (lifecycle.ts). */
  create: (runtime: Runtime, network: string | null) => Promise<Instance>;
  end: (inst: Instance, why: string) => void;
  /** Makes room under the memory budget (keep-alive.ts). */
  makeRoom: (needMb: number) => void;
}

/** Cold starts remembered per runtime, for the sizer. */
const MAX_ARRIVALS = 10_000;

export class GenericPools {
  /** Generic instances to keep, per runtime and network (`slotKey`). */
  private readonly targets = new Map<string, number>();
  private readonly refilling = new Set<string>();
  private readonly consecutiveFailures = new Map<string, number>();
  /** Pools whose refill waits for the current reply to go out (see refillAfterReply). */
  private readonly pending = new Set<string>();
  /** Retries of failed refills, per pool. */
  private readonly retryTimers = new Map<string, TimerHandle>();
  private stopped = false;
  /** Recent non-warm starts per runtime (times, policy clock), for sizing the generic pools. */
  readonly coldArrivals: Record<Runtime, number[]> = { node: [], python: [], provided: [] };

  constructor(private readonly opts: GenericPoolsOptions) {
    for (const rt of RUNTIMES) this.targets.set(slotKey(rt, null), opts.targets[rt]);
  }

  /** Fills every pool to its target. */
  start(): void {
    this.stopped = false;
    for (const key of this.targets.keys()) this.refill(...parseSlot(key));
  }

  /** No refill starts after this; one in progress ends the instance it was making. */
  stop(): void {
    this.stopped = true;
    for (const t of this.retryTimers.values()) this.opts.clock.clearTimeout(t);
    this.retryTimers.clear();
  }

  /** Sets how many generic instances of `runtime` (on `network`, or none) to keep ready; 0 ends them. */
  setTarget(runtime: Runtime, n: number, network: string | null = null): void {
    const key = slotKey(runtime, network);
    const v = Math.max(0, Math.floor(n));
    if (v === 0 && network !== null) this.targets.delete(key);
    else this.targets.set(key, v);
    if (v === 0) {
      for (const i of [...this.opts.table.values()])
        if (i.state === 'generic' && i.runtime === runtime && i.network === network) this.opts.end(i, 'generic pool shrunk');
    }
    this.refill(runtime, network);
  }

  /** Targets by pool: `runtime` or `runtime@network`. */
  targetsByPool(): Record<string, number> {
    return Object.fromEntries(this.targets);
  }

  /** Notes a start that found no idle instance of its function (at `now`, policy clock). */
  noteColdArrival(runtime: Runtime, now: number): void {
    const list = this.coldArrivals[runtime];
    list.push(now);
    if (list.length > MAX_ARRIVALS) list.splice(0, list.length - MAX_ARRIVALS);
  }

  /**
   * Notes that a generic instance of this pool was taken, to be replaced after the caller has its
   * reply (flushRefills): starting a Node runtime clones the daemon, a few milliseconds of blocked
   * event loop that must not sit between a specialisation and its answer.
   */
  refillAfterReply(runtime: Runtime, network: string | null): void {
    this.pending.add(slotKey(runtime, network));
  }

  /** Starts the refills noted during an invocation; called as its reply is handed back. */
  flushRefills(): void {
    if (this.pending.size === 0) return;
    const keys = [...this.pending];
    this.pending.clear();
    // setImmediate: after the caller's continuation has written the reply.
    setImmediate(() => {
      for (const k of keys) this.refill(...parseSlot(k));
    });
  }

  /** Keeps the pool of `runtime` on `network` at its target, one spawn at a time. */
  refill(runtime: Runtime, network: string | null = null): void {
    const key = slotKey(runtime, network);
    if (this.stopped || this.refilling.has(key)) return;
    const { table } = this.opts;
    const target = (): number => this.targets.get(key) ?? 0;
    if (table.genericCount(runtime, network) >= target()) return;
    this.refilling.add(key);
    void (async () => {
      try {
        while (!this.stopped && table.genericCount(runtime, network) < target()) {
          this.opts.makeRoom(this.opts.instanceMemoryMb);
          const inst = await this.opts.create(runtime, network);
          if (this.stopped) {
            this.opts.end(inst, 'daemon stopping');
            break;
          }
          if (inst.state !== 'starting') continue; // ended meanwhile (its network is being deleted)
          if (table.genericCount(runtime, network) >= target()) {
            this.opts.end(inst, 'generic pool shrunk');
            break;
          }
          inst.state = 'generic';
          this.consecutiveFailures.delete(key);
        }
      } catch (err) {
        if (this.stopped) return; // an instance starting while the daemon stops
        const fails = (this.consecutiveFailures.get(key) ?? 0) + 1;
        this.consecutiveFailures.set(key, fails);
        this.opts.log.error({ err, runtime, network, fails }, 'generic pool refill failed');
        const delay = Math.min(30_000, (this.opts.refillBackoffMs ?? 500) * 2 ** Math.min(fails, 6));
        const prev = this.retryTimers.get(key);
        if (prev) this.opts.clock.clearTimeout(prev);
        const timer = this.opts.clock.setTimeout(() => {
          this.retryTimers.delete(key);
          this.refill(runtime, network);
        }, delay);
        timer.unref?.();
        this.retryTimers.set(key, timer);
      } finally {
        this.refilling.delete(key);
      }
    })();
  }
}

function slotKey(runtime: Runtime, network: string | null): string {
  return network === null ? runtime : `${runtime}@${network}`;
}

function parseSlot(key: string): [Runtime, string | null] {
  const at = key.indexOf('@');
  return at < 0 ? [key as Runtime, null] : [key.slice(0, at) as Runtime, key.slice(at + 1)];
}
