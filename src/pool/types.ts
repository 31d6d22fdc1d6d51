/**
 * What the pool needs from the layers below it, as small interfaces: the sandbox driver (spawns
 * instances) and the runtime connection (speaks the shim protocol). The daemon wires the real ones;
 * tests hand in fakes.
 */
import type net from 'node:net';

export type Runtime = 'node' | 'python';
export const runtimes: readonly Runtime[] = ['node', 'python'];

export interface InstanceLimits {
  memoryMb: number;
  pids: number;
  cpuPercent: number;
  tmpMb: number;
}

export interface ExitInfo {
  code: number | null;
  signal: number | null;
  oomKilled: boolean;
}

/** One sandboxed process, as the sandbox driver hands it out. */
export interface SandboxProcess {
  readonly id: string;
  readonly pid: number;
  /** The daemon's end of the instance's protocol socket (fd 3 inside). */
  readonly socket: net.Socket;
  /** Resolves once, when the process is gone and reaped. */
  readonly exited: Promise<ExitInfo>;
  kill(): void;
  /** Mounts `dir` read-only at /code inside the running sandbox. */
  mountCode(dir: string): void;
  setLimits(limits: Partial<InstanceLimits>): void;
}

export interface Spawner {
  /** Starts a generic instance; on `network`, its network namespace is joined to that network's gateway. */
  /** `forRequest`: a request waits for this instance (a cold start), start it the quickest way. */
  spawn(runtime: Runtime, id: string, limits: InstanceLimits, opts?: { network?: string; forRequest?: boolean }): Promise<SandboxProcess>;
}

export interface FunctionErrorInfo {
  type: string;
  message: string;
  stack?: string;
}

export type InvokeOutcome =
  | { ok: true; result: unknown; logs: string; durationMs: number }
  /** `exiting`: the runtime sent its last reply and is ending (the handler exited); never reuse it. */
  | { ok: false; error: FunctionErrorInfo; logs: string; durationMs: number; exiting?: boolean };

export interface SpecializeSpec {
  name: string;
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  env: Record<string, string>;
}

/** The daemon side of one instance's protocol (src/runtimes/instance-connection.ts). */
export interface RuntimeConnection {
  ready(): Promise<{ runtime: string; pid: number }>;
  specialize(spec: SpecializeSpec): Promise<{ initMs: number }>;
  invoke(id: string, event: unknown, deadlineMs: number): Promise<InvokeOutcome>;
  /** specialize, with the first invocation sent along to run right after it (budgetMs: its timeout). */
  specializeThenInvoke(
    spec: SpecializeSpec,
    id: string,
    event: unknown,
    budgetMs: number,
  ): { specialized: Promise<{ initMs: number }>; outcome: Promise<InvokeOutcome> };
  close(): void;
}

export type ConnectionFactory = (socket: net.Socket) => RuntimeConnection;
