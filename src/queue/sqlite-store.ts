/**
 * The storage half of SqliteQueue (sqlite-queue.ts): the open database, its statements, group
 * commit, the in-memory depth counter, and the maintenance sweep. The queue operations live in
 * SqliteQueue, which extends this.
 *
 * Group commit: writes that arrive in the same event-loop turn are committed together in one
 * transaction and one fsync; each write's promise resolves after that commit.
 */
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { systemClock, type Clock } from '../clock.js';
import { asError, HearthError } from '../errors.js';
import { EventIdGenerator } from './event-id.js';
import { queueSettings, type AvailableListener, type PruneResult, type QueueSettings, type RecoverResult, type ScheduleStateStore } from './event-queue.js';
import { openQueueDatabase } from './sqlite-open.js';
import { prepareStatements, type Statements } from './sqlite-statements.js';

export interface SqliteQueueOptions extends Partial<QueueSettings> {
  /** Directory holding queue.db (created if missing). */
  stateDir: string;
  /** Time source; its setTimeout drives the maintenance sweep. Default the system clock. */
  clock?: Clock;
  /** 'full' (default): fsync on every commit. 'normal': fsync at checkpoints only (see sqlite-queue.ts). */
  synchronous?: 'full' | 'normal';
  /** Period of the sweep that prunes and recovers expired leases; 0 disables. Default 60 s. */
  maintenanceIntervalMs?: number;
  /**
   * Whether the sweep also recovers expired leases (default true). The daemon says false: its
   * dispatcher sweeps them itself and reports the events that end dead (metrics, dead-letter feed).
   */
  recoverLeases?: boolean;
  /** Told about failures of the background sweep (the sweep never throws). */
  onMaintenanceError?: (err: unknown) => void;
}

export const QUEUE_DB_FILE = 'queue.db';

interface PendingOp {
  run: (tx: TxContext) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** What the ops of one flush change besides rows: applied only when the commit succeeds. */
export interface TxContext {
  depthDelta: number;
  available: Set<string>;
}

export abstract class SqliteStore implements ScheduleStateStore {
  readonly path: string;
  protected readonly db: Database.Database;
  protected readonly clock: Clock;
  protected readonly settings: QueueSettings;
  protected readonly ids: EventIdGenerator;
  protected readonly listeners = new Set<AvailableListener>();
  protected ops: PendingOp[] = [];
  protected flushScheduled = false;
  protected closed = false;
  /** queued + failed, committed. */
  protected depth = 0;
  /** depth changes of ops already run in the open transaction. */
  protected txDepthDelta = 0;
  protected maintenanceTimer: unknown = null;
  protected readonly maintenanceIntervalMs: number;
  protected readonly onMaintenanceError: ((err: unknown) => void) | undefined;
  private readonly recoverLeases: boolean;
  protected readonly st: Statements;

  /** Opens the database (see openQueueDatabase for the refusals) and arms the maintenance sweep. */
  protected constructor(opts: SqliteQueueOptions) {
    this.clock = opts.clock ?? systemClock;
    this.settings = queueSettings(opts);
    this.ids = new EventIdGenerator(this.clock);
    this.maintenanceIntervalMs = opts.maintenanceIntervalMs ?? 60_000;
    this.onMaintenanceError = opts.onMaintenanceError;
    this.recoverLeases = opts.recoverLeases ?? true;
    this.path = join(opts.stateDir, QUEUE_DB_FILE);
    this.db = openQueueDatabase(opts.stateDir, this.path, opts.synchronous, this.clock.now());
    this.st = prepareStatements(this.db);
    this.depth = (this.st.countPending.get() as { n: number }).n;
    this.ids.seed((this.st.maxId.get() as { id: string | null } | undefined)?.id);
    this.armMaintenance();
  }

  abstract prune(): Promise<PruneResult>;
  abstract recoverRunning(opts?: { expiredOnly?: boolean }): Promise<RecoverResult>;

  // ---- group commit -------------------------------------------------------------------------

  protected write<T>(run: (tx: TxContext) => T): Promise<T> {
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
  protected flush(): void {
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
      const o = outcomes[i];
      if (o.ok) {
        this.depth += o.tx.depthDelta;
        for (const fn of o.tx.available) available.add(fn);
        ops[i].resolve(o.v);
      } else {
        ops[i].reject(o.e);
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

  protected currentDepth(): number {
    return this.depth + this.txDepthDelta;
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

  protected read<T>(run: () => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(run());
    } catch (e) {
      return Promise.reject(asError(e));
    }
  }

  protected armMaintenance(): void {
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

  protected async maintain(): Promise<void> {
    if (this.closed) return;
    await this.prune();
    if (this.closed || !this.recoverLeases) return;
    await this.recoverRunning({ expiredOnly: true });
  }
}

function closedError(): HearthError {
  return new HearthError('UNAVAILABLE', 'the event queue is closed');
}
