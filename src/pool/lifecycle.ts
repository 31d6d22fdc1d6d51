/**
 * An instance's life, from spawn to end: create (spawn a sandbox, open its runtime connection,
 * wait for `ready`), specialise (set the function's memory limit, mount its code, load its
 * handler), run one invocation under its timeout, and end. Failures a function causes (throw,
 * timeout, OOM, exit, bad import) become a FunctionErrorInfo; `create` and `specialize` throw a
 * HearthError for faults of the engine (the sandbox cannot start, the code cannot be mounted).
 *
 * Deadlines run on the pool's `clock`. Which instance to use, and for how long to keep it, is
 * decided elsewhere (pool.ts, keep-alive.ts). Concurrency: event-loop only; any number of
 * instances may be in any step at once.
 */
import type { Clock } from '../clock.js';
import { HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FunctionErrorInfo, InvokeOutcome, Runtime } from '../runtimes/types.js';
import type { InstanceLimits } from '../sandbox/types.js';
import { Instance, newId, type InstanceState, type InstanceTable } from './instances.js';
import type { ConnectionFactory, PoolFunction, Spawner, StartKind } from './types.js';

export interface LifecycleOptions {
  spawner: Spawner;
  connect: ConnectionFactory;
  clock: Clock;
  log: Logger;
  table: InstanceTable;
  /** Limits every instance is spawned with (a generic instance is sized like a default function). */
  genericLimits: InstanceLimits;
  /** Upper bound for a handler's import (init) time; default 10 s. */
  initTimeoutMs?: number;
  /** The host uid/gid root inside a function's instances maps to (PoolOptions.identity). */
  identity?: (fn: string) => { uid: number; gid: number };
  /** Called as an instance is ended or found gone, before anything else: drop its timers. */
  onEnding: (inst: Instance) => void;
  /** Called once per instance after its process exited and it left the table; `was`: its state then. */
  onExited: (inst: Instance, was: InstanceState) => void;
}

/** The invocation sent along with a specialise (not for a pre-warm). */
export interface FirstInvocation {
  id: string;
  event: unknown;
}

/** A specialised instance (busy, with the first invocation's outcome pending if one was sent), or why not. */
export type Specialized =
  | { inst: Instance; start: StartKind; initMs: number; first?: Promise<InvokeOutcome> }
  | { error: FunctionErrorInfo; start: StartKind; initMs: number; inst?: Instance };

type Raced<T> = ({ kind: 'ok' } & T) | { kind: 'timeout' } | { kind: 'failed'; error: unknown };

const READY_TIMEOUT_MS = 10_000;

export class InstanceLifecycle {
  /** Instance creations in progress per network (their namespace is leased before they are listed). */
  private readonly creating = new Map<string, Set<Promise<unknown>>>();

  constructor(private readonly opts: LifecycleOptions) {}

  /** Spawns an instance and waits for its runtime's `ready`; it is in the table, state `starting`. */
  create(runtime: Runtime, network: string | null, forRequest = false): Promise<Instance> {
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

  /** Creations in progress on `network` (settled or not), for draining it. */
  creatingOn(network: string): Promise<unknown>[] {
    return [...(this.creating.get(network) ?? [])];
  }

  private async createUntracked(runtime: Runtime, network: string | null, forRequest: boolean): Promise<Instance> {
    const { spawner, genericLimits, table } = this.opts;
    const id = newId(runtime === 'node' ? 'n' : runtime === 'provided' ? 'c' : 'p');
    const proc = await spawner.spawn(runtime, id, genericLimits, { ...(network === null ? {} : { network }), forRequest });
    const conn = this.opts.connect(proc.socket);
    const inst = new Instance(id, runtime, proc, conn, this.opts.clock.now(), genericLimits.memoryMb, network);
    table.add(inst);
    void proc.exited.then((info) => {
      const was = inst.state;
      inst.state = 'dead';
      this.opts.onEnding(inst);
      table.remove(inst);
      conn.close();
      if (was === 'generic' || was === 'idle') this.opts.log.info({ instance: id, exit: info, was }, 'instance ended');
      this.opts.onExited(inst, was);
    });
    try {
      const r = await this.withDeadline(
        conn.ready().then(() => ({ ok: true as const })),
        READY_TIMEOUT_MS,
      );
      if (r.kind !== 'ok')
        throw new Error(r.kind === 'timeout' ? 'runtime did not become ready within 10 s' : `runtime exited before ready: ${String(r.error)}`);
    } catch (err) {
      proc.kill();
      table.remove(inst);
      throw err;
    }
    return inst;
  }

  /**
   * Dedicates `inst` (state `specializing`) to `fn` and loads its handler. With `first`, the
   * invocation is sent together with the specialise message (one round trip less) and its outcome
   * comes back as `first`. `t0`: when the start began (performance.now()), for `initMs`. On an
   * init failure the instance is ended and the error returned; a mount failure throws INTERNAL.
   */
  async specialize(
    inst: Instance,
    fn: PoolFunction,
    key: string,
    codeDir: string,
    start: StartKind,
    t0: number,
    first?: FirstInvocation,
  ): Promise<Specialized> {
    inst.state = 'specializing';
    this.opts.table.assign(inst, fn, key);
    let userns = false;
    try {
      // A generic instance is sized like a default function: most starts need no cgroup write.
      if (fn.memoryMb !== inst.memoryMb) inst.proc.setLimits({ memoryMb: fn.memoryMb });
      inst.memoryMb = fn.memoryMb;
      inst.proc.mountCode(codeDir);
      const id = this.opts.identity?.(fn.name);
      // Before the specialise message: the runtime switches to root inside as its first step.
      if (id && inst.proc.setIdentity(id.uid, id.gid)) userns = true;
    } catch (err) {
      void this.end(inst, 'specialisation failed');
      this.opts.log.error({ err, fn: fn.name }, 'cannot specialise instance');
      if (isHearthError(err) && err.code === 'UNAVAILABLE') throw err; // no uid left for the function
      throw new HearthError('INTERNAL', `cannot specialise an instance for ${fn.name}: ${(err as Error).message}`, { cause: err });
    }
    const initTimeout = Math.min(this.opts.initTimeoutMs ?? 10_000, Math.max(fn.timeoutMs, 1000));
    const spec = { name: fn.name, handler: fn.handler, memoryMb: fn.memoryMb, timeoutMs: fn.timeoutMs, env: fn.env, ...(userns ? { userns } : {}) };
    let specialized: Promise<{ initMs: number }>;
    let outcome: Promise<InvokeOutcome> | undefined;
    if (first) {
      inst.invocations++;
      ({ specialized, outcome } = inst.conn.specializeThenInvoke(spec, first.id, first.event, fn.timeoutMs));
    } else {
      specialized = inst.conn.specialize(spec);
    }
    const res = await this.withDeadline(
      specialized.then((r) => ({ ok: true as const, initMs: r.initMs })),
      initTimeout,
    );
    const initMs = performance.now() - t0;
    if (res.kind === 'ok') {
      inst.state = 'busy';
      return { inst, start, initMs, ...(outcome ? { first: outcome } : {}) };
    }
    void this.end(inst, 'init failed');
    const error =
      res.kind === 'timeout'
        ? { type: 'Timeout', message: `handler import did not finish within ${initTimeout} ms` }
        : await this.describeFailure(inst, res.error, 'InitError');
    return { error, start, initMs, inst };
  }

  /**
   * Runs one invocation on inst (or waits for `sent`, one already sent with the specialise).
   * `healthy: false`: the instance timed out, died or is exiting, and is being ended.
   */
  async run(
    inst: Instance,
    id: string,
    event: unknown,
    timeoutMs: number,
    sent?: Promise<InvokeOutcome>,
  ): Promise<{ outcome: InvokeOutcome; healthy: boolean }> {
    const t0 = this.opts.clock.now();
    let pending = sent;
    if (!pending) {
      inst.invocations++;
      pending = inst.conn.invoke(id, event, t0 + timeoutMs);
    }
    const res = await this.withDeadline(
      pending.then((o) => ({ ok: true as const, o })),
      timeoutMs,
    );
    if (res.kind === 'ok') {
      const exiting = !res.o.ok && res.o.exiting === true;
      if (exiting) void this.end(inst, 'runtime is exiting');
      return { outcome: res.o, healthy: !exiting };
    }
    const durationMs = this.opts.clock.now() - t0;
    if (res.kind === 'timeout') {
      void this.end(inst, 'timeout');
      return { outcome: { ok: false, error: { type: 'Timeout', message: `Task timed out after ${timeoutMs} ms` }, logs: '', durationMs }, healthy: false };
    }
    const error = await this.describeFailure(inst, res.error, 'RuntimeExit');
    return { outcome: { ok: false, error, logs: '', durationMs }, healthy: false };
  }

  /** Kills the instance; resolves once its process is gone. Idempotent. */
  async end(inst: Instance, why: string): Promise<void> {
    this.opts.onEnding(inst);
    if (inst.state !== 'dead') {
      this.opts.log.debug({ instance: inst.id, fn: inst.fnName, why }, 'ending instance');
      inst.state = 'dead';
    }
    inst.proc.kill();
    await inst.proc.exited;
  }

  /**
   * Races `work` against a deadline. An instance's death ends its `work` too: create() closes the
   * connection when the process exits, which rejects the pending request (racing `proc.exited`
   * here instead would add a reaction to that promise on every call of a long-lived instance).
   */
  private withDeadline<T extends { ok: true }>(work: Promise<T>, ms: number): Promise<Raced<T>> {
    const { clock } = this.opts;
    return new Promise((resolve) => {
      const timer = clock.setTimeout(() => resolve({ kind: 'timeout' }), ms);
      work.then(
        (v) => {
          clock.clearTimeout(timer);
          resolve({ kind: 'ok', ...v });
        },
        (error: unknown) => {
          clock.clearTimeout(timer);
          resolve({ kind: 'failed', error });
        },
      );
    });
  }

  /** Turns a failed call into the function's error: InitError from the shim, else OOM or exit. */
  private async describeFailure(inst: Instance, err: unknown, fallback: 'InitError' | 'RuntimeExit'): Promise<FunctionErrorInfo> {
    const shimError = (err as { functionError?: FunctionErrorInfo }).functionError;
    if (shimError)
      return {
        type: fallback === 'InitError' ? 'InitError' : shimError.type,
        message: shimError.message,
        ...(shimError.stack ? { stack: shimError.stack } : {}),
      };
    inst.proc.kill();
    const exit = await inst.proc.exited;
    if (exit.oomKilled) return { type: 'OutOfMemory', message: `the function exceeded its memory limit and was killed` };
    const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    return { type: fallback === 'InitError' ? 'InitError' : 'RuntimeExit', message: `the runtime exited (${how})` };
  }
}
