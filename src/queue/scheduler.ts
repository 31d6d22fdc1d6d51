/**
 * The scheduler: queues an event `{"time": <ISO-8601 of the tick>, "schedule": <expression>}` for
 * each tick of each function's schedules.
 *
 * Exactly-once per tick across restarts, by two mechanisms:
 *  - per (function, expression) the latest tick already handled is kept in the queue database
 *    (`schedule_state`); a new schedule starts "handled through" the time it was set, so it
 *    never fires for ticks before it existed;
 *  - each tick's event is submitted with the idempotency key `schedule:<expression>:<tick ISO>`,
 *    so a crash between the submit and the state update cannot queue the tick twice.
 * After downtime only the LAST missed tick fires (no burst), then the schedule continues on time.
 *
 * Life: construct -> set(...) for every function -> start() -> ... -> stop(). `set` and `remove`
 * also work while running (deploy, delete). All work is serialised; `idle()` waits for it.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { asError, HearthError } from '../errors.js';
import type { EventQueue, ScheduleStateStore } from './event-queue.js';
import { parseSchedule, type Schedule } from './schedule.js';

export interface ScheduleTarget {
  /** Attempts for each scheduled event (function retries + 1). */
  maxAttempts?: number;
  /** Each event expires this long after it is queued (the function's maxEventAgeS). */
  maxEventAgeMs?: number;
}

export interface SchedulerLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface SchedulerOptions {
  queue: Pick<EventQueue, 'submit'>;
  state: ScheduleStateStore;
  clock: Clock;
  logger?: SchedulerLogger;
  /** After a failed submit (queue full, I/O error), try that schedule again after this long; default 5 s. */
  retryDelayMs?: number;
  /** Wake at least this often to re-check (guards against clock steps); default 60 s. */
  maxSleepMs?: number;
  /**
   * Many hosts: whether this host fires ticks now (it holds the cluster's scheduler lease). While
   * false, ticks older than `followerGraceMs` count as fired by the holder; the newer ones fire
   * here if this host becomes the holder (the idempotency key keeps a shared queue from taking a
   * tick twice). Default: always fires.
   */
  fires?: () => boolean;
  /** See `fires`; default 30 s. */
  followerGraceMs?: number;
}

interface Entry {
  fn: string;
  schedule: Schedule;
  handledThrough: number;
  target: ScheduleTarget;
  /** Set after a failed submit: do not try before this time. */
  retryAt: number | null;
}

export function scheduleIdempotencyKey(expression: string, tick: number): string {
  return `schedule:${expression}:${new Date(tick).toISOString()}`;
}

export class Scheduler {
  private readonly entries = new Map<string, Map<string, Entry>>();
  private timer: TimerHandle | null = null;
  private running = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly retryDelayMs: number;
  private readonly maxSleepMs: number;

  constructor(private readonly opts: SchedulerOptions) {
    this.retryDelayMs = opts.retryDelayMs ?? 5000;
    this.maxSleepMs = opts.maxSleepMs ?? 60_000;
  }

  /**
   * Sets the complete list of schedules of a function (replacing the previous list). Throws
   * BAD_REQUEST naming the fault, and changes nothing, when an expression is invalid or never
   * fires. Schedules dropped from the list lose their state.
   */
  set(fn: string, expressions: readonly string[], target: ScheduleTarget = {}): Promise<void> {
    let parsed: Schedule[];
    try {
      const now = this.opts.clock.now();
      const seen = new Map<string, Schedule>();
      for (const e of expressions) {
        const s = parseSchedule(e);
        if (s.next(now) === null) throw new HearthError('BAD_REQUEST', `schedule '${s.expression}' never fires after ${new Date(now).toISOString()}`);
        seen.set(s.expression, s);
      }
      parsed = [...seen.values()];
    } catch (e) {
      return Promise.reject(asError(e));
    }
    return this.serial(async () => {
      const now = this.opts.clock.now();
      const stored = await this.opts.state.getScheduleStates(fn);
      const m = new Map<string, Entry>();
      for (const s of parsed) {
        let handledThrough = stored.get(s.expression);
        if (handledThrough === undefined) {
          handledThrough = now;
          await this.opts.state.setScheduleState(fn, s.expression, now);
        }
        const prev = this.entries.get(fn)?.get(s.expression);
        m.set(s.expression, {
          fn,
          schedule: s,
          handledThrough: Math.max(handledThrough, prev?.handledThrough ?? -Infinity),
          target: { ...target },
          retryAt: null,
        });
      }
      for (const expr of stored.keys()) if (!m.has(expr)) await this.opts.state.deleteScheduleState(fn, expr);
      if (m.size) this.entries.set(fn, m);
      else this.entries.delete(fn);
      if (this.running) await this.fireDue();
    });
  }

  /** Forgets every schedule of a function, and its state. */
  remove(fn: string): Promise<void> {
    return this.serial(async () => {
      this.entries.delete(fn);
      await this.opts.state.deleteScheduleState(fn);
      if (this.running) await this.fireDue();
    });
  }

  /** Fires the last missed tick of each schedule, then runs on time. */
  start(): Promise<void> {
    return this.serial(async () => {
      if (this.running) return;
      this.running = true;
      await this.fireDue();
    });
  }

  /** Stops the timer and waits for work in progress. Safe to call at any time, also twice. */
  async stop(): Promise<void> {
    this.running = false;
    this.disarm();
    await this.idle();
  }

  /** Resolves once all work queued so far is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** For observation: the next time each schedule of a function will fire. */
  upcoming(fn: string): Array<{ expression: string; at: number | null }> {
    return [...(this.entries.get(fn)?.values() ?? [])].map((e) => ({ expression: e.schedule.expression, at: e.schedule.next(e.handledThrough) }));
  }

  private serial(work: () => Promise<void>): Promise<void> {
    const p = this.chain.then(work);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private disarm(): void {
    if (this.timer !== null) {
      this.opts.clock.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private async fireDue(): Promise<void> {
    this.disarm();
    const now = this.opts.clock.now();
    for (const m of [...this.entries.values()]) {
      for (const e of [...m.values()]) {
        if (e.retryAt !== null && e.retryAt > now) continue;
        if (this.opts.fires && !this.opts.fires()) {
          const fired = e.schedule.latest(e.handledThrough, now - (this.opts.followerGraceMs ?? 30_000));
          if (fired !== null) {
            await this.opts.state.setScheduleState(e.fn, e.schedule.expression, fired).catch(() => undefined);
            e.handledThrough = fired;
          }
          // Look again in a second: the holder may go away.
          e.retryAt = now + 1000;
          continue;
        }
        const tick = e.schedule.latest(e.handledThrough, now);
        if (tick === null) continue;
        try {
          await this.opts.queue.submit(e.fn, JSON.stringify({ time: new Date(tick).toISOString(), schedule: e.schedule.expression }), {
            idempotencyKey: scheduleIdempotencyKey(e.schedule.expression, tick),
            trigger: 'schedule',
            ...(e.target.maxAttempts !== undefined ? { maxAttempts: e.target.maxAttempts } : {}),
            ...(e.target.maxEventAgeMs !== undefined ? { expiresAt: now + e.target.maxEventAgeMs } : {}),
          });
          await this.opts.state.setScheduleState(e.fn, e.schedule.expression, tick);
          e.handledThrough = tick;
          e.retryAt = null;
        } catch (err) {
          e.retryAt = now + this.retryDelayMs;
          this.opts.logger?.warn(
            { err, function: e.fn, schedule: e.schedule.expression, tick: new Date(tick).toISOString() },
            'scheduled event could not be queued; will retry',
          );
        }
      }
    }
    this.arm(now);
  }

  private arm(now: number): void {
    if (!this.running) return;
    let at = now + this.maxSleepMs;
    for (const m of this.entries.values()) {
      for (const e of m.values()) {
        const n = e.retryAt ?? e.schedule.next(e.handledThrough);
        if (n !== null && n < at) at = n;
      }
    }
    const h = this.opts.clock.setTimeout(
      () => {
        this.timer = null;
        if (this.running) void this.serial(() => this.fireDue());
      },
      Math.max(0, at - now),
    );
    h.unref?.();
    this.timer = h;
  }
}
