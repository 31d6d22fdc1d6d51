/**
 * An in-process stand-in for the sandbox driver and runtime shims: instances are plain objects
 * whose "functions" are JavaScript closures registered by handler name. Real code, used by unit
 * tests of the pool and the dispatcher, and by the simulator-style checks that need no root.
 */
import net from 'node:net';
import type { InvokeOutcome, ReadyInfo, Runtime, RuntimeConnection, SpecializeSpec } from '../runtimes/types.js';
import type { InstanceLimits, SandboxExit, SandboxProcess } from '../sandbox/types.js';
import type { Spawner } from './types.js';

export type FakeHandler = (event: unknown, ctx: { functionName: string; invocationId: string }) => unknown;

export class FakeProcess implements SandboxProcess {
  readonly socket = new net.Socket();
  readonly exited: Promise<SandboxExit>;
  mounted: string | null = null;
  limits: Partial<InstanceLimits>;
  killed = false;
  oom = false;
  private resolveExit!: (e: SandboxExit) => void;
  constructor(
    readonly id: string,
    readonly pid: number,
    readonly runtime: Runtime,
    limits: InstanceLimits,
  ) {
    this.limits = { ...limits };
    this.exited = new Promise((r) => (this.resolveExit = r));
  }
  kill(): void {
    if (this.killed) return;
    this.killed = true;
    setImmediate(() => this.resolveExit({ code: null, signal: 9, oomKilled: this.oom }));
  }
  /** Simulates the runtime dying on its own (exit or OOM kill). */
  crash(oom = false): void {
    this.oom = oom;
    this.kill();
  }
  mountCode(dir: string): void {
    if (this.mounted) throw new Error('code already mounted');
    this.mounted = dir;
  }
  setLimits(l: Partial<InstanceLimits>): void {
    Object.assign(this.limits, l);
  }
  /** The host ids root inside was mapped to (setIdentity), if any. */
  identity: { uid: number; gid: number } | undefined;
  setIdentity(uid: number, gid: number): boolean {
    if (this.identity) throw new Error('identity already mapped');
    this.identity = { uid, gid };
    return true;
  }
}

class FakeConnection implements RuntimeConnection {
  private fn: FakeHandler | undefined;
  private name = '';
  constructor(
    private readonly proc: FakeProcess,
    private readonly spawner: FakeSpawner,
  ) {}
  async ready(): Promise<ReadyInfo> {
    return { runtime: this.proc.runtime, pid: 1 };
  }
  async specialize(spec: SpecializeSpec): Promise<{ initMs: number }> {
    const fn = this.spawner.handlers.get(`${this.proc.mounted}:${spec.handler}`);
    if (!fn) {
      const e = new Error('init failed') as Error & { functionError: unknown };
      e.functionError = { type: 'InitError', message: `handler ${spec.handler} not found in ${this.proc.mounted}` };
      throw e;
    }
    this.fn = fn;
    this.name = spec.name;
    return { initMs: 0.1 };
  }
  async invoke(id: string, event: unknown): Promise<InvokeOutcome> {
    if (this.proc.killed) throw Object.assign(new Error('instance exited'), { code: 'INSTANCE_EXITED' });
    const fn = this.fn!;
    const t0 = performance.now();
    const death = this.proc.exited.then(() => {
      throw Object.assign(new Error('instance exited'), { code: 'INSTANCE_EXITED' });
    });
    death.catch(() => {});
    try {
      const result = await Promise.race([Promise.resolve(fn(event, { functionName: this.name, invocationId: id })), death]);
      return { ok: true, result, logs: '', durationMs: performance.now() - t0 };
    } catch (err) {
      if ((err as { code?: string }).code === 'INSTANCE_EXITED') throw err;
      const e = err as Error;
      return { ok: false, error: { type: e.name ?? 'Error', message: e.message ?? String(err) }, logs: '', durationMs: performance.now() - t0 };
    }
  }
  specializeThenInvoke(spec: SpecializeSpec, id: string, event: unknown): { specialized: Promise<{ initMs: number }>; outcome: Promise<InvokeOutcome> } {
    const specialized = this.specialize(spec);
    const outcome = specialized.then(
      () => this.invoke(id, event),
      (): InvokeOutcome => ({ ok: false, error: { type: 'InitError', message: 'instance is not specialised' }, logs: '', durationMs: 0 }),
    );
    outcome.catch(() => undefined);
    return { specialized, outcome };
  }
  close(): void {}
}

export class FakeSpawner implements Spawner {
  readonly handlers = new Map<string, FakeHandler>();
  readonly processes: FakeProcess[] = [];
  private readonly byPid = new WeakMap<net.Socket, FakeProcess>();
  private nextPid = 1000;
  spawnCount = 0;
  /** When set, spawn fails with this error. */
  failWith: Error | undefined;
  /** While set, spawns wait for it (a spawn in progress, e.g. one preparing its network). */
  gate: Promise<void> | undefined;

  /** Registers `handler` (e.g. `index.handler`) for code directory `dir`. */
  define(dir: string, handler: string, fn: FakeHandler): void {
    this.handlers.set(`${dir}:${handler}`, fn);
  }

  async spawn(runtime: Runtime, id: string, limits: InstanceLimits): Promise<SandboxProcess> {
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    this.spawnCount++;
    const p = new FakeProcess(id, this.nextPid++, runtime, limits);
    this.processes.push(p);
    this.byPid.set(p.socket, p);
    return p;
  }

  /** The ConnectionFactory matching this spawner's processes. */
  readonly connect = (socket: net.Socket): RuntimeConnection => {
    const p = this.byPid.get(socket);
    if (!p) throw new Error('unknown fake socket');
    return new FakeConnection(p, this);
  };

  live(): FakeProcess[] {
    return this.processes.filter((p) => !p.killed);
  }
}
