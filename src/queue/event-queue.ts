/**
 * The durable event queue: the contract every backend implements (the embedded SQLite one in
 * sqlite-queue.ts, the in-memory fake in memory-queue.ts, later a NATS JetStream one).
 *
 * Delivery is AT-LEAST-ONCE. An event is handed out by `lease`, and stays `running` until its
 * holder acknowledges it with `complete` or `fail`. A lease that is never acknowledged (the
 * daemon was killed, the holder lost track of it, the lease expired) is recovered by
 * `recoverRunning`, which puts the event back with its attempt counted. A handler can therefore
 * run more than once for one event; handlers that must not repeat side effects deduplicate on the
 * event id.
 *
 * Concurrency: every method may be called at any time from the one event loop; calls may overlap
 * (they are promises) and each takes effect atomically. Implementations may batch writes that
 * arrive together into one commit (group commit), but a write's promise resolves only once that
 * write is durable as far as the backend promises (see each backend). Nothing in this contract
 * assumes the queue lives in the same process: every method is async, records are plain data,
 * and acknowledgements are fenced by the attempt number so a stale holder cannot settle a newer
 * delivery.
 *
 * Errors are HearthError with these codes:
 *  - TOO_MANY_REQUESTS  submit/submitBatch/redrive over the bound on queued events; nothing was
 *                       written; `details.retryAfterS` says when to try again.
 *  - EVENT_NOT_FOUND    the id is unknown (never existed, pruned, or purged).
 *  - CONFLICT           the event is not in a state that allows the call (complete of an event that
 *                       is not running, a stale attempt, redrive of an event that is not dead, an
 *                       idempotency key reused for a different kind of submission).
 *  - BAD_REQUEST        malformed arguments (a function name outside src/names.ts' rule, non-positive maxAttempts...).
 *  - CONFIG             (open only) the backing store is corrupt, unreadable or unwritable.
 *  - UNAVAILABLE        the queue is closed, or the backing store failed a write (disk full, I/O
 *                       error); the write did not happen.
 */
import { HearthError } from '../errors.js';
import { isFunctionName, NAME_PATTERN, shownName } from '../names.js';

/** What the queue needs of a clock: milliseconds since the epoch. */
export interface NowSource {
  now(): number;
}

/**
 * queued    accepted, waiting to be started
 * running   leased to a holder, which will complete or fail it
 * succeeded finished with a result (final)
 * failed    an attempt failed; will be started again at `notBefore`
 * dead      attempts or maximum age exhausted (final until redriven)
 */
export type EventStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'dead';
export const EVENT_STATUSES: readonly EventStatus[] = ['queued', 'running', 'succeeded', 'failed', 'dead'];

/** Why an attempt failed, as the runtime reported it (or the daemon decided). */
export interface EventError {
  /** Error name: the handler's own (`TypeError`), or the daemon's (`Timeout`, `OutOfMemory`, `RuntimeExit`, `Interrupted`, `Expired`). */
  type: string;
  message: string;
  stack?: string;
}

export interface EventRecord {
  /** Unique, sortable by creation time (26 chars, ULID-like). */
  id: string;
  function: string;
  /** The event as JSON text, exactly as submitted. */
  payload: string;
  status: EventStatus;
  /** Attempts started so far (a lease counts the attempt, so a crash mid-attempt counts). */
  attempts: number;
  maxAttempts: number;
  /** Higher is leased first within a function (0 = async events, e.g. 1 = synchronous invokes). */
  priority: number;
  createdAt: number;
  /** Not started before this time (ms). */
  notBefore: number;
  /** Start of the current or last attempt. */
  startedAt: number | null;
  /** When it reached succeeded or dead. */
  finishedAt: number | null;
  /** After this time the event is not started any more: it becomes `dead` instead. */
  expiresAt: number | null;
  /** While running: the holder must settle the event before this time or it may be delivered again. */
  leaseUntil: number | null;
  /** Result of the successful attempt as JSON text. */
  result: string | null;
  /** Error of the last failed attempt. */
  error: EventError | null;
  /** What queued it: an API submit (`async`) or a schedule tick (`schedule`). */
  trigger: EventTrigger;
}

/** What queued an event; old records without one read as `async`. */
export type EventTrigger = 'async' | 'schedule';
export const EVENT_TRIGGERS: readonly EventTrigger[] = ['async', 'schedule'];

export interface SubmitOptions {
  /** Same key for the same function within 24 h returns the first submission's id(s); nothing new is queued. */
  idempotencyKey?: string;
  /** Do not start before this time (ms); default now. */
  notBefore?: number;
  /** Total attempts allowed (retries + 1); default 3. */
  maxAttempts?: number;
  /** Absolute time (ms) after which the event is not started any more and becomes dead. */
  expiresAt?: number;
  /** Default 0; higher is started first within the function. */
  priority?: number;
  /** What queued the event (the scheduler passes `schedule`); default `async`. */
  trigger?: EventTrigger;
}

export interface SubmitResult {
  id: string;
  /** True when an earlier submission with the same idempotency key was found; nothing was queued. */
  duplicate: boolean;
}

export interface SubmitBatchResult {
  ids: string[];
  duplicate: boolean;
}

export interface LeaseRequest {
  /** Only these functions (in this order of preference); default every function with waiting events, round-robin. */
  functions?: readonly string[];
  /**
   * How many events to claim per function: a number for all, or a map (function -> free slots,
   * e.g. its concurrency limit minus what runs). Missing functions in a map get 0. Default 1.
   */
  perFunction?: number | Readonly<Record<string, number>>;
  /** Cap on events claimed in this call, over all functions; default 1000. */
  limit?: number;
  /** The holder must settle each event within this many ms; default 15 min. */
  leaseMs?: number;
  /**
   * Told of each due event that this call found past its maximum age and ended `dead` instead of
   * leasing it (the record as it ended), once that is committed; must not throw.
   */
  onExpired?: (e: EventRecord) => void;
}

export interface AttemptFence {
  /** The attempt number the holder was given (EventRecord.attempts at lease). A mismatch is CONFLICT. */
  attempt?: number;
}

export type FailDisposition = { retryAt: number } | { dead: true };

export interface ListFilter {
  function?: string;
  status?: EventStatus;
  /** Default 100, at most 1000. */
  limit?: number;
  /** Only events older than this id (pagination); newest first. */
  before?: string;
}

export interface StatusCounts {
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  dead: number;
  /** queued + failed: events waiting to be started. */
  depth: number;
}

export interface QueueStats {
  total: StatusCounts;
  functions: Record<string, StatusCounts>;
  /** The configured bound on depth. */
  maxQueued: number;
}

export interface RecoverResult {
  /** Put back as `failed` with notBefore = now (attempt already counted). */
  requeued: string[];
  /** Attempts or maximum age exhausted. */
  dead: string[];
}

export interface PruneResult {
  events: number;
  idempotencyKeys: number;
}

/**
 * Listener for "events of this function were added to the waiting set" (after a commit): new
 * submits, redrives, recovered events, and retries (which may only be due later: see nextDueAt).
 */
export type AvailableListener = (fn: string) => void;

export interface EventQueue {
  /**
   * Accepts one event. Resolves once the event is committed durably; rejects with
   * TOO_MANY_REQUESTS (nothing written) when depth is at the bound.
   */
  submit(fn: string, payload: Buffer | string, opts?: SubmitOptions): Promise<SubmitResult>;
  /** Accepts all events or none, in order (ids ascending); one idempotency key covers the batch. */
  submitBatch(fn: string, payloads: ReadonlyArray<Buffer | string>, opts?: SubmitOptions): Promise<SubmitBatchResult>;
  /**
   * Claims due events (status queued or failed, notBefore <= now, not expired): per function the
   * highest priority first, then in order of arrival. Each becomes `running` with startedAt = now,
   * attempts + 1, leaseUntil = now + leaseMs. Due events past expiresAt become `dead` instead.
   */
  lease(req?: LeaseRequest): Promise<EventRecord[]>;
  /** Acknowledges success: running -> succeeded with `result` (JSON text). */
  complete(id: string, result: string | null, fence?: AttemptFence): Promise<void>;
  /**
   * Acknowledges a failed attempt: running -> failed (retry at retryAt) or dead. The queue makes
   * it dead anyway when attempts are exhausted or retryAt is past expiresAt. Resolves to the
   * status it ended in.
   */
  fail(id: string, error: EventError, disposition: FailDisposition, fence?: AttemptFence): Promise<'failed' | 'dead'>;
  /** Pushes the lease deadline of a running event to now + leaseMs. */
  extendLease(id: string, leaseMs: number, fence?: AttemptFence): Promise<void>;
  /** Rejects with EVENT_NOT_FOUND when unknown. */
  get(id: string): Promise<EventRecord>;
  /** Newest first. */
  list(filter?: ListFilter): Promise<EventRecord[]>;
  /** dead -> queued, attempts reset to 0, due now, a fresh maximum-age window. */
  redrive(id: string): Promise<void>;
  stats(): Promise<QueueStats>;
  /** Earliest notBefore among waiting events (of one function, or all); null when none wait. */
  nextDueAt(fn?: string): Promise<number | null>;
  /**
   * Puts back events left running: every one (at daemon start, when no holder can exist), or only
   * those whose lease has expired (`expiredOnly`, a periodic sweep). Each becomes `failed`, due
   * now (the interrupted attempt stays counted), or `dead` when attempts or age are exhausted.
   */
  recoverRunning(opts?: { expiredOnly?: boolean }): Promise<RecoverResult>;
  /** Deletes succeeded events finished longer ago than the retention, and expired idempotency keys. */
  prune(): Promise<PruneResult>;
  /** Deletes every event, idempotency key and schedule state of a function; returns events deleted. */
  purgeFunction(fn: string): Promise<number>;
  /** Subscribes to availability; returns the unsubscribe function. Listeners must not throw. */
  onAvailable(listener: AvailableListener): () => void;
  /** Flushes pending writes, then closes. Further calls reject with UNAVAILABLE. */
  close(): Promise<void>;
}

/** Where the scheduler keeps, per (function, schedule), the latest tick already handled. */
export interface ScheduleStateStore {
  /** expression -> handled-through time (ms) for one function. */
  getScheduleStates(fn: string): Promise<Map<string, number>>;
  setScheduleState(fn: string, expression: string, handledThrough: number): Promise<void>;
  /** Deletes one expression's state, or every state of the function. */
  deleteScheduleState(fn: string, expression?: string): Promise<void>;
}

/** Settings common to every backend (filled with defaults by `queueSettings`). */
export interface QueueSettings {
  /** Bound on depth (queued + failed); default 100,000. */
  maxQueued: number;
  /** Seconds a rejected submitter is told to wait; default 1. */
  retryAfterS: number;
  /** Succeeded events are pruned this long after they finished; default 24 h. */
  retentionMs: number;
  /** How long an idempotency key holds; default 24 h. */
  idempotencyWindowMs: number;
  /** Default lease length; default 15 min. */
  defaultLeaseMs: number;
}

export const QUEUE_DEFAULTS: Readonly<QueueSettings> = Object.freeze({
  maxQueued: 100_000,
  retryAfterS: 1,
  retentionMs: 24 * 3600_000,
  idempotencyWindowMs: 24 * 3600_000,
  defaultLeaseMs: 15 * 60_000,
});

export const DEFAULT_MAX_ATTEMPTS = 3;

export function queueSettings(partial: Partial<QueueSettings> | undefined): QueueSettings {
  const s: QueueSettings = { ...QUEUE_DEFAULTS };
  for (const k of Object.keys(QUEUE_DEFAULTS) as Array<keyof QueueSettings>) {
    const v = partial?.[k];
    if (v !== undefined) s[k] = v;
  }
  for (const [k, v] of Object.entries(s)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (k === 'maxQueued' && v < 1)) {
      throw new HearthError('CONFIG', `queue: ${k} must be a non-negative number (maxQueued at least 1), got ${String(v)}`);
    }
  }
  return s;
}

/** The public JSON view of an event (GET /v1/events/{id}). */
export interface EventView {
  id: string;
  function: string;
  status: EventStatus;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  result: unknown;
  error: EventError | null;
}

export function toEventView(e: EventRecord): EventView {
  let result: unknown = null;
  if (e.result !== null) {
    try {
      result = JSON.parse(e.result);
    } catch {
      result = e.result;
    }
  }
  return {
    id: e.id,
    function: e.function,
    status: e.status,
    attempts: e.attempts,
    createdAt: new Date(e.createdAt).toISOString(),
    startedAt: e.startedAt === null ? null : new Date(e.startedAt).toISOString(),
    finishedAt: e.finishedAt === null ? null : new Date(e.finishedAt).toISOString(),
    result,
    error: e.error,
  };
}

/**
 * Delay before retrying after failed attempt number `attempt` (1-based): exponential from ~1 s,
 * doubling, capped (default 5 min), with ±25 % jitter so retries of a burst spread out.
 * `rng` returns [0, 1) like Math.random.
 */
export function backoffMs(attempt: number, rng: () => number = Math.random, opts?: { baseMs?: number; capMs?: number }): number {
  const base = opts?.baseMs ?? 1000;
  const cap = opts?.capMs ?? 300_000;
  const n = Math.max(1, Math.floor(attempt));
  const raw = Math.min(cap, base * 2 ** Math.min(n - 1, 40));
  return Math.round(raw * (0.75 + 0.5 * rng()));
}

/**
 * What to do after a failed attempt of a leased event: retry after backoff, or dead when the
 * attempts are used up or the retry would fall after the event's expiry.
 */
export function retryPlan(e: Pick<EventRecord, 'attempts' | 'maxAttempts' | 'expiresAt'>, now: number, rng: () => number = Math.random): FailDisposition {
  if (e.attempts >= e.maxAttempts) return { dead: true };
  const retryAt = now + backoffMs(e.attempts, rng);
  if (e.expiresAt !== null && retryAt >= e.expiresAt) return { dead: true };
  return { retryAt };
}

/** The queue's own rule for a failed attempt, shared by every backend. */
export function failEndsDead(attempts: number, maxAttempts: number, expiresAt: number | null, d: FailDisposition): boolean {
  if ('dead' in d && d.dead) return true;
  if (attempts >= maxAttempts) return true;
  const retryAt = (d as { retryAt: number }).retryAt;
  if (typeof retryAt !== 'number' || !Number.isFinite(retryAt)) throw new HearthError('BAD_REQUEST', 'fail: retryAt must be a time in ms');
  return expiresAt !== null && retryAt >= expiresAt;
}

/** Checks shared by backends; throws BAD_REQUEST. */
export function checkSubmit(fn: string, count: number, opts: SubmitOptions | undefined): void {
  if (!isFunctionName(fn)) throw new HearthError('BAD_REQUEST', `queue: invalid function name ${shownName(fn)}: must match ${NAME_PATTERN.source}`);
  if (count === 0) throw new HearthError('BAD_REQUEST', 'queue: a batch needs at least one event');
  if (opts?.maxAttempts !== undefined && (!Number.isInteger(opts.maxAttempts) || opts.maxAttempts < 1)) {
    throw new HearthError('BAD_REQUEST', `queue: maxAttempts must be an integer >= 1, got ${String(opts.maxAttempts)}`);
  }
  if (opts?.priority !== undefined && !Number.isInteger(opts.priority)) {
    throw new HearthError('BAD_REQUEST', `queue: priority must be an integer, got ${String(opts.priority)}`);
  }
  if (opts?.trigger !== undefined && !EVENT_TRIGGERS.includes(opts.trigger)) {
    throw new HearthError('BAD_REQUEST', `queue: trigger must be one of ${EVENT_TRIGGERS.join(', ')}, got ${String(opts.trigger)}`);
  }
  if (opts?.idempotencyKey !== undefined && (typeof opts.idempotencyKey !== 'string' || opts.idempotencyKey.length === 0 || opts.idempotencyKey.length > 256)) {
    throw new HearthError('BAD_REQUEST', 'queue: idempotency key must be 1 to 256 characters');
  }
}

export function tooManyRequests(depth: number, adding: number, max: number, retryAfterS: number): HearthError {
  return new HearthError('TOO_MANY_REQUESTS', `queue is full: ${depth} events waiting, ${adding} more would pass the bound of ${max}`, {
    details: { retryAfterS },
  });
}

export function payloadText(p: Buffer | string): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}

export function clampListLimit(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1) throw new HearthError('BAD_REQUEST', `queue: limit must be a positive integer, got ${String(limit)}`);
  return Math.min(limit, 1000);
}

export function emptyCounts(): StatusCounts {
  return { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 0, depth: 0 };
}

export { expiredError, interruptedError } from './lease.js';
