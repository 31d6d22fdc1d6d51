/**
 * The pool: generic (function-less) instances per runtime, and specialised instances per function.
 * This module is the façade the dispatcher and the daemon use; the jobs live beside it:
 * admission.ts (concurrency limits), instances.ts (the instance table), lifecycle.ts (spawn,
 * specialise, run, end), keep-alive.ts (the reaper), prewarmer.ts, generic-pools.ts.
 *
 * An invocation goes to an idle instance of its function (start `warm`, most recently used first),
 * else to a generic instance that is specialised for it (start `generic`: code mounted at /code,
 * handler imported), else to a new instance (start `cold`). An instance serves one invocation at a
 * time and one function (one version of it) for life. A function's concurrency limit bounds its
 * busy instances; callers past it wait in FIFO order, synchronous callers ahead of queued events.
 * The pool calls nothing above it: a function's current definition comes through `lookup`.
 *
 * Concurrency: all methods run on the daemon's event loop; no method blocks. Errors a function
 * causes (throw, timeout, OOM, exit, bad import) come back as an `error` in the result, never as a
 * rejection; `invoke` rejects only for faults of the caller (HearthError) or of the engine.
 */
import type { Clock } from '../clock.js';
import { HearthError } from '../errors.js';
import type { Runtime } from '../runtimes/types.js';
import { Admission } from './admission.js';
import { GenericPools } from './generic-pools.js';
import { fnKey, InstanceTable, newId, type Instance } from './instances.js';
import { KeepAliveReaper } from './keep-alive.js';
import { InstanceLifecycle, type FirstInvocation, type Specialized } from './lifecycle.js';
import { Prewarmer } from './prewarmer.js';
import type { InvokeRequest, InvokeResult, PoolFunction, PoolInstanceView, PoolOptions } from './types.js';

export type { InvokeRequest, InvokeResult, PoolFunction, PoolInstanceView, PoolOptions, StartKind } from './types.js';

export class Pool {
  private readonly table = new InstanceTable();
  private readonly admission = new Admission();
  private readonly lifecycle: InstanceLifecycle;
  private readonly reaper: KeepAliveReaper;
  private readonly prewarmer: Prewarmer;
  private readonly generic: GenericPools;
  private readonly policyClock: Clock;
  private stopped = false;

  constructor(private readonly opts: PoolOptions) {
    const { policy, log } = opts;
    const policyClock = (this.policyClock = opts.policyClock ?? opts.clock);
    const end = (inst: Instance, why: string): void => void this.lifecycle.end(inst, why);
    this.lifecycle = new InstanceLifecycle({
      spawner: opts.spawner,
      connect: opts.connect,
      clock: opts.clock,
      log,
      table: this.table,
      genericLimits: opts.genericLimits,
      ...(opts.initTimeoutMs === undefined ? {} : { initTimeoutMs: opts.initTimeoutMs }),
      ...(opts.identity ? { identity: opts.identity } : {}),
      onEnding: (inst) => this.reaper.disarm(inst),
      onExited: (inst, was) => {
        if (was === 'generic') this.generic.refill(inst.runtime, inst.network);
      },
    });
    this.prewarmer = new Prewarmer({
      policy,
      policyClock,
      log,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      counts: (name) => this.table.counts(name),
      warm: (fn, codeDir) => this.prewarm(fn, codeDir),
    });
    this.reaper = new KeepAliveReaper({
      policy,
      policyClock,
      table: this.table,
      ...(opts.memoryBudgetMb === undefined ? {} : { memoryBudgetMb: opts.memoryBudgetMb }),
      end,
      planPrewarm: (name) => this.prewarmer.plan(name),
    });
    this.generic = new GenericPools({
      clock: opts.clock,
      log,
      table: this.table,
      targets: opts.genericTarget,
      instanceMemoryMb: opts.genericLimits.memoryMb,
      ...(opts.refillBackoffMs === undefined ? {} : { refillBackoffMs: opts.refillBackoffMs }),
      create: (runtime, network) => this.lifecycle.create(runtime, network),
      end,
      makeRoom: (mb) => this.reaper.makeRoom(mb),
    });
  }

  start(): void {
    this.stopped = false;
    this.prewarmer.start();
    this.generic.start();
  }

  /** Ends every instance; waiting callers are rejected. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.generic.stop();
    this.prewarmer.stop();
    this.admission.rejectAll(new HearthError('UNAVAILABLE', 'the daemon is stopping'));
    await Promise.all([...this.table.values()].map((i) => this.lifecycle.end(i, 'daemon stopping')));
  }

  /** Sets how many generic instances of `runtime` (on `network`, or none) to keep ready. */
  setGenericTarget(runtime: Runtime, n: number, network: string | null = null): void {
    this.generic.setTarget(runtime, n, network);
  }

  /** Generic targets by pool: `runtime` or `runtime@network`. */
  genericTargets(): Record<string, number> {
    return this.generic.targetsByPool();
  }

  /** Recent non-warm starts per runtime (policy-clock times), for the generic pool sizer. */
  get coldArrivals(): Record<Runtime, number[]> {
    return this.generic.coldArrivals;
  }

  /** Runs one invocation. Resolves with the function's result or its error; see the module comment. */
  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    if (this.stopped) throw new HearthError('UNAVAILABLE', 'the daemon is stopping');
    const { fn } = req;
    const key = fnKey(fn);
    const network = fn.network ?? null;
    this.opts.policy.onArrival(fn.name, this.policyClock.now(), this.table.counts(fn.name));
    if (!req.refuseWhenBusy) await this.admission.admit(key, fn.concurrency, req.priority ?? 'sync');
    else if (!this.admission.tryAdmit(key, fn.concurrency)) {
      throw new HearthError('TOO_MANY_REQUESTS', `function ${JSON.stringify(fn.name)} is running its limit of ${fn.concurrency} invocations at once`, {
        details: { limit: fn.concurrency },
      });
    }
    const id = req.invocationId ?? newId('inv');
    let acquired: Specialized;
    try {
      const warm = this.table.takeIdle(fn.name, key);
      acquired = warm ? { inst: warm, start: 'warm', initMs: 0 } : await this.specializeFresh(fn, key, req.codeDir, { id, event: req.event });
    } catch (err) {
      this.admission.leave(key);
      this.generic.refillAfterReply(fn.runtime, network);
      this.generic.flushRefills();
      throw err;
    }
    // A generic instance was taken (or a new one made): top the pool up once the reply is out.
    if (acquired.start !== 'warm') this.generic.refillAfterReply(fn.runtime, network);
    if ('error' in acquired) {
      this.admission.leave(key);
      req.onStart?.(acquired.start);
      this.generic.flushRefills();
      return {
        result: null,
        error: acquired.error,
        start: acquired.start,
        initMs: acquired.initMs,
        durationMs: 0,
        instance: acquired.inst?.id ?? '',
        logs: '',
      };
    }
    const { inst, start, initMs } = acquired;
    req.onStart?.(start);
    const { outcome: o, healthy } = await this.lifecycle.run(inst, id, req.event, fn.timeoutMs, acquired.first);
    this.admission.leave(key);
    if (healthy) inst.state = 'idle';
    this.opts.policy.onFinish(fn.name, this.policyClock.now(), o.durationMs, this.table.counts(fn.name));
    if (healthy) this.release(inst, 'finish');
    else this.prewarmer.plan(fn.name);
    this.generic.flushRefills();
    return { result: o.ok ? o.result : null, error: o.ok ? null : o.error, start, initMs, durationMs: o.durationMs, instance: inst.id, logs: o.logs };
  }

  /** Ends the instances of a function (deleted or redeployed); busy ones end when they finish. */
  retire(fnName: string, deleted = false): void {
    this.prewarmer.cancel(fnName);
    if (deleted) this.opts.policy.forget(fnName);
    for (const inst of [...this.table.ofFunction(fnName)]) {
      if (inst.state === 'idle') void this.lifecycle.end(inst, 'function retired');
      else this.table.retired.add(inst.id);
    }
  }

  /**
   * Ends every instance on `network` (idle and generic now; waits for busy ones to finish), also
   * one still being created: its namespace is leased before it joins the pool. The caller stops
   * new creations first (generic target 0, no function on the network).
   */
  async drainNetwork(network: string): Promise<void> {
    for (;;) {
      const pending = this.lifecycle.creatingOn(network);
      if (pending.length > 0) {
        await Promise.allSettled(pending);
        continue;
      }
      const on = [...this.table.values()].filter((i) => i.network === network);
      for (const i of on) {
        if (i.state === 'busy' || i.state === 'specializing') this.table.retired.add(i.id);
        else void this.lifecycle.end(i, 'network deleted');
      }
      await Promise.all(on.map((i) => i.proc.exited));
      if (this.lifecycle.creatingOn(network).length === 0) return;
    }
  }

  /** Pre-warm times armed now, per function (for the API). */
  prewarmSchedule(): Record<string, string> {
    return this.prewarmer.schedule();
  }

  /** Memory reserved by live instances, MB. */
  memoryInUseMb(): number {
    return this.table.memoryInUseMb();
  }

  /** Code bundles mounted in live instances. */
  liveCodeShas(): Set<string> {
    return this.table.liveCodeShas();
  }

  idleCount(fnName: string): number {
    return this.table.counts(fnName).idle;
  }

  /** The live instances (not starting), with why each idle one is kept. */
  list(): PoolInstanceView[] {
    const now = this.policyClock.now();
    const out: PoolInstanceView[] = [];
    for (const i of this.table.values()) {
      if (i.state === 'starting' || i.state === 'dead') continue;
      const state = i.state === 'generic' ? 'generic' : i.state === 'idle' ? 'idle' : 'busy';
      const view: PoolInstanceView = {
        id: i.id,
        runtime: i.runtime,
        function: i.fnName,
        network: i.network,
        state,
        pid: i.proc.pid,
        createdAt: new Date(i.createdAt).toISOString(),
        lastUsedAt: new Date(i.lastUsedAt).toISOString(),
        invocations: i.invocations,
      };
      if (state === 'idle' && i.fnName) {
        view.keepAliveUntil = Number.isFinite(i.keepUntil) ? new Date(i.keepUntil).toISOString() : 'until evicted';
        view.why = this.whyAlive(i, now);
      }
      out.push(view);
    }
    return out;
  }

  private whyAlive(i: Instance, now: number): string {
    const { policy } = this.opts;
    const left = Math.max(0, Math.round((i.keepUntil - now) / 1000));
    const d = policy.explain(i.fnName!, now).decisions;
    const base = i.idleCause === 'prewarm' ? `pre-warmed by ${policy.name} for a predicted arrival` : `kept by ${policy.name} after its last use`;
    return `${base}; ${Number.isFinite(i.keepUntil) ? `${left} s left` : 'no expiry'}; target ${d.targetInstances} instance(s)`;
  }

  /** Specialises a generic instance (or, with none ready, a new one) for `fn`; see lifecycle.ts. */
  private async specializeFresh(fn: PoolFunction, key: string, codeDir: string, first?: FirstInvocation): Promise<Specialized> {
    if (first) this.generic.noteColdArrival(fn.runtime, this.policyClock.now());
    const network = fn.network ?? null;
    let inst = this.table.takeGeneric(fn.runtime, network);
    this.reaper.makeRoom(inst ? Math.max(0, fn.memoryMb - inst.memoryMb) : fn.memoryMb);
    const t0 = performance.now();
    if (inst) return this.lifecycle.specialize(inst, fn, key, codeDir, 'generic', t0, first);
    try {
      inst = await this.lifecycle.create(fn.runtime, network, true);
    } catch (err) {
      this.opts.log.error({ err, fn: fn.name }, 'cannot create an instance');
      throw new HearthError('UNAVAILABLE', `cannot start a ${fn.runtime} instance: ${(err as Error).message}`, { cause: err });
    }
    return this.lifecycle.specialize(inst, fn, key, codeDir, 'cold', t0, first);
  }

  /** Specialises an instance for `fn` ahead of an expected arrival (the pre-warmer's verb). */
  private async prewarm(fn: PoolFunction, codeDir: string): Promise<boolean> {
    if (this.stopped) return false;
    const got = await this.specializeFresh(fn, fnKey(fn), codeDir);
    this.generic.refill(fn.runtime, fn.network ?? null);
    if ('error' in got) return false;
    this.release(got.inst, 'prewarm');
    return true;
  }

  /** An instance done with its work: ended if its function or network is gone, else kept idle. */
  private release(inst: Instance, cause: 'finish' | 'prewarm'): void {
    if (inst.state === 'dead') return;
    if (this.table.retired.has(inst.id) || this.stopped) {
      void this.lifecycle.end(inst, 'function retired');
      return;
    }
    this.reaper.keep(inst, cause);
  }
}
