/**
 * Opening the queue database (see sqlite-queue.ts): the schema, its version, and the checks that
 * refuse a corrupt, unreadable, unwritable or foreign-held database before the daemon serves.
 */
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { HearthError } from '../errors.js';

/** 1: the first schema; 2: events.trigger (what queued the event; NULL in rows written by version 1 reads as async). */
const SCHEMA_VERSION = 2;

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
  error        TEXT,
  trigger      TEXT
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

/**
 * Opens (creating if needed) the queue database at `path` in `stateDir`, applies the schema and
 * the pragmas, and records `now` as the open time. Throws HearthError('CONFIG') naming the file
 * and the fault when the database is corrupt, unreadable, unwritable or held by another process.
 */
export function openQueueDatabase(stateDir: string, path: string, synchronous: 'full' | 'normal' | undefined, now: number): Database.Database {
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (err) {
    throw new HearthError('CONFIG', `cannot create state directory ${stateDir} for the queue database: ${(err as Error).message}`, { cause: err });
  }
  try {
    const s = statSync(path, { throwIfNoEntry: false });
    if (s && !s.isFile()) throw new Error('it is not a regular file');
  } catch (err) {
    throw new HearthError('CONFIG', `queue database ${path} cannot be used: ${(err as Error).message}`, { cause: err });
  }
  try {
    // SQLite silently falls back to read-only on a file it cannot write; say so plainly instead.
    // A new file is created 0600 (payloads may be private); SQLite gives its -wal the same mode.
    closeSync(openSync(path, statSync(path, { throwIfNoEntry: false }) ? 'r+' : 'wx', 0o600));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new HearthError(
      'CONFIG',
      `queue database ${path} cannot be opened for writing (${code}: ${(err as Error).message}); the daemon needs read-write access to the file and its directory`,
      { cause: err },
    );
  }
  let db: Database.Database;
  try {
    // A short busy timeout: the only contender for the lock is another daemon, which we refuse.
    db = new Database(path, { timeout: 1000 });
  } catch (err) {
    throw openFault(path, err);
  }
  try {
    // Exclusive before the first WAL access: no shared-memory file, one owning process.
    db.pragma('locking_mode = EXCLUSIVE');
    const check = db.pragma('quick_check', { simple: false }) as Array<{ quick_check: string }>;
    if (check.length !== 1 || check[0]?.quick_check !== 'ok') {
      const problems = check
        .slice(0, 3)
        .map((r) => r.quick_check)
        .join('; ');
      throw new HearthError(
        'CONFIG',
        `queue database ${path} is corrupt (integrity check failed: ${problems}); move it aside to start with an empty queue, or restore it from a backup`,
      );
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new HearthError('CONFIG', `queue database ${path} has schema version ${version}, newer than this Hearth understands (${SCHEMA_VERSION})`);
    }
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (String(mode).toLowerCase() !== 'wal') throw new Error(`cannot switch to WAL journal (got ${mode})`);
    db.pragma(`synchronous = ${synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('journal_size_limit = 67108864');
    db.pragma('cache_size = -16384');
    db.pragma('temp_store = MEMORY');
    // Writability check: a real write transaction, committed (and fsynced) at start.
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(SCHEMA);
      migrate(db);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      db.prepare(`INSERT INTO meta(key, value) VALUES ('opened_at', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(new Date(now).toISOString());
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
    throw openFault(path, err);
  }
  return db;
}

/** Brings a database written by an older Hearth up to SCHEMA_VERSION, inside the open transaction. */
function migrate(db: Database.Database): void {
  const columns = (db.pragma('table_info(events)') as Array<{ name: string }>).map((c) => c.name);
  if (!columns.includes('trigger')) db.exec('ALTER TABLE events ADD COLUMN trigger TEXT');
}

function openFault(path: string, err: unknown): HearthError {
  const code = String((err as { code?: string }).code ?? '');
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
