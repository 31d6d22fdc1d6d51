/**
 * The queue database's prepared statements and row shape (see sqlite-queue.ts).
 */
import type Database from 'better-sqlite3';
import { HearthError } from '../errors.js';
import type { EventError, EventRecord, EventStatus } from './event-queue.js';

/** Succeeded events deleted per prune statement (prune loops until fewer are deleted). */
export const PRUNE_CHUNK = 5000;

/** The statements of one open queue database. */
export type Statements = ReturnType<typeof prepareStatements>;

export function prepareStatements(db: Database.Database) {
  return {
    countPending: db.prepare(`SELECT count(*) AS n FROM events WHERE status IN ('queued','failed')`),
    maxId: db.prepare(`SELECT id FROM events ORDER BY seq DESC LIMIT 1`),
    insert: db.prepare(
      `INSERT INTO events(id, function, payload, status, attempts, max_attempts, priority, created_at, not_before, expires_at, trigger)
       VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?)`,
    ),
    idemGet: db.prepare(`SELECT ids, batch, created_at FROM idempotency WHERE function = ? AND key = ?`),
    idemPut: db.prepare(
      `INSERT INTO idempotency(function, key, ids, batch, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(function, key) DO UPDATE SET ids = excluded.ids, batch = excluded.batch, created_at = excluded.created_at`,
    ),
    nextPendingFn: db.prepare(
      `SELECT function FROM events INDEXED BY events_pending WHERE status IN ('queued','failed') AND function > ? ORDER BY function LIMIT 1`,
    ),
    due: db.prepare(`SELECT * FROM events WHERE function = ? AND status IN ('queued','failed') AND not_before <= ? ORDER BY priority DESC, seq LIMIT ?`),
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
    pruneEvents: db.prepare(`DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE status = 'succeeded' AND finished_at < ? LIMIT ${PRUNE_CHUNK})`),
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

/** A row of the events table, as better-sqlite3 returns it. */
export interface Row {
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
  trigger: string | null;
}

export function toRecord(r: Row): EventRecord {
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
    trigger: r.trigger === 'schedule' ? 'schedule' : 'async',
  };
}

export function eventNotFound(id: string): HearthError {
  return new HearthError('EVENT_NOT_FOUND', `event ${id} not found`);
}
