/**
 * What only the SQLite queue promises: events survive the process (close and reopen, SIGKILL),
 * and a corrupt, unwritable or busy database is refused at open with a CONFIG error.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, systemClock, type Clock } from '../../src/clock.js';
import { HearthError } from '../../src/errors.js';
import Database from 'better-sqlite3';
import { SqliteQueue } from '../../src/queue/sqlite-queue.js';

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);
const MODULE = join(__dirname, '../../src/queue/sqlite-queue.js');

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-queue-sqlite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(dir: string, clock: Clock = new ManualClock(T0), extra: Partial<Parameters<typeof SqliteQueue.open>[0]> = {}): SqliteQueue {
  return SqliteQueue.open({ stateDir: dir, clock, maintenanceIntervalMs: 0, ...extra });
}

function configError(t: ExecutionContext, fn: () => unknown, message: RegExp): void {
  const err = t.throws(fn);
  t.true(err instanceof HearthError);
  t.is((err as HearthError).code, 'CONFIG');
  t.regex(err.message, message);
}

test('events and their states survive close and reopen', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const q = open(dir, clock);
  const ids = (await q.submitBatch('f', ['1', '2', '3'], { idempotencyKey: 'k' })).ids;
  const [a] = await q.lease();
  await q.complete(a.id, '"done"');
  await q.setScheduleState('f', 'rate(1 minute)', T0);
  await q.close();

  const q2 = open(dir, clock);
  t.teardown(() => q2.close());
  t.like(await q2.get(ids[0]), { status: 'succeeded', result: '"done"' });
  t.like(await q2.get(ids[1]), { status: 'queued' });
  t.deepEqual(await q2.submitBatch('f', ['x'], { idempotencyKey: 'k' }), { ids, duplicate: true });
  t.deepEqual([...(await q2.getScheduleStates('f'))], [['rate(1 minute)', T0]]);
});

test('the bound on queued events holds across a reopen', async (t) => {
  const dir = tempDir(t);
  const q = open(dir, undefined, { maxQueued: 3 });
  await q.submitBatch('f', ['1', '2', '3']);
  await q.close();
  const q2 = open(dir, undefined, { maxQueued: 3 });
  t.teardown(() => q2.close());
  const err = await t.throwsAsync(q2.submit('f', '4'));
  t.is((err as HearthError).code, 'TOO_MANY_REQUESTS');
});

test('ids keep increasing after a reopen even if the clock went back', async (t) => {
  const dir = tempDir(t);
  const q = open(dir, new ManualClock(T0));
  const a = await q.submit('f', '1');
  await q.close();
  const back = new ManualClock(T0 - 3600_000);
  const q2 = open(dir, back);
  t.teardown(() => q2.close());
  const b = await q2.submit('f', '2');
  t.true(b.id > a.id);
  back.advance(2 * 3600_000);
  const leased = await q2.lease({ perFunction: 2 });
  t.deepEqual(
    leased.map((e) => e.id),
    [a.id, b.id],
  );
});

test('after a simulated crash (closed while running), recoverRunning re-queues with the attempt counted', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(T0);
  const q = open(dir, clock);
  const { ids } = await q.submitBatch('f', ['1', '2', '3']);
  await q.lease({ perFunction: 2 });
  await q.close(); // the "daemon" goes away without completing
  clock.advance(5000);
  const q2 = open(dir, clock);
  t.teardown(() => q2.close());
  t.is((await q2.stats()).total.running, 2);
  const r = await q2.recoverRunning();
  t.deepEqual(r, { requeued: [ids[0], ids[1]], dead: [] });
  t.like(await q2.get(ids[0]), { status: 'failed', attempts: 1, notBefore: T0 + 5000 });
  const leased = await q2.lease({ perFunction: 10 });
  t.deepEqual(
    leased.map((e) => [e.id, e.attempts]),
    [
      [ids[0], 2],
      [ids[1], 2],
      [ids[2], 1],
    ],
  );
});

test('SIGKILL of a process in the middle of submitting loses no accepted event', async (t) => {
  const dir = tempDir(t);
  const script = `
    const fs = require('fs');
    const { SqliteQueue } = require(${JSON.stringify(MODULE)});
    const q = SqliteQueue.open({ stateDir: ${JSON.stringify(dir)}, maintenanceIntervalMs: 0 });
    let n = 0;
    async function worker() {
      for (;;) {
        const i = n++;
        const { id } = await q.submit('f', JSON.stringify({ i }));
        fs.writeSync(1, id + '\\n');
        if (i % 10 === 0) {
          const evs = await q.lease({ perFunction: 5 });
          for (const e of evs.slice(1)) await q.complete(e.id, '1');
          fs.writeSync(1, 'leased ' + (evs[0] ? evs[0].id : '') + '\\n');
        }
      }
    }
    for (let k = 0; k < 8; k++) worker();
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > 1500) resolve();
    });
    child.on('exit', () => reject(new Error(`child exited early: ${stderr}`)));
  });
  child.kill('SIGKILL');
  await exited;
  const lines = out.split('\n').slice(0, -1); // the last line may be partial
  const accepted = lines.filter((l) => l.length === 26);
  const leftRunning = lines.filter((l) => l.startsWith('leased ') && l.length > 7).map((l) => l.slice(7));
  t.true(accepted.length > 1000);

  const q = open(dir, systemClock);
  t.teardown(() => q.close());
  for (const id of accepted) {
    const e = await q.get(id); // throws EVENT_NOT_FOUND if an accepted event was lost
    t.true(['queued', 'running', 'succeeded'].includes(e.status));
  }
  const recovered = await q.recoverRunning();
  for (const id of leftRunning) t.true(recovered.requeued.includes(id) || (await q.get(id)).status !== 'running');
  // Everything drains to succeeded: none lost, none stuck.
  for (;;) {
    const evs = await q.lease({ perFunction: 500 });
    if (evs.length === 0) break;
    for (const e of evs) await q.complete(e.id, null);
  }
  const s = await q.stats();
  t.is(s.total.running + s.total.depth + s.total.dead, 0);
  t.true(s.total.succeeded >= accepted.length);
});

test('a file that is not a database is refused with a CONFIG error naming it', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'queue.db'), 'this is not an sqlite database, just some bytes '.repeat(200));
  configError(t, () => open(dir), new RegExp(`queue database ${join(dir, 'queue.db')} is corrupt`));
});

test('a database with a damaged page is refused at open (integrity check)', async (t) => {
  const dir = tempDir(t);
  const q = open(dir);
  for (let i = 0; i < 20; i++)
    await q.submitBatch(
      `f${i}`,
      Array.from({ length: 50 }, (_, j) => JSON.stringify({ i, j, pad: 'p'.repeat(200) })),
    );
  await q.close();
  const path = join(dir, 'queue.db');
  const size = statSync(path).size;
  t.true(size > 40 * 4096);
  // Overwrite the middle of the file (b-tree pages) with garbage, keeping the header intact.
  const fd = openSync(path, 'r+');
  const garbage = Buffer.alloc(3 * 4096, 0xa5);
  writeSync(fd, garbage, 0, garbage.length, Math.floor(size / 2 / 4096) * 4096);
  closeSync(fd);
  configError(t, () => open(dir), /queue database .*queue\.db is corrupt/);
});

test('a state directory that cannot be created is refused', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'file'), '');
  configError(t, () => open(join(dir, 'file', 'state')), /cannot create state directory .*file\/state/);
});

test('queue.db that is a directory is refused', (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'queue.db'));
  configError(t, () => open(dir), /queue\.db cannot be used: it is not a regular file/);
});

/** Makes a path unwritable even for root (chattr +i) or by mode when not root; undone in teardown. */
function makeUnwritable(t: ExecutionContext, path: string): boolean {
  if (process.getuid?.() !== 0) {
    spawnSync('chmod', ['a-w', path]);
    t.teardown(() => void spawnSync('chmod', ['u+w', path]));
    return true;
  }
  const r = spawnSync('chattr', ['+i', path]);
  if (r.status !== 0) return false;
  t.teardown(() => void spawnSync('chattr', ['-i', path]));
  return true;
}

test('an unwritable state directory is refused at open', (t) => {
  const dir = tempDir(t);
  const state = join(dir, 'state');
  mkdirSync(state);
  if (!makeUnwritable(t, state)) {
    t.log('skipped: running as root and chattr +i is not supported on this file system');
    t.pass();
    return;
  }
  configError(t, () => open(state), /queue database .*state\/queue\.db cannot be opened for writing/);
});

test('an existing database that cannot be written is refused at open', async (t) => {
  const dir = tempDir(t);
  const q = open(dir);
  await q.submit('f', '{}');
  await q.close();
  if (!makeUnwritable(t, join(dir, 'queue.db'))) {
    t.log('skipped: running as root and chattr +i is not supported on this file system');
    t.pass();
    return;
  }
  configError(t, () => open(dir), /queue database .*queue\.db cannot be opened for writing/);
});

test('a second queue on the same state directory is refused while the first is open', async (t) => {
  const dir = tempDir(t);
  const q = open(dir);
  t.teardown(() => q.close());
  await q.submit('f', '{}');
  configError(t, () => open(dir), /in use by another process/);
  t.is((await q.stats()).total.queued, 1, 'the first queue is unaffected');
});

test('writes arriving in the same tick share one commit and all resolve', async (t) => {
  const dir = tempDir(t);
  const q = open(dir);
  t.teardown(() => q.close());
  const results = await Promise.all(Array.from({ length: 500 }, (_, i) => q.submit(`f${i % 3}`, String(i))));
  t.is(new Set(results.map((r) => r.id)).size, 500);
  t.is((await q.stats()).total.queued, 500);
});

test('a database written by schema version 1 (no trigger column) opens, keeps its events as async, and stores new triggers', async (t) => {
  const dir = tempDir(t);
  const q = open(dir);
  const old = await q.submit('f', '1');
  await q.close();
  // Turn it back into what version 1 wrote: the same table without the trigger column.
  const db = new Database(join(dir, 'queue.db'));
  db.exec('ALTER TABLE events DROP COLUMN trigger');
  db.pragma('user_version = 1');
  db.close();

  const q2 = open(dir);
  t.teardown(() => q2.close());
  t.is((await q2.get(old.id)).trigger, 'async');
  const tick = await q2.submit('f', '2', { trigger: 'schedule' });
  t.is((await q2.get(tick.id)).trigger, 'schedule');
  t.deepEqual(
    (await q2.lease({ perFunction: 2 })).map((e) => e.trigger),
    ['async', 'schedule'],
  );
});

test("the maintenance sweep recovers expired leases unless told not to (the daemon's dispatcher does it and reports dead letters)", async (t) => {
  for (const recoverLeases of [true, false]) {
    const clock = new ManualClock(T0);
    const q = open(tempDir(t), clock, { maintenanceIntervalMs: 1_000, recoverLeases });
    const { id } = await q.submit('f', '1', { maxAttempts: 1 });
    await q.lease({ leaseMs: 100 });
    clock.advance(1_000); // the sweep starts, past the lease's end
    // The sweep's writes take a few turns of the loop; the same number of turns in both cases.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    t.like(await q.get(id), { status: recoverLeases ? 'dead' : 'running' }, `recoverLeases ${recoverLeases}`);
    await q.close();
  }
});
