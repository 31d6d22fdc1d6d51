/**
 * The pool's instances and its index of them. An `Instance` is one sandboxed runtime process and
 * its connection, with the state the pool keeps of it; the `InstanceTable` holds the live ones
 * and answers the questions every part of the pool asks (an idle instance of this function
 * version? a generic one of this runtime? how many are idle or busy?).
 *
 * States: starting → generic → specializing → busy ⇄ idle → dead (a new instance made for a
 * request goes starting → specializing). An instance serves one function version for life.
 *
 * Concurrency: event-loop only; nothing here does I/O or ends a process (lifecycle.ts does).
 */
import { randomBytes } from 'node:crypto';
import type { TimerHandle } from '../clock.js';
import type { Runtime, RuntimeConnection } from '../runtimes/types.js';
import type { SandboxProcess } from '../sandbox/types.js';
import type { PoolFunction } from './types.js';

export type InstanceState = 'starting' | 'generic' | 'specializing' | 'idle' | 'busy' | 'dead';

export class Instance {
  state: InstanceState = 'starting';
  /** The function version it serves (`fnKey`), or null while generic. */
  fnKey: string | null = null;
  fnName: string | null = null;
  /** The code bundle mounted at /code (kept on disk while any instance has it mounted). */
  codeSha: string | null = null;
  lastUsedAt: number;
  /** Armed while idle or since; fires at `keepAliveAt` and checks `keepUntil` then (keep-alive.ts). */
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

/** Identifies one version of a function: instances of another version are never reused. */
export function fnKey(fn: PoolFunction): string {
  return `${fn.name}@${fn.updatedAt}`;
}

/** Unique per daemon run (random run prefix + counter): cheap on the warm path. */
const idRun = randomBytes(3).toString('hex');
let idSeq = 0;
export function newId(prefix: string): string {
  return `${prefix}-${idRun}${(++idSeq).toString(36).padStart(4, '0')}`;
}

export class InstanceTable {
  private readonly all = new Map<string, Instance>();
  /** Live instances specialised for each function (by name, any version): the warm path's index. */
  private readonly byFn = new Map<string, Set<Instance>>();
  /** Instances to end when their current work finishes (function retired, network deleted). */
  readonly retired = new Set<string>();

  add(inst: Instance): void {
    this.all.set(inst.id, inst);
  }

  /** Forgets an instance (it has exited, or never became ready). */
  remove(inst: Instance): void {
    this.all.delete(inst.id);
    this.retired.delete(inst.id);
    if (inst.fnName === null) return;
    const mine = this.byFn.get(inst.fnName);
    mine?.delete(inst);
    if (mine?.size === 0) this.byFn.delete(inst.fnName);
  }

  get(id: string): Instance | undefined {
    return this.all.get(id);
  }

  values(): IterableIterator<Instance> {
    return this.all.values();
  }

  /** Dedicates `inst` to `fn` (version `key`) for the rest of its life. */
  assign(inst: Instance, fn: PoolFunction, key: string): void {
    inst.fnKey = key;
    inst.fnName = fn.name;
    inst.codeSha = fn.codeSha256;
    let mine = this.byFn.get(fn.name);
    if (mine === undefined) this.byFn.set(fn.name, (mine = new Set()));
    mine.add(inst);
  }

  /** The instances of a function, any version. */
  ofFunction(fnName: string): Iterable<Instance> {
    return this.byFn.get(fnName) ?? [];
  }

  /** Idle and busy (or specialising) instances of a function, as the policy counts them. */
  counts(fnName: string): { idle: number; busy: number } {
    let idle = 0;
    let busy = 0;
    for (const i of this.ofFunction(fnName)) {
      if (i.state === 'idle') idle++;
      else if (i.state === 'busy' || i.state === 'specializing') busy++;
    }
    return { idle, busy };
  }

  /** The most recently used idle instance of this function version, marked busy. */
  takeIdle(fnName: string, key: string): Instance | undefined {
    let best: Instance | undefined;
    for (const i of this.ofFunction(fnName)) {
      if (i.state === 'idle' && i.fnKey === key && (!best || i.lastUsedAt > best.lastUsedAt)) best = i;
    }
    if (best) best.state = 'busy';
    return best;
  }

  /** A generic instance of `runtime` on `network`, marked specializing. */
  takeGeneric(runtime: Runtime, network: string | null): Instance | undefined {
    for (const i of this.all.values()) {
      if (i.state === 'generic' && i.runtime === runtime && i.network === network) {
        i.state = 'specializing';
        return i;
      }
    }
    return undefined;
  }

  genericCount(runtime: Runtime, network: string | null): number {
    let n = 0;
    for (const i of this.all.values()) if (i.state === 'generic' && i.runtime === runtime && i.network === network) n++;
    return n;
  }

  /** Memory reserved by live instances, MB. */
  memoryInUseMb(): number {
    let mb = 0;
    for (const i of this.all.values()) if (i.state !== 'dead') mb += i.memoryMb;
    return mb;
  }

  /** Code bundles mounted in live instances. */
  liveCodeShas(): Set<string> {
    const out = new Set<string>();
    for (const i of this.all.values()) if (i.codeSha && i.state !== 'dead') out.add(i.codeSha);
    return out;
  }
}
