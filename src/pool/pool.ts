/**
 * The pool: generic (function-less) instances per runtime, and specialised instances per function.
 *
 * An invocation goes to an idle instance of its function (start `warm`, most recently used first),
 * else to a generic instance that is specialised for it (start `generic`: code mounted at /code,
 * handler imported), else to a new instance (start `cold`). An instance serves one invocation at a
 * time and one function (one version of it) for life. A function's concurrency limit bounds its
 * busy instances; callers past it wait in FIFO order, synchronous callers ahead of queued events.
 *
 * Concurrency: all methods run on the daemon's event loop; no method blocks. Errors a function
 * causes (throw, timeout, OOM, exit, bad import) come back as an `error` in the result, never as a
 * rejection; `invoke` rejects only for faults of the caller (HearthError) or of the engine.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock.js';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Policy } from '../model/policy.js';
import type {
  ConnectionFactory,
  FunctionErrorInfo,
  InstanceLimits,
  InvokeOutcome,
  Runtime,
  RuntimeConnection,
  SandboxProcess,
  Spawner,
} from './types.js';
import { runtimes } from './types.js';

export type StartKind = 'warm' | 'generic' | 'cold';
export type InstanceState = 'starting' | 'generic' | 'specializing' | 'idle' | 'busy' | 'dead';

/** What the pool needs to know of a function. */
export interface PoolFunction {
  name: string;
  runtime: Runtime;
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  env: Record<string, string>;
  concurrency: number;
  codeSha256: string;
  /** Private network the function's instances join (through its gateway), if any. */
  network?: string;
  /** Changes whenever the definition changes; instances of another version are never reused. */
  updatedAt: string;
}

export interface InvokeRequest {
  fn: PoolFunction;
  /** Directory of the function's unpacked code on the host. */
  codeDir: string;
  event: unknown;
  invocationId?: string;
  /** Synchronous callers wait ahead of queued (async) events. */
  priority?: 'sync' | 'async';
  /** Called when the invocation has an instance and starts (queue-to-start latency). */
  onStart?: (start: StartKind) => void;
}

export interface InvokeResult {
  result: unknown;
  error: FunctionErrorInfo | null;
  start: StartKind;
  initMs: number;
  durationMs: number;
  instance: string;
  logs: string;
}

export interface PoolOptions {
  spawner: Spawner;
  connect: ConnectionFactory;
  clock: Clock;
  log: Logger;
  /** Keep-alive, pre-warm and eviction decisions (src/model; shared with the simulator). */
  policy: Policy;
  /**
   * The time the policy sees and its timers (keep-alive, pre-warm) run on; default `clock`.
   * Deadlines of invocations always use `clock`. A faster policy clock replays hours of
   * arrival patterns in minutes (tests, trace replay).
   */
  policyClock?: Clock;
  /** The current definition of a function (for pre-warming), or undefined when it is gone. */
  lookup?: (name: string) => { fn: PoolFunction; codeDir: string } | undefined;
  /** Memory for all instances, MB; past it idle instances are evicted by the policy's choice. */
  memoryBudgetMb?: number;
  /** Generic instances to keep ready per runtime. */
  genericTarget: Record<Runtime, number>;
  genericLimits: InstanceLimits;
  /** Spawn attempts that fail in a row before the refill backs off. */
  refillBackoffMs?: number;
  /** Upper bound for a handler's import (init) time. */
  initTimeoutMs?: number;
}

export class Instance {
  state: InstanceState = 'starting';
  fnKey: string | null = null;
  fnName: string | null = null;
  /** The code bundle mounted at /code (kept on disk while any instance has it mounted). */
  codeSha: string | null = null;
  lastUsedAt: number;
  /** Armed while idle or since; fires at `keepAliveAt` and checks `keepUntil` then (see release). */
  keepAliveTimer: TimerHandle | undefined;
  keepAliveAt = 0;
  keepUntil = 0;
  invocations = 0;
  memoryMb: number;
  /** Why it is idle: after a finish, or pre-warmed ahead of a predicted arrival. */
  idleCause: 'finish' | 'prewarm' = 'finish';
  constructor(
    readonly id: string,
    readonly runtime: Runtime,
    readonly proc: SandboxProcess,
    readonly conn: RuntimeConnection,
    readonly createdAt: number,
    memoryMb: number,
    /** The private network it was prepared on, or null (loopback only). */
    readonly network: string | null = null,
  ) {
    this.lastUsedAt = createdAt;
    this.memoryMb = memoryMb;
  }
}

/** The invocation that a non-warm start sends along with its specialise. */
interface FirstInvocation {
  id: string;
  event: unknown;
}

type Acquired =
  | { inst: Instance; start: StartKind; initMs: number; first?: Promise<InvokeOutcome> }
  | { error: FunctionErrorInfo; start: StartKind; initMs: number; inst?: Instance };

interface Waiter {
  priority: 'sync' | 'async';
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface PoolInstanceView {
  id: string;
  runtime: Runtime;
  function: string | null;
  network: string | null;
  state: 'generic' | 'idle' | 'busy';
  pid: number;
  createdAt: string;
  lastUsedAt: string;
  invocations: number;
  keepAliveUntil?: string;
  why?: string;
}

export class Pool {
  private readonly instances = new Map<string, Instance>();
  /** Live instances specialised for each function (by name, any version): the warm path's index. */
  private readonly byFn = new Map<string, Set<Instance>>();
  private readonly busyByFn = new Map<string, number>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly refilling = new Set<string>();
  /** Instance creations in progress per network (their namespace is leased before they are listed). */
  private readonly creating = new Map<string, Set<Promise<unknown>>>();
  private readonly retired = new Set<string>();
  /** Generic instances to keep, per runtime and network (`slotKey`). */
  private readonly genericTarget = new Map<string, number>();
  private stopped = false;
  private refillTimer: TimerHandle | undefined;
  private readonly consecutiveSpawnFailures = new Map<string, number>();
  private readonly prewarmTimers = new Map<string, { at: number; timer: TimerHandle }>();
  private readonly pendingRefill = new Set<string>();
  private readonly prewarming = new Set<string>();
  /** Recent non-warm starts per runtime (times), for sizing the generic pools. */
  readonly coldArrivals: Record<Runtime, number[]> = { node: [], python: [] };

  private readonly policyClock: Clock;

  constructor(private readonly opts: PoolOptions) {
    this.policyClock = opts.policyClock ?? opts.clock;
    for (const rt of runtimes) this.genericTarget.set(slotKey(rt, null), opts.genericTarget[rt]);
  }

  start(): void {
    this.stopped = false;
    for (const key of this.genericTarget.keys()) this.refill(...parseSlot(key));
  }

  /** Ends every instance; waiting callers are rejected. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refillTimer) this.opts.clock.clearTimeout(this.refillTimer);
    for (const p of this.prewarmTimers.values()) this.policyClock.clearTimeout(p.timer);
    this.prewarmTimers.clear();
    for (const list of this.waiters.values()) for (const w of list) w.reject(new HearthError('UNAVAILABLE', 'the daemon is stopping'));
    this.waiters.clear();
    const exits = [...this.instances.values()].map((i) => this.terminate(i, 'daemon stopping'));
    await Promise.all(exits);
  }

  /** Sets how many generic instances of `runtime` (on `network`, or none) to keep ready. */
  setGenericTarget(runtime: Runtime, n: number, network: string | null = null): void {
    const key = slotKey(runtime, network);
    const v = Math.max(0, Math.floor(n));
    if (v === 0 && network !== null) this.genericTarget.delete(key);
    else this.genericTarget.set(key, v);
    if (v === 0) {
      for (const i of [...this.instances.values()]) if (i.state === 'generic' && i.runtime === runtime && i.network === network) void this.terminate(i, 'generic pool shrunk');
    }
    this.refill(runtime, network);
  }

  genericTargets(): Record<string, number> {
    return Object.fromEntries(this.genericTarget);
  }

  /** Runs one invocation. Resolves with the function's result or its error; see the class comment. */
  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    if (this.stopped) throw new HearthError('UNAVAILABLE', 'the daemon is stopping');
    const { fn } = req;
    const key = fnKey(fn);
    const now = this.policyClock.now();
    this.opts.policy.onArrival(fn.name, now, this.counts(fn.name));
    await this.admit(key, fn.concurrency, req.priority ?? 'sync');
    const id = req.invocationId ?? newId('inv');
    let acquired: Acquired;
    try {
      acquired = await this.acquire(fn, key, req.codeDir, { id, event: req.event });
    } catch (err) {
      this.leave(key);
      this.refillAfterReply(fn);
      this.flushRefills();
      throw err;
    }
    // A generic instance was taken (or a new one made): top the pool up once the reply is out.
    if (acquired.start !== 'warm') this.refillAfterReply(fn);
    if ('error' in acquired) {
      this.leave(key);
      req.onStart?.(acquired.start);
      this.flushRefills();
      return { result: null, error: acquired.error, start: acquired.start, initMs: acquired.initMs, durationMs: 0, instance: acquired.inst?.id ?? '', logs: '' };
    }
    const { inst, start, initMs } = acquired;
    req.onStart?.(start);
    const outcome = await this.run(inst, id, req.event, fn.timeoutMs, acquired.first);
    this.leave(key);
    if (outcome.healthy) inst.state = 'idle';
    this.opts.policy.onFinish(fn.name, this.policyClock.now(), outcome.outcome.durationMs, this.counts(fn.name));
    if (outcome.healthy) this.release(inst, 'finish');
    else this.planPrewarm(fn.name);
    const o = outcome.outcome;
    this.flushRefills();
    return {
      result: o.ok ? o.result : null,
      error: o.ok ? null : o.error,
      start,
      initMs,
      durationMs: o.durationMs,
      instance: inst.id,
      logs: o.logs,
    };
  }

  /**
   * Replaces a generic instance taken for `fn`, after the caller has its reply: starting a Node
   * runtime clones the daemon, a few milliseconds of blocked event loop that must not sit between
   * a specialisation and its answer.
   */
  private refillAfterReply(fn: PoolFunction): void {
    this.pendingRefill.add(slotKey(fn.runtime, fn.network ?? null));
  }

  /** Starts the refills noted during an invocation; called as its reply is handed back. */
  private flushRefills(): void {
    if (this.pendingRefill.size === 0) return;
    const keys = [...this.pendingRefill];
    this.pendingRefill.clear();
    // setImmediate: after the caller's continuation has written the reply.
    setImmediate(() => {
      for (const k of keys) this.refill(...parseSlot(k));
    });
  }

  /** Ends the instances of a function (deleted or redeployed); busy ones end when they finish. */
  retire(fnName: string, deleted = false): void {
    const p = this.prewarmTimers.get(fnName);
    if (p) this.policyClock.clearTimeout(p.timer);
    this.prewarmTimers.delete(fnName);
    if (deleted) this.opts.policy.forget(fnName);
    for (const inst of this.instances.values()) {
      if (inst.fnName !== fnName) continue;
      if (inst.state === 'idle') void this.terminate(inst, 'function retired');
      else this.retired.add(inst.id);
    }
  }

  /** Busy instance count of a function version, and its limit check, for the dispatcher. */
  hasCapacity(fn: PoolFunction): boolean {
    const key = fnKey(fn);
    return (this.busyByFn.get(key) ?? 0) < fn.concurrency && (this.waiters.get(key)?.length ?? 0) === 0;
  }

  /** Specialises a generic (or new) instance for `fn` ahead of an expected arrival. */
  async prewarm(fn: PoolFunction, codeDir: string): Promise<boolean> {
    if (this.stopped) return false;
    const key = fnKey(fn);
    const got = await this.specializeFresh(fn, key, codeDir);
    this.refill(fn.runtime, fn.network ?? null);
    if ('error' in got) return false;
    this.release(got.inst, 'prewarm');
    return true;
  }

  private counts(fnName: string): { idle: number; busy: number } {
    let idle = 0;
    let busy = 0;
    const mine = this.byFn.get(fnName);
    if (mine === undefined) return { idle, busy };
    for (const i of mine) {
      if (i.state === 'idle') idle++;
      else if (i.state === 'busy' || i.state === 'specializing') busy++;
    }
    return { idle, busy };
  }

  /** Asks the policy when fn will next need an instance, and arms (or replaces) its pre-warm timer. */
  private planPrewarm(fnName: string): void {
    if (this.stopped || !this.opts.lookup) return;
    const now = this.policyClock.now();
    const at = this.opts.policy.prewarmAt(fnName, now);
    const prev = this.prewarmTimers.get(fnName);
    if (at === null) {
      if (prev) this.policyClock.clearTimeout(prev.timer);
      this.prewarmTimers.delete(fnName);
      return;
    }
    if (prev) {
      if (prev.at === at) return;
      this.policyClock.clearTimeout(prev.timer);
    }
    const timer = this.policyClock.setTimeout(() => {
      this.prewarmTimers.delete(fnName);
      void this.firePrewarm(fnName);
    }, Math.max(0, at - now));
    timer.unref?.();
    this.prewarmTimers.set(fnName, { at, timer });
  }

  private async firePrewarm(fnName: string): Promise<void> {
    const target = this.opts.lookup?.(fnName);
    if (!target || this.stopped || this.prewarming.has(fnName)) return;
    const c = this.counts(fnName);
    if (c.idle > 0 || c.busy > 0) return;
    this.prewarming.add(fnName);
    try {
      const ok = await this.prewarm(target.fn, target.codeDir);
      this.opts.log.debug({ fn: fnName, ok }, 'pre-warmed an instance ahead of a predicted arrival');
    } catch (err) {
      this.opts.log.warn({ err, fn: fnName }, 'pre-warm failed');
    } finally {
      this.prewarming.delete(fnName);
    }
  }

  /** Pre-warm times armed now, per function (for the API). */
  prewarmSchedule(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [fn, p] of this.prewarmTimers) out[fn] = new Date(p.at).toISOString();
    return out;
  }

  /** Memory reserved by live instances, MB. */
  memoryInUseMb(): number {
    let mb = 0;
    for (const i of this.instances.values()) if (i.state !== 'dead') mb += i.memoryMb;
    return mb;
  }

  /** Makes room for `needMb` under the budget by ending idle instances the policy values least. */
  private makeRoom(needMb: number): void {
    const budget = this.opts.memoryBudgetMb;
    if (budget === undefined) return;
    const over = this.memoryInUseMb() + needMb - budget;
    if (over <= 0) return;
    const idle = [...this.instances.values()].filter((i) => i.state === 'idle' && i.fnName);
    const victims = this.opts.policy.chooseVictims(
      idle.map((i) => ({ id: i.id, fn: i.fnName!, memoryMb: i.memoryMb, idleSince: i.lastUsedAt })),
      over,
      this.policyClock.now(),
    );
    for (const id of victims) {
      const inst = this.instances.get(id);
      if (inst && inst.state === 'idle') void this.terminate(inst, 'evicted under the memory budget');
    }
  }

  /**
   * Ends every instance on `network` (idle and generic now; waits for busy ones to finish), also
   * one still being created: its namespace is leased before it joins the pool. The caller stops
   * new creations first (generic target 0, no function on the network).
   */
  async drainNetwork(network: string): Promise<void> {
    for (;;) {
      const pending = this.creating.get(network);
      if (pending !== undefined && pending.size > 0) {
        await Promise.allSettled([...pending]);
        continue;
      }
      const on = [...this.instances.values()].filter((i) => i.network === network);
      for (const i of on) {
        if (i.state === 'busy' || i.state === 'specializing') this.retired.add(i.id);
        else void this.terminate(i, 'network deleted');
      }
      await Promise.all(on.map((i) => i.proc.exited));
      if ((this.creating.get(network)?.size ?? 0) === 0) return;
    }
  }

  /** Code bundles mounted in live instances. */
  liveCodeShas(): Set<string> {
    const out = new Set<string>();
    for (const i of this.instances.values()) if (i.codeSha && i.state !== 'dead') out.add(i.codeSha);
    return out;
  }

  idleCount(fnName: string): number {
    let n = 0;
    for (const i of this.byFn.get(fnName) ?? []) if (i.state === 'idle') n++;
    return n;
  }

  list(): PoolInstanceView[] {
    const now = this.policyClock.now();
    const out: PoolInstanceView[] = [];
    for (const i of this.instances.values()) {
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
    const left = Math.max(0, Math.round((i.keepUntil - now) / 1000));
    const d = this.opts.policy.explain(i.fnName!, now).decisions;
    const base = i.idleCause === 'prewarm' ? `pre-warmed by ${this.opts.policy.name} for a predicted arrival` : `kept by ${this.opts.policy.name} after its last use`;
    return `${base}; ${Number.isFinite(i.keepUntil) ? `${left} s left` : 'no expiry'}; target ${d.targetInstances} instance(s)`;
  }

  // ---- admission (per-function concurrency) ----

  private admit(key: string, limit: number, priority: 'sync' | 'async'): Promise<void> {
    const busy = this.busyByFn.get(key) ?? 0;
    const queue = this.waiters.get(key);
    if (busy < limit && (!queue || queue.length === 0)) {
      this.busyByFn.set(key, busy + 1);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      const w: Waiter = { priority, resolve, reject };
      if (priority === 'sync') {
        const firstAsync = list.findIndex((x) => x.priority === 'async');
        if (firstAsync < 0) list.push(w);
        else list.splice(firstAsync, 0, w);
      } else list.push(w);
      this.waiters.set(key, list);
    });
  }

  private leave(key: string): void {
    const list = this.waiters.get(key);
    const next = list?.shift();
    if (list && list.length === 0) this.waiters.delete(key);
    if (next) {
      next.resolve(); // the slot passes to the next waiter
      return;
    }
    const busy = (this.busyByFn.get(key) ?? 1) - 1;
    if (busy <= 0) this.busyByFn.delete(key);
    else this.busyByFn.set(key, busy);
  }

  // ---- acquisition ----

  private async acquire(fn: PoolFunction, key: string, codeDir: string, first: FirstInvocation): Promise<Acquired> {
    const warm = this.takeIdle(fn.name, key);
    if (warm) return { inst: warm, start: 'warm', initMs: 0 };
    return this.specializeFresh(fn, key, codeDir, first);
  }

  /**
   * Takes a generic instance (or makes one) and loads fn's handler in it. With `first` (not for a
   * pre-warm), the invocation is sent together with the specialise message (one round trip less)
   * and its outcome comes back as `first`.
   */
  private async specializeFresh(fn: PoolFunction, key: string, codeDir: string, first?: FirstInvocation): Promise<Acquired> {
    const prewarm = first === undefined;
    if (!prewarm) {
      const list = this.coldArrivals[fn.runtime];
      list.push(this.policyClock.now());
      if (list.length > 10_000) list.splice(0, list.length - 10_000);
    }
    const network = fn.network ?? null;
    let inst = this.takeGeneric(fn.runtime, network);
    this.makeRoom(inst ? Math.max(0, fn.memoryMb - inst.memoryMb) : fn.memoryMb);
    let start: StartKind = 'generic';
    const t0 = performance.now();
    if (!inst) {
      start = 'cold';
      try {
        inst = await this.create(fn.runtime, network, true);
      } catch (err) {
        this.opts.log.error({ err, fn: fn.name }, 'cannot create an instance');
        throw new HearthError('UNAVAILABLE', `cannot start a ${fn.runtime} instance: ${(err as Error).message}`, { cause: err });
      }
    }
    inst.state = 'specializing';
    inst.fnKey = key;
    inst.fnName = fn.name;
    let mine = this.byFn.get(fn.name);
    if (mine === undefined) this.byFn.set(fn.name, (mine = new Set()));
    mine.add(inst);
    inst.codeSha = fn.codeSha256;
    try {
      // A generic instance is sized like a default function: most starts need no cgroup write.
      if (fn.memoryMb !== inst.memoryMb) inst.proc.setLimits({ memoryMb: fn.memoryMb });
      inst.memoryMb = fn.memoryMb;
      inst.proc.mountCode(codeDir);
    } catch (err) {
      void this.terminate(inst, 'specialisation failed');
      this.opts.log.error({ err, fn: fn.name }, 'cannot mount code into instance');
      throw new HearthError('INTERNAL', `cannot mount the code of ${fn.name}: ${(err as Error).message}`, { cause: err });
    }
    const initTimeout = Math.min(this.opts.initTimeoutMs ?? 10_000, Math.max(fn.timeoutMs, 1000));
    const spec = { name: fn.name, handler: fn.handler, memoryMb: fn.memoryMb, timeoutMs: fn.timeoutMs, env: fn.env };
    let specialized: Promise<{ initMs: number }>;
    let outcome: Promise<InvokeOutcome> | undefined;
    if (first) {
      inst.invocations++;
      ({ specialized, outcome } = inst.conn.specializeThenInvoke(spec, first.id, first.event, fn.timeoutMs));
    } else {
      specialized = inst.conn.specialize(spec);
    }
    const res = await this.withDeadline(specialized.then((r) => ({ ok: true as const, initMs: r.initMs })), initTimeout);
    const initMs = performance.now() - t0;
    if (res.kind === 'ok') {
      inst.state = 'busy';
      return { inst, start, initMs, ...(outcome ? { first: outcome } : {}) };
    }
    void this.terminate(inst, 'init failed');
    const error = res.kind === 'timeout' ? { type: 'Timeout', message: `handler import did not finish within ${initTimeout} ms` } : await this.describeFailure(inst, res.error, 'InitError');
    return { error, start, initMs, inst };
  }

  /** The most recently used idle instance of this function version, marked busy. Its keep-alive timer stays armed (see release). */
  private takeIdle(fnName: string, key: string): Instance | undefined {
    let best: Instance | undefined;
    for (const i of this.byFn.get(fnName) ?? []) {
      if (i.state === 'idle' && i.fnKey === key && (!best || i.lastUsedAt > best.lastUsedAt)) best = i;
    }
    if (best) best.state = 'busy';
    return best;
  }

  private takeGeneric(runtime: Runtime, network: string | null): Instance | undefined {
    for (const i of this.instances.values()) {
      if (i.state === 'generic' && i.runtime === runtime && i.network === network) {
        i.state = 'specializing';
        return i;
      }
    }
    return undefined;
  }

  private create(runtime: Runtime, network: string | null, forRequest = false): Promise<Instance> {
    const made = this.createUntracked(runtime, network, forRequest);
    if (network === null) return made;
    let set = this.creating.get(network);
    if (set === undefined) this.creating.set(network, (set = new Set()));
    set.add(made);
    const done = (): void => {
      set.delete(made);
      if (set.size === 0 && this.creating.get(network) === set) this.creating.delete(network);
    };
    made.then(done, done);
    return made;
  }

  private async createUntracked(runtime: Runtime, network: string | null, forRequest: boolean): Promise<Instance> {
    const id = newId(runtime === 'node' ? 'n' : 'p');
    const proc = await this.opts.spawner.spawn(runtime, id, this.opts.genericLimits, { ...(network === null ? {} : { network }), forRequest });
    const conn = this.opts.connect(proc.socket);
    const inst = new Instance(id, runtime, proc, conn, this.opts.clock.now(), this.opts.genericLimits.memoryMb, network);
    this.instances.set(id, inst);
    void proc.exited.then((info) => {
      const was = inst.state;
      inst.state = 'dead';
      if (inst.keepAliveTimer) this.policyClock.clearTimeout(inst.keepAliveTimer);
      this.instances.delete(id);
      this.forgetFn(inst);
      this.retired.delete(id);
      conn.close();
      if (was === 'generic' || was === 'idle') this.opts.log.info({ instance: id, exit: info, was }, 'instance ended');
      if (was === 'generic') this.refill(runtime, network);
    });
    try {
      await this.withReady(inst);
    } catch (err) {
      proc.kill();
      this.instances.delete(id);
      throw err;
    }
    return inst;
  }

  private async withReady(inst: Instance): Promise<void> {
    const r = await this.withDeadline(inst.conn.ready().then(() => ({ ok: true as const })), 10_000);
    if (r.kind !== 'ok') throw new Error(r.kind === 'timeout' ? 'runtime did not become ready within 10 s' : `runtime exited before ready: ${String(r.error)}`);
  }

  /**
   * Keeps the generic pool of `runtime` on `network` at its target, one spawn at a time per pool,
   * off the request path (network namespaces and veths are prepared here too).
   */
  private refill(runtime: Runtime, network: string | null = null): void {
    const key = slotKey(runtime, network);
    if (this.stopped || this.refilling.has(key)) return;
    const target = (): number => this.genericTarget.get(key) ?? 0;
    const generic = (): number => [...this.instances.values()].filter((i) => i.runtime === runtime && i.network === network && i.state === 'generic').length;
    if (generic() >= target()) return;
    this.refilling.add(key);
    void (async () => {
      try {
        while (!this.stopped && generic() < target()) {
          this.makeRoom(this.opts.genericLimits.memoryMb);
          const inst = await this.create(runtime, network);
          if (this.stopped) {
            void this.terminate(inst, 'daemon stopping');
            break;
          }
          if (inst.state !== 'starting') continue; // ended meanwhile (its network is being deleted)
          if (generic() >= target()) {
            void this.terminate(inst, 'generic pool shrunk');
            break;
          }
          inst.state = 'generic';
          this.consecutiveSpawnFailures.delete(key);
        }
      } catch (err) {
        if (this.stopped) return; // an instance starting while the daemon stops
        const fails = (this.consecutiveSpawnFailures.get(key) ?? 0) + 1;
        this.consecutiveSpawnFailures.set(key, fails);
        this.opts.log.error({ err, runtime, network, fails }, 'generic pool refill failed');
        const delay = Math.min(30_000, (this.opts.refillBackoffMs ?? 500) * 2 ** Math.min(fails, 6));
        this.refillTimer = this.opts.clock.setTimeout(() => this.refill(runtime, network), delay);
        this.refillTimer.unref?.();
      } finally {
        this.refilling.delete(key);
      }
    })();
  }

  // ---- running ----

  /** Runs one invocation on inst (or waits for `sent`, one already sent with the specialise). */
  private async run(inst: Instance, id: string, event: unknown, timeoutMs: number, sent?: Promise<InvokeOutcome>): Promise<{ outcome: InvokeOutcome; healthy: boolean }> {
    const t0 = this.opts.clock.now();
    let pending = sent;
    if (!pending) {
      inst.invocations++;
      pending = inst.conn.invoke(id, event, t0 + timeoutMs);
    }
    const res = await this.withDeadline(pending.then((o) => ({ ok: true as const, o })), timeoutMs);
    if (res.kind === 'ok') {
      const exiting = !res.o.ok && res.o.exiting === true;
      if (exiting) void this.terminate(inst, 'runtime is exiting');
      return { outcome: res.o, healthy: !exiting };
    }
    const durationMs = this.opts.clock.now() - t0;
    if (res.kind === 'timeout') {
      void this.terminate(inst, 'timeout');
      return { outcome: { ok: false, error: { type: 'Timeout', message: `Task timed out after ${timeoutMs} ms` }, logs: '', durationMs }, healthy: false };
    }
    const error = await this.describeFailure(inst, res.error, 'RuntimeExit');
    return { outcome: { ok: false, error, logs: '', durationMs }, healthy: false };
  }

  /**
   * Races `work` against a deadline. An instance's death ends its `work` too: create() closes the
   * connection when the process exits, which rejects the pending request (racing `proc.exited`
   * here instead would add a reaction to that promise on every call of a long-lived instance).
   */
  private withDeadline<T extends { ok: true }>(work: Promise<T>, ms: number): Promise<({ kind: 'ok' } & T) | { kind: 'timeout' } | { kind: 'failed'; error: unknown }> {
    return new Promise((resolve) => {
      const timer = this.opts.clock.setTimeout(() => resolve({ kind: 'timeout' }), ms);
      work.then(
        (v) => {
          this.opts.clock.clearTimeout(timer);
          resolve({ kind: 'ok', ...v });
        },
        (error: unknown) => {
          this.opts.clock.clearTimeout(timer);
          resolve({ kind: 'failed', error });
        },
      );
    });
  }


  /** Turns a failed call into the function's error: InitError from the shim, else OOM or exit. */
  private async describeFailure(inst: Instance, err: unknown, fallback: 'InitError' | 'RuntimeExit'): Promise<FunctionErrorInfo> {
    const shimError = (err as { functionError?: FunctionErrorInfo }).functionError;
    if (shimError) return { type: fallback === 'InitError' ? 'InitError' : shimError.type, message: shimError.message, ...(shimError.stack ? { stack: shimError.stack } : {}) };
    inst.proc.kill();
    const exit = await inst.proc.exited;
    if (exit.oomKilled) return { type: 'OutOfMemory', message: `the function exceeded its memory limit and was killed` };
    const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    return { type: fallback === 'InitError' ? 'InitError' : 'RuntimeExit', message: `the runtime exited (${how})` };
  }

  private release(inst: Instance, cause: 'finish' | 'prewarm'): void {
    if (inst.state === 'dead') return;
    if (this.retired.has(inst.id) || this.stopped) {
      void this.terminate(inst, 'function retired');
      return;
    }
    const now = this.policyClock.now();
    const fnName = inst.fnName ?? '';
    inst.state = 'idle';
    inst.idleCause = cause;
    if (cause === 'finish') inst.lastUsedAt = now;
    const keep = Math.max(0, this.opts.policy.keepAliveMs(fnName, now, { ...this.counts(fnName), cause }));
    if (keep === 0) {
      void this.terminate(inst, 'the model does not expect another arrival soon');
      this.planPrewarm(fnName);
      return;
    }
    inst.keepUntil = now + keep;
    if (Number.isFinite(keep)) this.armKeepAlive(inst);
    if (cause === 'finish') this.planPrewarm(fnName);
  }

  /**
   * Ensures a timer fires no later than `inst.keepUntil`. One timer per instance, re-armed lazily:
   * a warm instance in use keeps its timer, and each release only moves `keepUntil` (a timer per
   * invocation was a measurable share of the warm path).
   */
  private armKeepAlive(inst: Instance): void {
    if (inst.keepAliveTimer !== undefined) {
      if (inst.keepAliveAt <= inst.keepUntil) return; // it fires first and re-arms for the rest
      this.policyClock.clearTimeout(inst.keepAliveTimer);
    }
    inst.keepAliveAt = inst.keepUntil;
    inst.keepAliveTimer = this.policyClock.setTimeout(() => this.onKeepAliveTimer(inst), Math.max(0, inst.keepUntil - this.policyClock.now()));
    inst.keepAliveTimer.unref?.();
  }

  private onKeepAliveTimer(inst: Instance): void {
    inst.keepAliveTimer = undefined;
    if (inst.state !== 'idle') return; // in use: its next release arms the timer again
    if (this.policyClock.now() < inst.keepUntil) {
      this.armKeepAlive(inst);
      return;
    }
    void this.terminate(inst, 'keep-alive expired');
    this.planPrewarm(inst.fnName ?? '');
  }

  private forgetFn(inst: Instance): void {
    if (inst.fnName === null) return;
    const mine = this.byFn.get(inst.fnName);
    mine?.delete(inst);
    if (mine?.size === 0) this.byFn.delete(inst.fnName);
  }

  /** Ends an idle instance now (the reaper's verb); false when it is not idle. */
  reap(id: string, why: string): boolean {
    const inst = this.instances.get(id);
    if (!inst || inst.state !== 'idle') return false;
    void this.terminate(inst, why);
    return true;
  }

  idleInstances(): readonly Instance[] {
    return [...this.instances.values()].filter((i) => i.state === 'idle');
  }

  private async terminate(inst: Instance, why: string): Promise<void> {
    if (inst.keepAliveTimer) this.policyClock.clearTimeout(inst.keepAliveTimer);
    inst.keepAliveTimer = undefined;
    if (inst.state !== 'dead') {
      this.opts.log.debug({ instance: inst.id, fn: inst.fnName, why }, 'ending instance');
      inst.state = 'dead';
    }
    inst.proc.kill();
    await inst.proc.exited;
  }
}

function slotKey(runtime: Runtime, network: string | null): string {
  return network === null ? runtime : `${runtime}@${network}`;
}

function parseSlot(key: string): [Runtime, string | null] {
  const at = key.indexOf('@');
  return at < 0 ? [key as Runtime, null] : [key.slice(0, at) as Runtime, key.slice(at + 1)];
}

export function fnKey(fn: PoolFunction): string {
  return `${fn.name}@${fn.updatedAt}`;
}

/** Unique per daemon run (random run prefix + counter): cheap on the warm path. */
const idRun = randomBytes(3).toString('hex');
let idSeq = 0;
export function newId(prefix: string): string {
  return `${prefix}-${idRun}${(++idSeq).toString(36).padStart(4, '0')}`;
}
