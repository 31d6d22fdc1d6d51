/**
 * The invocation log: records and output per function on disk, bounded (rotation, per-invocation
 * cut, dropped when writes fall behind), kept across a restart, removed with the function.
 */
import test, { type ExecutionContext } from 'ava';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvocationLog, type InvocationLogOptions } from '../../src/observe/invocation-log.js';
import { rec } from './observe-fixture.js';

function setup(t: ExecutionContext, over: Partial<InvocationLogOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-invlog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const live = new Set(['f', 'g']);
  const errors: unknown[] = [];
  const make = () => new InvocationLog({ dir, exists: (fn) => live.has(fn), onError: (e) => errors.push(e), flushMs: 10, ...over });
  return { dir, live, errors, make };
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

test('records come back newest first; output lines oldest first with time and invocation id; they survive a restart', async (t) => {
  const { make, errors } = setup(t);
  const log = make();
  await log.start();
  log.record(rec({ id: 'a', endedAt: 1000, logs: 'one\ntwo\n' }));
  log.record(rec({ id: 'b', endedAt: 2000, logs: 'three', outcome: 'error', error: { type: 'E', message: 'bad' } }));
  log.record(rec({ id: 'c', function: 'g', endedAt: 3000, logs: 'other function' }));
  t.deepEqual(
    (await log.last('f', 10)).map((r) => r.id),
    ['b', 'a'],
  );
  t.deepEqual(await log.lines('f', 1500), [{ time: new Date(2000).toISOString(), invocationId: 'b', line: 'three' }]);
  await log.stop();

  const again = make();
  await again.start();
  const [b, a] = await again.last('f', 10);
  t.like(b, { id: 'b', outcome: 'error', error: { type: 'E', message: 'bad' }, trigger: 'sync', start: 'warm' });
  t.is(a.id, 'a');
  t.deepEqual(
    (await again.lines('f', 0)).map((l) => `${l.invocationId} ${l.line}`),
    ['a one', 'a two', 'b three'],
  );
  t.deepEqual(errors, []);
  await again.stop();
});

test("a function's storage stays bounded by rotation; the newest records are kept", async (t) => {
  const { make, dir } = setup(t, { maxFileBytes: 20_000, keep: 2 });
  const log = make();
  await log.start();
  for (let i = 0; i < 400; i++) {
    log.record(rec({ id: `r${i}`, endedAt: i, logs: 'x'.repeat(500) }));
    if (i % 5 === 0) await log.flush();
  }
  await log.flush();
  const bytes = dirBytes(join(dir, 'f'));
  t.true(bytes <= 3 * 20_000 + 2_000, `${bytes} bytes kept`);
  t.deepEqual(readdirSync(join(dir, 'f')).sort(), ['invocations.1.jsonl', 'invocations.2.jsonl', 'invocations.jsonl']);
  const last = await log.last('f', 1000);
  t.is(last[0].id, 'r399');
  t.true(last.length < 400 && last.length > 50, `${last.length} kept`);
  await log.stop();
});

test('one invocation’s output is cut at maxLogBytes; a flood faster than the disk drops records, counted, not memory', async (t) => {
  const { make } = setup(t, { maxLogBytes: 100, maxPendingBytes: 2_000, flushMs: 60_000 });
  const log = make();
  await log.start();
  log.record(rec({ id: 'big', endedAt: 1, logs: 'y'.repeat(1000) }));
  for (let i = 0; i < 100; i++) log.record(rec({ id: `flood${i}`, endedAt: 2, logs: 'z'.repeat(100) }));
  log.record(rec({ function: 'g', id: 'quiet', endedAt: 3, logs: 'still here' }));
  await log.flush();
  log.record(rec({ id: 'after', endedAt: 4, logs: 'later' }));
  const lines = (await log.lines('f', 0)).map((l) => l.line);
  t.is(lines[0], 'y'.repeat(100));
  t.is(lines[1], '[hearth: 900 more bytes of output not kept]');
  t.true(lines.some((l) => /^\[hearth: \d+ earlier invocations' records dropped/.test(l)));
  const kept = (await log.last('f', 1000)).length;
  t.true(kept < 30, `${kept} records kept of 102`);
  t.deepEqual(
    (await log.lines('g', 0)).map((l) => l.line),
    ['still here'],
    'another function is not affected',
  );
  await log.stop();
});

test('a deleted function’s records are removed, late records of it are not written, and start() removes leftovers', async (t) => {
  const { make, dir, live } = setup(t);
  const log = make();
  await log.start();
  log.record(rec({ function: 'g', id: 'x' }));
  await log.flush();
  t.true(existsSync(join(dir, 'g')));
  live.delete('g');
  await log.remove('g');
  log.record(rec({ function: 'g', id: 'late' }));
  await log.flush();
  t.false(existsSync(join(dir, 'g')));
  await log.stop();

  live.add('g');
  const l2 = make();
  await l2.start();
  l2.record(rec({ function: 'g', id: 'y' }));
  await l2.stop();
  live.delete('g');
  const l3 = make();
  await l3.start();
  t.false(existsSync(join(dir, 'g')), 'records of a function deleted while the daemon was down are removed at start');
  await l3.stop();
});

test('a torn last line (killed mid-append) is skipped; the rest reads', async (t) => {
  const { make, dir } = setup(t);
  const log = make();
  await log.start();
  log.record(rec({ id: 'whole', logs: 'ok' }));
  await log.flush();
  appendFileSync(join(dir, 'f', 'invocations.jsonl'), '{"id":"torn","func');
  t.deepEqual(
    (await log.last('f', 10)).map((r) => r.id),
    ['whole'],
  );
  await log.stop();
});
