import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseUidRange } from '../../src/config.js';
import { isHearthError } from '../../src/errors.js';
import { UidMap } from '../../src/sandbox/uid-map.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-uids-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('parseUidRange: START:COUNT, never 0, at least the pool id and one function, within the id space', (t) => {
  t.deepEqual(parseUidRange('200000:65536'), { start: 200000, count: 65536 });
  t.deepEqual(parseUidRange(' 1:2 '), { start: 1, count: 2 });
  t.regex(parseUidRange('200000') as string, /expected START:COUNT/);
  t.regex(parseUidRange('-1:5') as string, /expected START:COUNT/);
  t.regex(parseUidRange('0:10') as string, /must not start at 0 \(host root\)/);
  t.regex(parseUidRange('5:1') as string, /COUNT must be at least 2/);
  t.regex(parseUidRange('4294967290:10') as string, /ends past 4294967294/);
  t.deepEqual(parseUidRange('4294967285:10'), { start: 4294967285, count: 10 });
});

test('config: uidRange is absent unless given (an automatic block) and userns is true; a bad range is a CONFIG error naming the key', (t) => {
  const c = loadConfig({ overrides: { stateDir: '/tmp/x' } });
  t.is(c.uidRange, undefined);
  t.deepEqual(loadConfig({ overrides: { stateDir: '/tmp/x', uidRange: '300000:10' } }).uidRange, { start: 300000, count: 10 });
  t.true(c.userns);
  const err = t.throws(() => loadConfig({ overrides: { stateDir: '/tmp/x', uidRange: '0:5' } }));
  t.true(isHearthError(err) && err.code === 'CONFIG');
  t.regex(err?.message ?? '', /^config: uidRange: the range must not start at 0/);
});

test('UidMap: one uid per function from the range (never the pool id), stable, saved 0600; freed uids come back only after the rest', async (t) => {
  await withDir(async (dir) => {
    const m = new UidMap(dir, { start: 1000, count: 4 });
    t.is(m.poolId, 1000);
    t.is(m.uidFor('a'), 1001);
    t.false(existsSync(join(dir, 'uids.json')), 'written behind, not while allocating');
    t.is(m.uidFor('b'), 1002);
    t.is(m.uidFor('a'), 1001, 'stable');
    await m.flush();
    t.deepEqual(JSON.parse(readFileSync(join(dir, 'uids.json'), 'utf8')).functions, { a: 1001, b: 1002 });
    t.is(statSync(join(dir, 'uids.json')).mode & 0o777, 0o600);
    m.release('a');
    t.is(m.peek('a'), undefined);
    t.is(m.uidFor('c'), 1003, 'the never-used id first');
    t.is(m.uidFor('d'), 1001, "then a's freed id");
    const err = t.throws(() => m.uidFor('e'));
    t.true(isHearthError(err) && err.code === 'UNAVAILABLE');
    t.regex(err?.message ?? '', /no host uid left for e: all 3 of --uid-range 1000:4 are taken/);
    await m.flush();
    // a new map on the same dir (a restart) sees the same allocation
    const again = new UidMap(dir, { start: 1000, count: 4 });
    t.deepEqual(
      ['b', 'c', 'd'].map((f) => again.peek(f)),
      [1002, 1003, 1001],
    );
    again.retain(['b']);
    t.is(again.size, 1);
    await again.flush();
    t.deepEqual(JSON.parse(readFileSync(join(dir, 'uids.json'), 'utf8')).functions, { b: 1002 });
  });
});

test('UidMap: a file of another range, or a broken one, starts over; ids outside the range or shared are dropped', async (t) => {
  await withDir(async (dir) => {
    const first = new UidMap(dir, { start: 1000, count: 10 });
    first.uidFor('a');
    await first.flush();
    const other = new UidMap(dir, { start: 5000, count: 10 });
    t.is(other.peek('a'), undefined);
    t.is(other.uidFor('a'), 5001);
    await other.flush();
    writeFileSync(join(dir, 'uids.json'), JSON.stringify({ version: 1, start: 5000, count: 10, next: 5001, functions: { x: 5000, y: 5003, z: 5003, w: 99 } }));
    const m = new UidMap(dir, { start: 5000, count: 10 });
    t.is(m.peek('x'), undefined, 'the pool id is never a function id');
    t.is(m.peek('y'), 5003);
    t.is(m.peek('z'), undefined, 'never shared');
    t.is(m.peek('w'), undefined);
    writeFileSync(join(dir, 'uids.json'), '{not json');
    t.is(new UidMap(dir, { start: 5000, count: 10 }).size, 0);
  });
});

test('UidMap: a write that fails is logged and the allocation kept; the next change writes the file again', async (t) => {
  await withDir(async (dir) => {
    const warned: string[] = [];
    const m = new UidMap(join(dir, 'missing'), { start: 1000, count: 10 }, { warn: (_o, msg) => void warned.push(msg ?? '') });
    t.is(m.uidFor('a'), 1001);
    await m.flush();
    t.is(warned.length, 1);
    t.regex(warned[0], /cannot save the uid allocation/);
    t.is(m.peek('a'), 1001);
    mkdirSync(join(dir, 'missing'));
    m.uidFor('b');
    await m.flush();
    t.deepEqual(JSON.parse(readFileSync(join(dir, 'missing', 'uids.json'), 'utf8')).functions, { a: 1001, b: 1002 });
  });
});
