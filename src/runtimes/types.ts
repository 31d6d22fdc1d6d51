/**
 * The runtime layer's contracts, declared once: which runtimes exist, and what the layers above
 * (the pool) may ask of one instance's runtime through its connection. InstanceConnection
 * (instance-connection.ts) is the real implementation; src/pool/fake-spawner.ts the in-memory one.
 */

/**
 * The runtimes Hearth runs functions in. `provided`: a custom runtime, the bundle's `bootstrap`
 * served the Lambda Runtime API by a relay in the instance (src/runtimes/provided, docs/runtimes-provided.md).
 */
export const RUNTIMES = ['node', 'python', 'provided'] as const;
export type Runtime = (typeof RUNTIMES)[number];
/** The runtimes whose shim loads a `file.function` handler itself (not a custom `bootstrap`). */
export type ShimRuntime = Exclude<Runtime, 'provided'>;

/** A function's error as the pool reports it: the thrown value's class name, message, stack. */
export interface FunctionErrorInfo {
  type: string;
  message: string;
  stack?: string;
}

/**
 * What an invocation produced. `exiting: true` (error outcomes only) means the runtime said this
 * was its last reply: the process is exiting and the instance must not be reused.
 */
export type InvokeOutcome =
  { ok: true; result: unknown; logs: string; durationMs: number } | { ok: false; error: FunctionErrorInfo; logs: string; durationMs: number; exiting?: true };

/** What a runtime needs to load a function (the `specialize` message, src/runtimes/protocol.ts). */
export interface SpecializeSpec {
  /** Function name (context.functionName). */
  name: string;
  /** `file.function` (Node: `path/to/file.fn`, nested `file.obj.fn`; Python: `pkg/mod.fn`). */
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  /** Applied to the process environment before the handler is loaded. */
  env: Record<string, string>;
  /**
   * The daemon has mapped root inside the instance's user namespace to the function's host uid:
   * the runtime becomes uid/gid 0 and drops its capabilities before loading anything.
   */
  userns?: boolean;
}

/** The runtime's `ready` announcement. */
export interface ReadyInfo {
  runtime: Runtime;
  /** The shim's pid inside its PID namespace (informational only). */
  pid: number;
}

/**
 * The daemon's side of one instance's runtime: one request at a time. Rejections are connection
 * failures (the process exited, a protocol violation, closed); an error the function causes is an
 * `ok: false` outcome. A failed specialisation rejects with an error carrying `functionError`
 * (the runtime's InitError). See instance-connection.ts for the full contract.
 */
export interface RuntimeConnection {
  ready(): Promise<ReadyInfo>;
  specialize(spec: SpecializeSpec): Promise<{ initMs: number }>;
  /** `deadlineMs`: wall-clock ms since the epoch by which the handler must have answered. */
  invoke(id: string, event: unknown, deadlineMs: number): Promise<InvokeOutcome>;
  /** specialize, with the first invocation sent along to run right after it (budgetMs: its timeout). */
  specializeThenInvoke(
    spec: SpecializeSpec,
    id: string,
    event: unknown,
    budgetMs: number,
  ): { specialized: Promise<{ initMs: number }>; outcome: Promise<InvokeOutcome> };
  /** Ends the connection; a pending request rejects. Idempotent. */
  close(): void;
}
