/**
 * The pool policy contract shared by the daemon (real clock) and the trace simulator (virtual
 * clock). A policy is pure: it holds per-function statistics in memory, never does I/O, never
 * sets timers and never reads a clock. Every call carries `now` (ms, any epoch, non-decreasing
 * across calls). Not safe for concurrent use; the daemon calls it from its one event loop.
 *
 * The pool (the caller) owns instances. It tells the policy what happened (`onArrival`,
 * `onFinish`) and asks it what to do:
 *   - when an instance becomes idle (after a finish, or right after a pre-warm), how long to keep
 *     it: `keepAliveMs`;
 *   - when to have an instance ready ahead of the next predicted arrival: `prewarmAt`;
 *   - how many instances the function needs right now: `targetInstances`;
 *   - under a memory budget, which idle instances to end first: `chooseVictims`.
 *
 * Replay convention used by the simulator (and the recommended daemon behaviour):
 *   arrival → onArrival; take the most recently used idle instance, else create one (cold start).
 *   finish  → onFinish; the instance is idle; keepAliveMs decides its end (0 = end it now).
 *             prewarmAt is asked after every finish and every keep-alive expiry; a returned time
 *             later than now replaces any pending pre-warm of that function. When it comes, the
 *             function gets idle instances up to prewarmCount (default 1), created one at a time,
 *             keepAliveMs asked for each (ctx.idle counts it: the i-th idle instance).
 */

/** Static facts about a function, given once (and again whenever they change). */
export interface FunctionTraits {
  /** Memory one instance reserves, MB. */
  memoryMb: number;
  /** Extra latency of a cold start over a warm one, ms (the value of keeping an instance). */
  coldStartMs?: number;
  /** Group the function belongs to (an app); policies that learn per app use it. Default: fn. */
  group?: string;
}

/** The caller's view of one function's instances at the moment of a call. */
export interface PoolCounts {
  /** Idle instances of the function, including the one a keepAliveMs call is about. */
  idle: number;
  /** Instances running an invocation. */
  busy: number;
}

/** Why an instance is idle when keepAliveMs is asked about it. */
export type IdleCause = 'finish' | 'prewarm';

/** PoolCounts plus why the instance in question is idle. */
export interface IdleContext extends PoolCounts {
  cause: IdleCause;
}

/** An idle instance that could be ended to make room under a memory budget. */
export interface EvictionCandidate {
  id: string;
  fn: string;
  memoryMb: number;
  /** When it became idle (ms). */
  idleSince: number;
}

/** JSON-able view of what a policy knows and decides about one function (GET …/model). */
export interface PolicyExplanation {
  policy: string;
  fn: string;
  now: number;
  /** Window summary (policy-specific, JSON-able). */
  window: Record<string, unknown>;
  /** Predictions (policy-specific, JSON-able). */
  predictions: Record<string, unknown>;
  /** The decision in sentences a user reads (period found, plan and why, next pre-warm); optional. */
  summary?: string[];
  decisions: PolicyDecisions;
}

/** What a policy decides for a function now. */
export interface PolicyDecisions {
  /** Keep-alive an instance that becomes idle now would get, ms (null = forever). */
  keepAliveMs: number | null;
  /** Absolute time at which an instance should be ready, or null. */
  prewarmAt: number | null;
  targetInstances: number;
}

export interface Policy {
  /** Short stable name (`hearth`, `fixed-10m`, …). */
  readonly name: string;
  /** Records static facts about a function. Calling it is optional; defaults apply. */
  describe(fn: string, traits: FunctionTraits): void;
  /** An invocation of fn arrived at now (before it is placed). `pool` is the state before placing. */
  onArrival(fn: string, now: number, pool: PoolCounts): void;
  /** An invocation of fn that ran durationMs finished at now; its instance is idle again. */
  onFinish(fn: string, now: number, durationMs: number, pool: PoolCounts): void;
  /**
   * How long an instance of fn that becomes idle at now (ctx.cause: after a finish, or right after
   * it was pre-warmed) should be kept idle before it is ended, ms from now. 0 ends it at once; Infinity keeps it until the
   * memory budget needs the room.
   */
  keepAliveMs(fn: string, now: number, ctx: IdleContext): number;
  /** Absolute time (≥ now) at which an instance of fn should be ready for a predicted arrival, or null. */
  prewarmAt(fn: string, now: number): number | null;
  /**
   * When the pre-warm that prewarmAt asked for comes (at now): how many instances of fn should be
   * idle, counting those already idle; the caller loads the difference (none when nothing is
   * missing). Optional: without it, one. Asked only while nothing of fn runs.
   */
  prewarmCount?(fn: string, now: number): number;
  /** Instances fn is predicted to need at the same time in the near future (≥ 0). */
  targetInstances(fn: string, now: number): number;
  /**
   * Chooses idle instances to end so that at least needMb becomes free, most expendable first.
   * May return fewer than needed (then the caller cannot make room). Never returns ids that are
   * not among the candidates.
   */
  chooseVictims(candidates: readonly EvictionCandidate[], needMb: number, now: number): string[];
  /** Drops everything known about fn (function deleted). */
  forget(fn: string): void;
  explain(fn: string, now: number): PolicyExplanation;
  /** `explain(fn, now).decisions` without the rest (cheap enough for every metrics scrape). */
  decisions(fn: string, now: number): PolicyDecisions;
}

/** Clock for real-time callers (the daemon); the simulator passes virtual times directly. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export { chooseOldestIdle } from './eviction.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
