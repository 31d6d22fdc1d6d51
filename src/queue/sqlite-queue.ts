/**
 * The embedded event queue: one SQLite database, `<stateDir>/queue.db`, through better-sqlite3.
 *
 * Durability: WAL journal. With `synchronous: 'full'` (the default) every commit fsyncs the WAL,
 * so an accepted event survives a process kill AND a power loss (as far as the disk honours
 * fsync). With 'normal', commits reach the OS but the WAL is fsynced only at checkpoints: an
 * accepted event survives a process kill (`kill -9`) but the last commits may be lost on power
 * loss. Writes that arrive in the same event-loop turn are committed together in one transaction
 * and one fsync (group commit); each write's promise resolves after that commit.
 *
 * One process owns the database: it is opened with `locking_mode=EXCLUSIVE`, so a second daemon
 * on the same state directory is refused at open. The bound on queued events is checked against
 * a counter kept in memory (exact, because this process is the only writer).
 *
 * better-sqlite3 is synchronous: a commit, with its fsync, runs on the event loop. Group commit
 * keeps that to one fsync per loop turn however many events arrive.
 *
 * Files: this one holds the queue operations (submit, lease/ack/retry, reads, recovery, prune,
 * purge); sqlite-store.ts group commit, the maintenance sweep and schedule state; sqlite-open.ts
 * the schema and the open-time refusals; sqlite-statements.ts the SQL and the row shape.
 */
import type Database from 'better-sqlite3';
import { asError, HearthError } from '../errors.js';
import {
  checkSubmit,
  clampListLimit,
  DEFAULT_MAX_ATTEMPTS,
  emptyCounts,
  EVENT_STATUSES,
  expiredError,
  failEndsDead,
  payloadText,
  tooManyRequests,
  type AttemptFence,
  type EventError,
  type EventQueue,
  type EventRecord,
  type EventStatus,
  type FailDisposition,
  type LeaseRequest,
  type ListFilter,
  type PruneResult,
  type QueueStats,
  type RecoverResult,
  type ScheduleStateStore,
  type SubmitBatchResult,
  type SubmitOptions,
  type SubmitResult,
} from './event-queue.js';
import { isExpired, leasedFields, leaseRoundRobin, recoveryOf } from './lease.js';
import { eventNotFound, PRUNE_CHUNK, toRecord, type Row } from './sqlite-statements.js';
import { SqliteStore, type SqliteQueueOptions, type TxContext } from './sqlite-store.js';

export { QUEUE_DB_FILE, type SqliteQueueOptions } from './sqlite-store.js';

export class SqliteQueue extends SqliteStore implements EventQueue, ScheduleStateStore {
  /** Round-robin start for leases over all functions. */
  private lastServed = '';
  private readonly listStatements = new Map<string, Database.Statement>();

  /**
   * Opens (creating if needed) the queue database. Throws HearthError('CONFIG') naming the file
   * and the fault when the database is corrupt, unreadable, unwritable or held by another process:
   * the daemon must refuse to start rather than serve on a broken queue.
   */
  static open(opts: SqliteQueueOptions): SqliteQueue {
    return new SqliteQueue(opts);
  }

  private constructor(opts: SqliteQueueOptions) {
    super(opts);
  }

  // ---- EventQueue -----------------------------------------------------------------------------

  submit(fn: string, payload: Buffer | string, opts?: SubmitOptions): Promise<SubmitResult> {
    try {
      checkSubmit(fn, 1, opts);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    const text = payloadText(payload);
    return this.write((tx) => {
      const r = this.insertEvents(tx, fn, [text], opts, false);
      return { id: r.ids[0], duplicate: r.duplicate };
    });
  }

  submitBatch(fn: string, payloads: ReadonlyArray<Buffer | string>, opts?: SubmitOptions): Promise<SubmitBatchResult> {
    try {
      checkSubmit(fn, payloads.length, opts);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    const texts = payloads.map(payloadText);
    return this.write((tx) => this.insertEvents(tx, fn, texts, opts, true));
  }

  private insertEvents(tx: TxContext, fn: string, texts: string[], opts: SubmitOptions | undefined, batch: boolean): SubmitBatchResult {
    const now = this.clock.now();
    const key = opts?.idempotencyKey;
    if (key !== undefined) {
      const row = this.st.idemGet.get(fn, key) as { ids: string; batch: number; created_at: number } | undefined;
      if (row && row.created_at > now - this.settings.idempotencyWindowMs) {
        if (Boolean(row.batch) !== batch) {
          throw new HearthError(
            'CONFLICT',
            `idempotency key '${key}' of function ${fn} was used for a ${row.batch ? 'batch' : 'single event'}, not a ${batch ? 'batch' : 'single event'}`,
          );
        }
        return { ids: JSON.parse(row.ids) as string[], duplicate: true };
      }
    }
    const depth = this.currentDepth();
    if (depth + texts.length > this.settings.maxQueued) {
      throw tooManyRequests(depth, texts.length, this.settings.maxQueued, this.settings.retryAfterS);
    }
    const maxAttempts = opts?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const priority = opts?.priority ?? 0;
    const notBefore = opts?.notBefore ?? now;
    const expiresAt = opts?.expiresAt ?? null;
    const trigger = opts?.trigger ?? 'async';
    const ids: string[] = [];
    for (const text of texts) {
      const id = this.ids.next();
      this.st.insert.run(id, fn, text, maxAttempts, priority, now, notBefore, expiresAt, trigger);
      ids.push(id);
    }
    if (key !== undefined) this.st.idemPut.run(fn, key, JSON.stringify(ids), batch ? 1 : 0, now);
    tx.depthDelta += texts.length;
    tx.available.add(fn);
    return { ids, duplicate: false };
  }

  lease(req: LeaseRequest = {}): Promise<EventRecord[]> {
    const leaseMs = req.leaseMs ?? this.settings.defaultLeaseMs;
    const expired: EventRecord[] = [];
    return this.write((tx) => {
      const now = this.clock.now();
      const take = (fn: string, want: number): EventRecord[] => {
        const got: EventRecord[] = [];
        for (;;) {
          const rows = this.st.due.all(fn, now, want - got.length) as Row[];
          if (rows.length === 0) return got;
          for (const row of rows) {
            tx.depthDelta -= 1;
            if (isExpired(row.expires_at, now)) {
              const error = expiredError(row.expires_at);
              this.st.markDead.run(now, JSON.stringify(error), row.seq);
              expired.push({ ...toRecord(row), status: 'dead', finishedAt: now, leaseUntil: null, error });
              continue;
            }
            this.st.markRunning.run(now, now + leaseMs, row.seq);
            const rec = toRecord(row);
            got.push({ ...rec, ...leasedFields(rec, now, leaseMs) });
          }
          if (got.length >= want) return got;
        }
      };
      const r = leaseRoundRobin(req, () => this.pendingFunctions(), this.lastServed, take);
      this.lastServed = r.lastServed;
      return r.leased;
    }).then((leased) => {
      for (const e of expired) req.onExpired?.(e);
      return leased;
    });
  }

  private pendingFunctions(): string[] {
    const fns: string[] = [];
    let last = '';
    for (;;) {
      const r = this.st.nextPendingFn.get(last) as { function: string } | undefined;
      if (!r) return fns;
      fns.push(r.function);
      last = r.function;
    }
  }

  private runningRow(id: string, fence: AttemptFence | undefined, what: string): Row {
    const row = this.st.byId.get(id) as Row | undefined;
    if (!row) throw eventNotFound(id);
    if (row.status !== 'running') throw new HearthError('CONFLICT', `cannot ${what} event ${id}: it is ${row.status}, not running`);
    if (fence?.attempt !== undefined && fence.attempt !== row.attempts) {
      throw new HearthError('CONFLICT', `cannot ${what} event ${id}: attempt ${fence.attempt} is stale, the event is on attempt ${row.attempts}`);
    }
    return row;
  }

  complete(id: string, result: string | null, fence?: AttemptFence): Promise<void> {
    return this.write(() => {
      const row = this.runningRow(id, fence, 'complete');
      this.st.markSucceeded.run(this.clock.now(), result, row.seq);
    });
  }

  fail(id: string, error: EventError, disposition: FailDisposition, fence?: AttemptFence): Promise<'failed' | 'dead'> {
    return this.write((tx) => {
      const row = this.runningRow(id, fence, 'fail');
      const now = this.clock.now();
      const err = JSON.stringify(error);
      if (failEndsDead(row.attempts, row.max_attempts, row.expires_at, disposition)) {
        this.st.markDead.run(now, err, row.seq);
        return 'dead' as const;
      }
      this.st.markFailed.run((disposition as { retryAt: number }).retryAt, err, row.seq);
      tx.depthDelta += 1;
      tx.available.add(row.function);
      return 'failed' as const;
    });
  }

  extendLease(id: string, leaseMs: number, fence?: AttemptFence): Promise<void> {
    return this.write(() => {
      const row = this.runningRow(id, fence, 'extend the lease of');
      this.st.setLease.run(this.clock.now() + leaseMs, row.seq);
    });
  }

  get(id: string): Promise<EventRecord> {
    return this.read(() => {
      const row = this.st.byId.get(id) as Row | undefined;
      if (!row) throw eventNotFound(id);
      return toRecord(row);
    });
  }

  list(filter: ListFilter = {}): Promise<EventRecord[]> {
    return this.read(() => {
      const limit = clampListLimit(filter.limit);
      if (filter.status !== undefined && !EVENT_STATUSES.includes(filter.status)) {
        throw new HearthError('BAD_REQUEST', `unknown event status '${String(filter.status)}' (one of ${EVENT_STATUSES.join(', ')})`);
      }
      const where: string[] = [];
      const args: unknown[] = [];
      if (filter.function !== undefined) {
        where.push('function = ?');
        args.push(filter.function);
      }
      if (filter.status !== undefined) {
        where.push('status = ?');
        args.push(filter.status);
      }
      if (filter.before !== undefined) {
        const b = this.st.byId.get(filter.before) as Row | undefined;
        if (!b) throw eventNotFound(filter.before);
        where.push('seq < ?');
        args.push(b.seq);
      }
      const sql = `SELECT * FROM events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ?`;
      let stmt = this.listStatements.get(sql);
      if (!stmt) this.listStatements.set(sql, (stmt = this.db.prepare(sql)));
      return (stmt.all(...args, limit) as Row[]).map(toRecord);
    });
  }

  redrive(id: string): Promise<void> {
    return this.write((tx) => {
      const row = this.st.byId.get(id) as Row | undefined;
      if (!row) throw eventNotFound(id);
      if (row.status !== 'dead') throw new HearthError('CONFLICT', `cannot redrive event ${id}: it is ${row.status}; only dead events can be redriven`);
      const depth = this.currentDepth();
      if (depth + 1 > this.settings.maxQueued) throw tooManyRequests(depth, 1, this.settings.maxQueued, this.settings.retryAfterS);
      const now = this.clock.now();
      const expiresAt = row.expires_at === null ? null : now + (row.expires_at - row.created_at);
      this.st.redrive.run(now, expiresAt, row.seq);
      tx.depthDelta += 1;
      tx.available.add(row.function);
    });
  }

  stats(): Promise<QueueStats> {
    return this.read(() => {
      const total = emptyCounts();
      const functions: QueueStats['functions'] = {};
      for (const r of this.st.statCounts.all() as Array<{ function: string; status: EventStatus; n: number }>) {
        const c = (functions[r.function] ??= emptyCounts());
        c[r.status] += r.n;
        total[r.status] += r.n;
      }
      for (const c of [total, ...Object.values(functions)]) c.depth = c.queued + c.failed;
      return { total, functions, maxQueued: this.settings.maxQueued };
    });
  }

  nextDueAt(fn?: string): Promise<number | null> {
    return this.read(() => {
      const r = (fn === undefined ? this.st.minDueAll.get() : this.st.minDueFn.get(fn)) as { t: number | null };
      return r.t;
    });
  }

  recoverRunning(opts?: { expiredOnly?: boolean }): Promise<RecoverResult> {
    return this.write((tx) => {
      const now = this.clock.now();
      const rows = (opts?.expiredOnly ? this.st.runningExpired.all(now) : this.st.running.all()) as Row[];
      const out: RecoverResult = { requeued: [], dead: [] };
      for (const row of rows) {
        const { dead, error } = recoveryOf({ attempts: row.attempts, maxAttempts: row.max_attempts, expiresAt: row.expires_at }, now);
        if (dead) {
          this.st.markDead.run(now, JSON.stringify(error), row.seq);
          out.dead.push(row.id);
        } else {
          this.st.markFailed.run(now, JSON.stringify(error), row.seq);
          tx.depthDelta += 1;
          tx.available.add(row.function);
          out.requeued.push(row.id);
        }
      }
      return out;
    });
  }

  async prune(): Promise<PruneResult> {
    const out: PruneResult = { events: 0, idempotencyKeys: 0 };
    for (;;) {
      const n = await this.write(() => this.st.pruneEvents.run(this.clock.now() - this.settings.retentionMs).changes);
      out.events += n;
      if (n < PRUNE_CHUNK) break;
    }
    out.idempotencyKeys = await this.write(() => this.st.pruneKeys.run(this.clock.now() - this.settings.idempotencyWindowMs).changes);
    return out;
  }

  purgeFunction(fn: string): Promise<number> {
    return this.write((tx) => {
      tx.depthDelta -= (this.st.countPendingFn.get(fn) as { n: number }).n;
      const n = this.st.purgeEvents.run(fn).changes;
      this.st.purgeKeys.run(fn);
      this.st.schedDelAll.run(fn);
      return n;
    });
  }
}
