/**
 * The pool's contracts: what it needs from below (a Spawner that starts sandboxed instances, a
 * ConnectionFactory that speaks to their runtime), what it knows of a function, and what its
 * callers (the dispatcher, the daemon's API) give and get. The sandbox and runtime contracts it
 * builds on are declared in src/sandbox/types.ts and src/runtimes/types.ts.
 */
import type net from 'node:net';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Policy } from '../model/policy.js';
import type { FunctionRecord } from '../registry/function-spec.js';
import type { FunctionErrorInfo, Runtime, RuntimeConnection } from '../runtimes/types.js';
import type { InstanceLimits, SandboxProcess } from '../sandbox/types.js';

export interface Spawner {
  /**
   * Starts a generic instance; on `network`, its network namespace is joined to that network's
   * gateway. `forRequest`: a request waits for this instance (a cold start), start it the quickest way.
   */
  spawn(runtime: Runtime, id: string, limits: InstanceLimits, opts?: { network?: string; forRequest?: boolean }): Promise<SandboxProcess>;
}

/** Opens the runtime connection over a new instance's socket. */
export type ConnectionFactory = (socket: net.Socket) => RuntimeConnection;

/**
 * What the pool needs to know of a function: the registry's record, less what only the registry
 * and the queue use. `network`: the private network its instances join, if any. `updatedAt`
 * changes whenever the definition changes; instances of another version are never reused.
 */
export type PoolFunction = Pick<
  FunctionRecord,
  'name' | 'runtime' | 'handler' | 'memoryMb' | 'timeoutMs' | 'env' | 'concurrency' | 'codeSha256' | 'network' | 'updatedAt'
>;

/** How an invocation got its instance: an idle one of its function, a generic one, a new one. */
export type StartKind = 'warm' | 'generic' | 'cold';

export interface InvokeRequest {
  fn: PoolFunction;
  /** Directory of the function's unpacked code on the host. */
  codeDir: string;
  event: unknown;
  invocationId?: string;
  /** Synchronous callers wait ahead of queued (async) events. */
  priority?: 'sync' | 'async';
  /**
   * Refuse (TOO_MANY_REQUESTS) instead of waiting when the function's concurrency is all in use
   * (the Lambda API's reserved-concurrency throttle). Default: wait in the admission queue.
   */
  refuseWhenBusy?: boolean;
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

/** A function's current definition and the directory of its unpacked code. */
export interface PoolTarget {
  fn: PoolFunction;
  codeDir: string;
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
  lookup?: (name: string) => PoolTarget | undefined;
  /** Memory for all instances, MB; past it idle instances are evicted by the policy's choice. */
  memoryBudgetMb?: number;
  /** Generic instances to keep ready per runtime. */
  genericTarget: Record<Runtime, number>;
  genericLimits: InstanceLimits;
  /** First delay before a failed refill is retried, ms (doubles per failure in a row, up to 30 s); default 500. */
  refillBackoffMs?: number;
  /** Upper bound for a handler's import (init) time. */
  initTimeoutMs?: number;
  /**
   * The host uid/gid that root inside `fn`'s instances maps to (their user namespace; the daemon's
   * UidMap). Called at each specialisation; throws HearthError UNAVAILABLE when none is left.
   * Unset: instances keep the ids they were spawned with.
   */
  identity?: (fn: string) => { uid: number; gid: number };
}

/** One live instance as the API shows it. */
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
