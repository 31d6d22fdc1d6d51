/**
 * The dispatcher: events -> instances. Async events come from the durable queue; synchronous
 * invokes come straight from the API and take the same path into the pool (idle instance of the
 * function, else a generic one specialised, else a new one, within the function's concurrency),
 * ahead of queued events so a deep backlog never starves them. Synchronous invokes are not written
 * to the queue: a caller that waits holds the event, and a durable write per call would cost more
 * than the warm invocation itself.
 *
 * Per function, events are leased in order of arrival and handed to the pool in that order (the
 * pool admits FIFO), so they start in order. A failed attempt (thrown error, Timeout, OutOfMemory,
 * RuntimeExit, InitError) is retried with exponential backoff and jitter (~1 s first) until the
 * function's retries or the event's maximum age run out; then the event is `dead`.
 *
 * Concurrency: one pump per function at a time; everything runs on the event loop.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Pool } from '../pool/pool.js';
import type { InvokeRequest, InvokeResult, PoolTarget, StartKind } from '../pool/types.js';
import type { EventQueue, EventRecord } from '../queue/event-queue.js';
import { retryPlan } from '../queue/event-queue.js';
import { newId } from '../pool/instances.js';
import { DeadLetterFeed, InvocationFeed, outcomeOf, type DeadLetter, type InvocationRecord, type Trigger } from './invocations.js';
import { percentileSorted, sortedCopy } from '../stats/percentile.js';

/** A function's current definition and code directory (the pool's contract). */
export type DispatchTarget = PoolTarget;

export interface DispatcherOptions {
  queue: EventQueue;
  pool: Pool;
  /** The current definition of a function, or undefined when it does not exist (any more). */
  lookup: (name: string) => DispatchTarget | undefined;
  clock: Clock;
  log: Logger;
  rng?: () => number;
  /** Period of the sweep that recovers events whose lease expired. */
  sweepMs?: number;
}

/** How a synchronous invoke came in; default trigger `sync`. */
export interface SyncInvokeOptions {
  trigger?: Extract<Trigger, 'sync' | 'lambda'>;
  /** The id the runtime sees; default a new one. */
  invocationId?: string;
  /** Refuse (TOO_MANY_REQUESTS) instead of waiting when the function's concurrency is in use. */
  refuseWhenBusy?: boolean;
}

/** A synchronous invoke's result with the id it ran under. */
export type SyncInvokeResult = InvokeResult & { invocationId: string };

/** Queue-to-start latencies (ms) of recent async events, for the API and benchmarks. */
export class LatencyWindow {
  private readonly buf: number[] = [];
  constructor(private readonly size = 4096) {}
  add(ms: number): void {
    this.buf.push(ms);
    if (this.buf.length > this.size) this.buf.shift();
  }
  summary(): { count: number; p50: number | null; p99: number | null } {
    if (this.buf.length === 0) return { count: 0, p50: null, p99: null };
    const s = sortedCopy(this.buf);
    const q = (p: number): number => percentileSorted(s, p, 'step');
    return { count: s.length, p50: q(0.5), p99: q(0.99) };
  }
}

/** How long a settle write is retried while the queue answers UNAVAILABLE (see settleWrite). */
const SETTLE_RETRY_MS = 30_000;

export class Dispatcher {
  private readonly inflight = new Map<string, number>();
  private readonly pumping = new Set<string>();
  private readonly again = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  private wakeTimer: TimerHandle | undefined;
  private wakeAt = Infinity;
  private sweepTimer: TimerHandle | undefined;
  private stopped = true;
  private readonly running = new Set<Promise<void>>();
  /** Queue-to-start latency (ms) of first attempts accepted by this daemon: commit to instance. */
  readonly queueToStart = new LatencyWindow();
  /** High-resolution time each recently accepted event was committed, until it starts. */
  private readonly accepted = new Map<string, number>();
  /** One record per finished invocation (sync, async, schedule, lambda): what observability reads. */
  readonly invocations: InvocationFeed;
  /** One record per queued event this dispatcher settled as dead. */
  readonly deadLetters: DeadLetterFeed;

  /** Records that `ids` were just committed (for the queue-to-start latency). */
  noteAccepted(ids: readonly string[]): void {
    // Entries of events that started before they were noted (or never will) must not pile up.
    if (this.accepted.size > 50_000) this.accepted.clear();
    const now = performance.now();
    for (const id of ids) this.accepted.set(id, now);
  }

  constructor(private readonly opts: DispatcherOptions) {
    this.invocations = new InvocationFeed((err) => opts.log.error({ err }, 'invocation listener failed'));
    this.deadLetters = new DeadLetterFeed((err) => opts.log.error({ err }, 'dead-letter listener failed'));
  }

  /** Puts back events a crashed run left `running`, then starts pumping. */
  async start(): Promise<void> {
    this.stopped = false;
    const rec = await this.opts.queue.recoverRunning();
    if (rec.requeued.length || rec.dead.length)
      this.opts.log.warn({ requeued: rec.requeued.length, dead: rec.dead.length }, 'recovered events left running by an earlier run');
    await this.recoveredDead(rec.dead);
    this.unsubscribe = this.opts.queue.onAvailable((fn) => this.kick(fn));
    const stats = await this.opts.queue.stats();
    for (const [fn, c] of Object.entries(stats.functions)) if (c.depth > 0) this.kick(fn);
    await this.armWake();
    const sweep = (): void => {
      if (this.stopped) return;
      void this.opts.queue
        .recoverRunning({ expiredOnly: true })
        .then(async (r) => {
          for (const id of r.requeued) this.opts.log.warn({ eventId: id }, 'lease expired; event requeued');
          await this.recoveredDead(r.dead);
          return this.armWake();
        })
        .catch((err: unknown) => this.opts.log.error({ err }, 'lease sweep failed'))
        .finally(() => {
          if (!this.stopped) this.sweepTimer = this.opts.clock.setTimeout(sweep, this.opts.sweepMs ?? 60_000);
          this.sweepTimer?.unref?.();
        });
    };
    this.sweepTimer = this.opts.clock.setTimeout(sweep, this.opts.sweepMs ?? 60_000);
    this.sweepTimer.unref?.();
  }

  /** Stops leasing; waits for running attempts to settle (the pool is stopped after this). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.wakeTimer) this.opts.clock.clearTimeout(this.wakeTimer);
    if (this.sweepTimer) this.opts.clock.clearTimeout(this.sweepTimer);
    await Promise.allSettled([...this.running]);
  }

  /** A synchronous invoke: the caller waits; ahead of queued events in the pool's admission. */
  async invokeSync(name: string, event: unknown, opts: SyncInvokeOptions = {}): Promise<SyncInvokeResult> {
    const target = this.opts.lookup(name);
    if (!target) throw new HearthError('FUNCTION_NOT_FOUND', `no function named ${JSON.stringify(name)}`);
    const invocationId = opts.invocationId ?? newId('inv');
    const res = await this.invokeRecorded(
      {
        fn: target.fn,
        codeDir: target.codeDir,
        event,
        invocationId,
        priority: 'sync',
        ...(opts.refuseWhenBusy ? { refuseWhenBusy: true } : {}),
      },
      { trigger: opts.trigger ?? 'sync' },
    );
    return { ...res, invocationId };
  }

  /** Runs one invocation in the pool and puts its record on the feed, whether it ran or threw. */
  private async invokeRecorded(req: InvokeRequest & { invocationId: string }, meta: { trigger: Trigger; eventId?: string }): Promise<InvokeResult> {
    const base = { id: req.invocationId, function: req.fn.name, trigger: meta.trigger, ...(meta.eventId !== undefined ? { eventId: meta.eventId } : {}) };
    let res: InvokeResult;
    try {
      res = await this.opts.pool.invoke(req);
    } catch (err) {
      this.record({ ...base, start: null, initMs: 0, durationMs: 0, outcome: throttledOrError(err), error: engineError(err), logs: '' });
      throw err;
    }
    this.record({ ...base, ...resultFields(res) });
    return res;
  }

  private record(r: Omit<InvocationRecord, 'endedAt'>): void {
    if (this.invocations.size === 0) return;
    this.invocations.emit({ ...r, endedAt: this.opts.clock.now() });
  }

  /** Tells dead-letter listeners when a failed attempt ended its event. */
  private settleFailed(e: EventRecord, ended: 'failed' | 'dead', error: DeadLetter['error']): void {
    if (ended !== 'dead' || this.deadLetters.size === 0) return;
    this.deadLetters.emit({ function: e.function, eventId: e.id, trigger: e.trigger, error, at: this.opts.clock.now() });
  }

  /** Tells dead-letter listeners of events a lease found past their maximum age. */
  private readonly onExpired = (e: EventRecord): void => this.settleFailed(e, 'dead', e.error ?? { type: 'Expired', message: 'event passed its maximum age' });

  /** Tells dead-letter listeners of events that a recovery of running ones ended dead (their records say why). */
  private async recoveredDead(ids: readonly string[]): Promise<void> {
    if (this.deadLetters.size === 0) return;
    for (const id of ids) {
      const e = await this.opts.queue.get(id).catch(() => undefined);
      if (e?.status === 'dead') this.settleFailed(e, 'dead', e.error ?? { type: 'Interrupted', message: 'attempt was interrupted' });
    }
  }

  /** Number of async attempts running now, per function. */
  private inflightCount(fn: string): number {
    return this.inflight.get(fn) ?? 0;
  }

  private kick(fn: string): void {
    if (this.stopped) return;
    if (this.pumping.has(fn)) {
      this.again.add(fn);
      return;
    }
    this.pumping.add(fn);
    void this.pump(fn)
      .catch((err: unknown) => this.opts.log.error({ err, fn }, 'dispatch failed'))
      .finally(() => {
        this.pumping.delete(fn);
        if (this.again.delete(fn)) this.kick(fn);
      });
  }

  /** Leases as many events of `fn` as it has free concurrency, and starts them in order. */
  private async pump(fn: string): Promise<void> {
    const target = this.opts.lookup(fn);
    const queue = this.opts.queue;
    if (!target) {
      // Events of a function that no longer exists can never run: they end dead, with the reason.
      const events = await queue.lease({ functions: [fn], perFunction: 100, onExpired: this.onExpired });
      for (const e of events) {
        const error = { type: 'FunctionNotFound', message: `no function named ${JSON.stringify(fn)}` };
        this.settleFailed(e, await queue.fail(e.id, error, { dead: true }, { attempt: e.attempts }), error);
      }
      if (events.length === 100) this.again.add(fn);
      return;
    }
    const free = target.fn.concurrency - this.inflightCount(fn);
    if (free <= 0) return;
    const events = await queue.lease({ functions: [fn], perFunction: free, leaseMs: target.fn.timeoutMs + 60_000, onExpired: this.onExpired });
    for (const e of events) this.track(this.runEvent(e, target));
    if (events.length === free) this.again.add(fn);
    else await this.armWake();
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private async runEvent(e: EventRecord, target: DispatchTarget): Promise<void> {
    const fn = e.function;
    this.inflight.set(fn, this.inflightCount(fn) + 1);
    const log = this.opts.log.child({ eventId: e.id, fn });
    try {
      let event: unknown;
      try {
        event = JSON.parse(e.payload);
      } catch {
        const error = { type: 'BadPayload', message: 'event payload is not valid JSON' };
        this.settleFailed(e, await this.opts.queue.fail(e.id, error, { dead: true }, { attempt: e.attempts }), error);
        return;
      }
      const res = await this.invokeRecorded(
        {
          fn: target.fn,
          codeDir: target.codeDir,
          event,
          invocationId: `${e.id}-${e.attempts}`,
          priority: 'async',
          onStart: (_start: StartKind) => {
            const at = this.accepted.get(e.id);
            if (at === undefined) return;
            this.accepted.delete(e.id);
            this.queueToStart.add(performance.now() - at);
          },
        },
        { trigger: e.trigger, eventId: e.id },
      );
      if (!res.error) {
        const result = JSON.stringify(res.result ?? null);
        await this.settleWrite(() => this.opts.queue.complete(e.id, result, { attempt: e.attempts }));
        return;
      }
      const plan = retryPlan(e, this.opts.clock.now(), this.opts.rng);
      const error = res.error;
      const ended = await this.settleWrite(() => this.opts.queue.fail(e.id, error, plan, { attempt: e.attempts }));
      this.settleFailed(e, ended, res.error);
      log.info({ attempt: e.attempts, error: res.error.type, ended }, ended === 'dead' ? 'event dead' : 'attempt failed; will retry');
    } catch (err) {
      // The engine (not the function) failed: put the event back for a later attempt.
      log.error({ err }, 'attempt could not run');
      const plan = retryPlan(e, this.opts.clock.now(), this.opts.rng);
      const error = { type: 'EngineError', message: (err as Error).message };
      await this.settleWrite(() => this.opts.queue.fail(e.id, error, plan, { attempt: e.attempts }))
        .then((ended) => this.settleFailed(e, ended, error))
        .catch((err2: unknown) => log.error({ err: err2 }, 'cannot settle event; its lease will expire and it will be retried'));
    } finally {
      this.inflight.set(fn, this.inflightCount(fn) - 1);
      if (this.inflightCount(fn) <= 0) this.inflight.delete(fn);
      this.kick(fn);
      void this.armWake();
    }
  }

  /**
   * A settle write (complete or fail) that the queue could not take for a moment (UNAVAILABLE: a
   * shared queue's brokers electing a leader, a connection being re-made) is tried again for up to
   * SETTLE_RETRY_MS, so that a result already known does not wait for its lease to end and be run
   * again. Any other error (CONFLICT: the attempt was taken over) and a stop end the retries.
   */
  private async settleWrite<T>(write: () => Promise<T>): Promise<T> {
    const end = Date.now() + SETTLE_RETRY_MS;
    for (let wait = 50; ; wait = Math.min(wait * 2, 2000)) {
      try {
        return await write();
      } catch (err) {
        if (!(err instanceof HearthError && err.code === 'UNAVAILABLE') || this.stopped || Date.now() + wait > end) throw err;
        this.opts.log.warn({ err, retryInMs: wait }, 'queue unavailable; settling the event again shortly');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Sets one timer for the earliest retry that is not due yet. */
  private async armWake(): Promise<void> {
    if (this.stopped) return;
    let at = await this.opts.queue.nextDueAt();
    if (at === null) return;
    // Events already due wait for a free slot; completions kick their function. This wake-up is
    // only a safety net, so it never spins.
    at = Math.max(at, this.opts.clock.now() + 250);
    if (at >= this.wakeAt) return;
    if (this.wakeTimer) this.opts.clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.opts.clock.setTimeout(
      () => {
        this.wakeAt = Infinity;
        this.wakeTimer = undefined;
        void this.wakeAll();
      },
      Math.max(0, at - this.opts.clock.now()),
    );
    this.wakeTimer.unref?.();
  }

  private async wakeAll(): Promise<void> {
    if (this.stopped) return;
    const stats = await this.opts.queue.stats();
    for (const [fn, c] of Object.entries(stats.functions)) if (c.depth > 0) this.kick(fn);
    await this.armWake();
  }
}

function resultFields(res: InvokeResult): Pick<InvocationRecord, 'start' | 'initMs' | 'durationMs' | 'outcome' | 'error' | 'logs'> {
  return { start: res.start, initMs: res.initMs, durationMs: res.durationMs, outcome: outcomeOf(res.error), error: res.error, logs: res.logs };
}

function throttledOrError(err: unknown): InvocationRecord['outcome'] {
  return err instanceof HearthError && err.code === 'TOO_MANY_REQUESTS' ? 'throttled' : 'error';
}

function engineError(err: unknown): InvocationRecord['error'] {
  const e = err instanceof Error ? err : new Error(String(err));
  return { type: err instanceof HearthError ? err.code : 'EngineError', message: e.message };
}
