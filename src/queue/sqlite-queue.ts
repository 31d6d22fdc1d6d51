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
 */
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { systemClock, type Clock } from '../clock.js';
import { HearthError } from '../errors.js';
import { EventIdGenerator } from './event-id.js';
import {
  checkSubmit,
  clampListLimit,
  DEFAULT_MAX_ATTEMPTS,
  emptyCounts,
  EVENT_STATUSES,
  expiredError,
  failEndsDead,
  payloadText,
  queueSettings,
  tooManyRequests,
  type AttemptFence,
  type AvailableListener,
  type EventError,
  type EventQueue,
  type EventRecord,
  type EventStatus,
  type FailDisposition,
  type LeaseRequest,
  type ListFilter,
  type PruneResult,
  type QueueSettings,
  type QueueStats,
  type RecoverResult,
  type ScheduleStateStore,
  type SubmitBatchResult,
  type SubmitOptions,
  type SubmitResult,
} from './event-queue.js';
import { isExpired, leasedFields, leaseRoundRobin, recoveryOf } from './lease.js';

export interface SqliteQueueOptions extends Partial<QueueSettings> {
  /** Directory holding queue.db (created if missing). */
  stateDir: string;
  /** Time source; its setTimeout drives the maintenance sweep. Default the system clock. */
  clock?: Clock;
  /** 'full' (default): fsync on every commit. 'normal': fsync at checkpoints only (see file comment). */
  synchronous?: 'full' | 'normal';
  /** Period of the sweep that prunes and recovers expired leases; 0 disables. Default 60 s. */
  maintenanceIntervalMs?: number;
  /** Told about failures of the background sweep (the sweep never throws). */
  onMaintenanceError?: (err: unknown) => void;
}

export const QUEUE_DB_FILE = 'queue.db';
const SCHEMA_VERSION = 1;
const PRUNE_CHUNK = 5000;

interface PendingOp {
  run: (tx: TxContext) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** What the ops of one flush change besides rows: applied only when the commit succeeds. */
interface TxContext {
  depthDelta: number;
  available: Set<string>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq          INTEGER PRIMARY KEY,
  id           TEXT NOT NULL UNIQUE,
  function     TEXT NOT NULL,
  payload      TEXT NOT NULL,
  status       TEXT NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  priority     INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  not_before   INTEGER NOT NULL,
  started_at   INTEGER,
  finished_at  INTEGER,
  expires_at   INTEGER,
  lease_until  INTEGER,
  result       TEXT,
  error        TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events(function, priority DESC, seq) WHERE status IN ('queued','failed');
CREATE INDEX IF NOT EXISTS events_fn_status ON events(function, status, seq);
CREATE INDEX IF NOT EXISTS events_status ON events(status, seq);
CREATE INDEX IF NOT EXISTS events_succeeded ON events(finished_at) WHERE status = 'succeeded';
CREATE TABLE IF NOT EXISTS idempotency (
  function   TEXT NOT NULL,
  key        TEXT NOT NULL,
  ids        TEXT NOT NULL,
  batch      INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (function, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created_at);
CREATE TABLE IF NOT EXISTS schedule_state (
  function        TEXT NOT NULL,
  expression      TEXT NOT NULL,
  handled_through INTEGER NOT NULL,
  PRIMARY KEY (function, expression)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

export class SqliteQueue implements EventQueue, ScheduleStateStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly settings: QueueSettings;
  private readonly ids: EventIdGenerator;
  private readonly listeners = new Set<AvailableListener>();
  private ops: PendingOp[] = [];
  private flushScheduled = false;
  private closed = false;
  /** queued + failed, committed. */
  private depth = 0;
  /** depth changes of ops already run in the open transaction. */
  private txDepthDelta = 0;
  private maintenanceTimer: unknown = null;
  /** Round-robin start for leases over all functions. */
  private lastServed = '';
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly maintenanceIntervalMs: number;
  private readonly onMaintenanceError: ((err: unknown) => void) | undefined;
  private readonly st: ReturnType<SqliteQueue['prepare']>;

  /**
   * Opens (creating if needed) the queue database. Throws HearthError('CONFIG') naming the file
   * and the fault when the database is corrupt, unreadable, unwritable or held by another process:
   * the daemon must refuse to start rather than serve on a broken queue.
   */
  static open(opts: SqliteQueueOptions): SqliteQueue {
    return new SqliteQueue(opts);
  }

  private constructor(opts: SqliteQueueOptions) {
    this.clock = opts.clock ?? systemClock;
    this.settings = queueSettings(opts);
    this.ids = new EventIdGenerator(this.clock);
    this.maintenanceIntervalMs = opts.maintenanceIntervalMs ?? 60_000;
    this.onMaintenanceError = opts.onMaintenanceError;
    this.path = join(opts.stateDir, QUEUE_DB_FILE);
    try {
      mkdirSync(opts.stateDir, { recursive: true });
    } catch (err) {
      throw new HearthError('CONFIG', `cannot create state directory ${opts.stateDir} for the queue database: ${(err as Error).message}`, { cause: err });
    }
    try {
      const s = statSync(this.path, { throwIfNoEntry: false });
      if (s && !s.isFile()) throw new Error('it is not a regular file');
    } catch (err) {
      throw new HearthError('CONFIG', `queue database ${this.path} cannot be used: ${(err as Error).message}`, { cause: err });
    }
    try {
      // SQLite silently falls back to read-only on a file it cannot write; say so plainly instead.
      // A new file is created 0600 (payloads may be private); SQLite gives its -wal the same mode.
      closeSync(openSync(this.path, statSync(this.path, { throwIfNoEntry: false }) ? 'r+' : 'wx', 0o600));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new HearthError('CONFIG', `queue database ${this.path} cannot be opened for writing (${code}: ${(err as Error).message}); the daemon needs read-write access to the file and its directory`, { cause: err });
    }
    let db: Database.Database;
    try {
      // A short busy timeout: the only contender for the lock is another daemon, which we refuse.
      db = new Database(this.path, { timeout: 1000 });
    } catch (err) {
      throw openFault(this.path, err);
    }
    try {
      // Exclusive before the first WAL access: no shared-memory file, one owning process.
      db.pragma('locking_mode = EXCLUSIVE');
      const check = db.pragma('quick_check', { simple: false }) as Array<{ quick_check: string }>;
      if (check.length !== 1 || check[0]?.quick_check !== 'ok') {
        const problems = check.slice(0, 3).map((r) => r.quick_check).join('; ');
        throw new HearthError('CONFIG', `queue database ${this.path} is corrupt (integrity check failed: ${problems}); move it aside to start with an empty queue, or restore it from a backup`);
      }
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new HearthError('CONFIG', `queue database ${this.path} has schema version ${version}, newer than this Hearth understands (${SCHEMA_VERSION})`);
      }
      const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
      if (String(mode).toLowerCase() !== 'wal') throw new Error(`cannot switch to WAL journal (got ${mode})`);
      db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      db.pragma('journal_size_limit = 67108864');
      db.pragma('cache_size = -16384');
      db.pragma('temp_store = MEMORY');
      // Writability check: a real write transaction, committed (and fsynced) at start.
      db.exec('BEGIN IMMEDIATE');
      try {
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
        db.prepare(`INSERT INTO meta(key, value) VALUES ('opened_at', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(
          new Date(this.clock.now()).toISOString(),
        );
        db.exec('COMMIT');
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      try {
        db.close();
      } catch {
        /* already failing */
      }
      if (err instanceof HearthError) throw err;
      throw openFault(this.path, err);
    }
    this.db = db;
    this.st = this.prepare();
    this.depth = (this.st.countPending.get() as { n: number }).n;
    this.ids.seed((this.st.maxId.get() as { id: string | null } | undefined)?.id);
    this.armMaintenance();
  }

  private prepare() {
    const db = this.db;
    return {
      countPending: db.prepare(`SELECT count(*) AS n FROM events WHERE status IN ('queued','failed')`),
      maxId: db.prepare(`SELECT id FROM events ORDER BY seq DESC LIMIT 1`),
      insert: db.prepare(
        `INSERT INTO events(id, function, payload, status, attempts, max_attempts, priority, created_at, not_before, expires_at)
         VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)`,
      ),
      idemGet: db.prepare(`SELECT ids, batch, created_at FROM idempotency WHERE function = ? AND key = ?`),
      idemPut: db.prepare(
        `INSERT INTO idempotency(function, key, ids, batch, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(function, key) DO UPDATE SET ids = excluded.ids, batch = excluded.batch, created_at = excluded.created_at`,
      ),
      nextPendingFn: db.prepare(`SELECT function FROM events INDEXED BY events_pending WHERE status IN ('queued','failed') AND function > ? ORDER BY function LIMIT 1`),
      due: db.prepare(
        `SELECT * FROM events WHERE function = ? AND status IN ('queued','failed') AND not_before <= ? ORDER BY priority DESC, seq LIMIT ?`,
      ),
      markRunning: db.prepare(`UPDATE events SET status = 'running', attempts = attempts + 1, started_at = ?, finished_at = NULL, lease_until = ? WHERE seq = ?`),
      markDead: db.prepare(`UPDATE events SET status = 'dead', finished_at = ?, lease_until = NULL, error = ? WHERE seq = ?`),
      markFailed: db.prepare(`UPDATE events SET status = 'failed', not_before = ?, lease_until = NULL, error = ? WHERE seq = ?`),
      markSucceeded: db.prepare(`UPDATE events SET status = 'succeeded', finished_at = ?, lease_until = NULL, result = ?, error = NULL WHERE seq = ?`),
      setLease: db.prepare(`UPDATE events SET lease_until = ? WHERE seq = ?`),
      redrive: db.prepare(
        `UPDATE events SET status = 'queued', attempts = 0, not_before = ?, started_at = NULL, finished_at = NULL, lease_until = NULL,
         result = NULL, error = NULL, expires_at = ? WHERE seq = ?`,
      ),
      byId: db.prepare(`SELECT * FROM events WHERE id = ?`),
      running: db.prepare(`SELECT * FROM events WHERE status = 'running' ORDER BY seq`),
      runningExpired: db.prepare(`SELECT * FROM events WHERE status = 'running' AND lease_until <= ? ORDER BY seq`),
      statCounts: db.prepare(`SELECT function, status, count(*) AS n FROM events GROUP BY function, status`),
      minDueAll: db.prepare(`SELECT min(not_before) AS t FROM events WHERE status IN ('queued','failed')`),
      minDueFn: db.prepare(`SELECT min(not_before) AS t FROM events WHERE function = ? AND status IN ('queued','failed')`),
      pruneEvents: db.prepare(
        `DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE status = 'succeeded' AND finished_at < ? LIMIT ${PRUNE_CHUNK})`,
      ),
      pruneKeys: db.prepare(`DELETE FROM idempotency WHERE created_at < ?`),
      countPendingFn: db.prepare(`SELECT count(*) AS n FROM events WHERE function = ? AND status IN ('queued','failed')`),
      purgeEvents: db.prepare(`DELETE FROM events WHERE function = ?`),
      purgeKeys: db.prepare(`DELETE FROM idempotency WHERE function = ?`),
      schedGet: db.prepare(`SELECT expression, handled_through FROM schedule_state WHERE function = ?`),
      schedPut: db.prepare(
        `INSERT INTO schedule_state(function, expression, handled_through) VALUES (?, ?, ?)
         ON CONFLICT(function, expression) DO UPDATE SET handled_through = excluded.handled_through`,
      ),
      schedDelOne: db.prepare(`DELETE FROM schedule_state WHERE function = ? AND expression = ?`),
      schedDelAll: db.prepare(`DELETE FROM schedule_state WHERE function = ?`),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
    };
  }

  // ---- group commit -------------------------------------------------------------------------

  private write<T>(run: (tx: TxContext) => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Runs every pending op in one transaction. An op that throws a HearthError has, by
   * construction, written nothing (ops validate before they write) and fails alone; any other
   * error aborts the whole transaction and fails every op in it.
   */
  private flush(): void {
    this.flushScheduled = false;
    const ops = this.ops;
    this.ops = [];
    if (ops.length === 0) return;
    const outcomes: Array<{ ok: true; v: unknown; tx: TxContext } | { ok: false; e: unknown }> = [];
    this.txDepthDelta = 0;
    try {
      this.st.begin.run();
      for (const op of ops) {
        const tx: TxContext = { depthDelta: 0, available: new Set() };
        try {
          const v = op.run(tx);
          this.txDepthDelta += tx.depthDelta;
          outcomes.push({ ok: true, v, tx });
        } catch (e) {
          if (!(e instanceof HearthError)) throw e;
          outcomes.push({ ok: false, e });
        }
      }
      this.st.commit.run();
    } catch (err) {
      if (this.db.inTransaction) {
        try {
          this.st.rollback.run();
        } catch {
          /* the transaction may already be rolled back by SQLite */
        }
      }
      this.txDepthDelta = 0;
      this.depth = (this.st.countPending.get() as { n: number }).n;
      const e = new HearthError('UNAVAILABLE', `queue database ${this.path}: write failed, nothing was changed: ${(err as Error).message}`, { cause: err });
      for (const op of ops) op.reject(e);
      return;
    }
    this.txDepthDelta = 0;
    const available = new Set<string>();
    for (let i = 0; i < ops.length; i++) {
      const o = outcomes[i]!;
      if (o.ok) {
        this.depth += o.tx.depthDelta;
        for (const fn of o.tx.available) available.add(fn);
        ops[i]!.resolve(o.v);
      } else {
        ops[i]!.reject(o.e);
      }
    }
    for (const fn of available) {
      for (const l of this.listeners) {
        try {
          l(fn);
        } catch {
          /* listeners must not throw; one that does must not break the queue */
        }
      }
    }
  }

  private currentDepth(): number {
    return this.depth + this.txDepthDelta;
  }

  // ---- EventQueue -----------------------------------------------------------------------------

  submit(fn: string, payload: Buffer | string, opts?: SubmitOptions): Promise<SubmitResult> {
    try {
      checkSubmit(fn, 1, opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const text = payloadText(payload);
    return this.write((tx) => {
      const r = this.insertEvents(tx, fn, [text], opts, false);
      return { id: r.ids[0]!, duplicate: r.duplicate };
    });
  }

  submitBatch(fn: string, payloads: ReadonlyArray<Buffer | string>, opts?: SubmitOptions): Promise<SubmitBatchResult> {
    try {
      checkSubmit(fn, payloads.length, opts);
    } catch (e) {
      return Promise.reject(e);
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
          throw new HearthError('CONFLICT', `idempotency key '${key}' of function ${fn} was used for a ${row.batch ? 'batch' : 'single event'}, not a ${batch ? 'batch' : 'single event'}`);
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
    const ids: string[] = [];
    for (const text of texts) {
      const id = this.ids.next();
      this.st.insert.run(id, fn, text, maxAttempts, priority, now, notBefore, expiresAt);
      ids.push(id);
    }
    if (key !== undefined) this.st.idemPut.run(fn, key, JSON.stringify(ids), batch ? 1 : 0, now);
    tx.depthDelta += texts.length;
    tx.available.add(fn);
    return { ids, duplicate: false };
  }

  lease(req: LeaseRequest = {}): Promise<EventRecord[]> {
    const leaseMs = req.leaseMs ?? this.settings.defaultLeaseMs;
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
              this.st.markDead.run(now, JSON.stringify(expiredError(row.expires_at)), row.seq);
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

  onAvailable(listener: AvailableListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.maintenanceTimer !== null) {
      this.clock.clearTimeout(this.maintenanceTimer as never);
      this.maintenanceTimer = null;
    }
    this.flush();
    this.listeners.clear();
    this.db.close();
  }

  // ---- ScheduleStateStore ---------------------------------------------------------------------

  getScheduleStates(fn: string): Promise<Map<string, number>> {
    return this.read(() => {
      const m = new Map<string, number>();
      for (const r of this.st.schedGet.all(fn) as Array<{ expression: string; handled_through: number }>) m.set(r.expression, r.handled_through);
      return m;
    });
  }

  setScheduleState(fn: string, expression: string, handledThrough: number): Promise<void> {
    return this.write(() => {
      this.st.schedPut.run(fn, expression, handledThrough);
    });
  }

  deleteScheduleState(fn: string, expression?: string): Promise<void> {
    return this.write(() => {
      if (expression === undefined) this.st.schedDelAll.run(fn);
      else this.st.schedDelOne.run(fn, expression);
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private read<T>(run: () => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(run());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private armMaintenance(): void {
    if (this.maintenanceIntervalMs <= 0 || this.closed) return;
    const h = this.clock.setTimeout(() => {
      this.maintenanceTimer = null;
      void this.maintain()
        .catch((err) => this.onMaintenanceError?.(err))
        .finally(() => this.armMaintenance());
    }, this.maintenanceIntervalMs);
    h.unref?.();
    this.maintenanceTimer = h;
  }

  private async maintain(): Promise<void> {
    if (this.closed) return;
    await this.prune();
    if (this.closed) return;
    await this.recoverRunning({ expiredOnly: true });
  }
}


/** A row of the events table, as better-sqlite3 returns it. */
interface Row {
  seq: number;
  id: string;
  function: string;
  payload: string;
  status: EventStatus;
  attempts: number;
  max_attempts: number;
  priority: number;
  created_at: number;
  not_before: number;
  started_at: number | null;
  finished_at: number | null;
  expires_at: number | null;
  lease_until: number | null;
  result: string | null;
  error: string | null;
}

function toRecord(r: Row): EventRecord {
  return {
    id: r.id,
    function: r.function,
    payload: r.payload,
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    priority: r.priority,
    createdAt: r.created_at,
    notBefore: r.not_before,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    expiresAt: r.expires_at,
    leaseUntil: r.lease_until,
    result: r.result,
    error: r.error === null ? null : (JSON.parse(r.error) as EventError),
  };
}

function eventNotFound(id: string): HearthError {
  return new HearthError('EVENT_NOT_FOUND', `event ${id} not found`);
}

function closedError(): HearthError {
  return new HearthError('UNAVAILABLE', 'the event queue is closed');
}

function openFault(path: string, err: unknown): HearthError {
  const code = String((err as { code?: unknown }).code ?? '');
  const msg = (err as Error).message ?? String(err);
  let what: string;
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    what = `is corrupt (${msg}); move it aside to start with an empty queue, or restore it from a backup`;
  } else if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
    what = `cannot be opened for writing (${code}: ${msg}); the daemon needs read-write access to the file and its directory`;
  } else if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    what = `is in use by another process (${msg}); is another hearth daemon running on this state directory?`;
  } else if (code === 'SQLITE_FULL') {
    what = `cannot be written: the disk is full (${msg})`;
  } else if (code.startsWith('SQLITE_IOERR')) {
    what = `cannot be read or written: I/O error (${code}: ${msg})`;
  } else {
    what = `cannot be used (${code ? code + ': ' : ''}${msg})`;
  }
  return new HearthError('CONFIG', `queue database ${path} ${what}`, { cause: err });
}
