/**
 * Host uid ranges claimed per daemon (src/daemon/uid-range.ts): two daemons on one host never get
 * overlapping ranges, whether given with --uid-range or chosen automatically. The claims are real
 * abstract sockets (no root needed); the ranges are far above any range a real daemon uses.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHearthError } from '../../src/errors.js';
import { claimUidRange, listClaims } from '../../src/daemon/uid-range.js';

/** Each test has its own 10,000 ids from here (ava runs a file's tests concurrently). */
const BASE0 = 3_000_000_000 + (process.pid % 1000) * 100_000;

function dirs(t: { teardown(fn: () => void): void }, n: number): string[] {
  const out = Array.from({ length: n }, () => mkdtempSync(join(tmpdir(), 'hearth-uidrange-')));
  t.teardown(() => out.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return out;
}

test('explicit ranges: an overlapping one is refused naming the other, a disjoint one is taken, and a released claim frees its ids', async (t) => {
  const [a, b, c] = dirs(t, 3);
  const BASE = BASE0;
  const first = await claimUidRange({ stateDir: a, explicit: { start: BASE, count: 1000 } });
  t.true(listClaims().some((x) => x.range.start === BASE && x.range.count === 1000));
  const err = await t.throwsAsync(claimUidRange({ stateDir: b, explicit: { start: BASE + 500, count: 3 } }));
  t.true(isHearthError(err) && err.code === 'CONFIG');
  t.regex(err?.message ?? '', new RegExp(`uidRange ${BASE + 500}:3 overlaps ${BASE}:1000, claimed by another Hearth daemon on this host`));
  const disjoint = await claimUidRange({ stateDir: c, explicit: { start: BASE + 1000, count: 3 } });
  t.is(disjoint.uids.poolId, BASE + 1000);
  await first.release();
  t.false(listClaims().some((x) => x.range.start === BASE && x.range.count === 1000));
  const again = await claimUidRange({ stateDir: b, explicit: { start: BASE + 500, count: 3 } });
  t.is(again.uids.poolId, BASE + 500);
  await Promise.all([disjoint.release(), again.release()]);
});

test('automatic blocks: each daemon gets its own block, and a state dir gets its last block back when it is free', async (t) => {
  const [a, b] = dirs(t, 2);
  const BASE = BASE0 + 10_000;
  const opts = { autoBase: BASE, blockSize: 100 };
  const one = await claimUidRange({ stateDir: a, ...opts });
  const two = await claimUidRange({ stateDir: b, ...opts });
  t.is(one.uids.poolId, BASE);
  t.is(two.uids.poolId, BASE + 100);
  two.uids.uidFor('f');
  await two.uids.flush(); // b's uids.json now holds its block
  await one.release();
  await two.release();
  // b starts first now: it takes its own block back, not the free one below it.
  const twoAgain = await claimUidRange({ stateDir: b, ...opts });
  t.is(twoAgain.uids.poolId, BASE + 100);
  t.is(twoAgain.uids.peek('f'), BASE + 101);
  const oneAgain = await claimUidRange({ stateDir: a, ...opts });
  t.is(oneAgain.uids.poolId, BASE);
  await Promise.all([oneAgain.release(), twoAgain.release()]);
});

test('automatic blocks: an explicit claim inside a block pushes automatic daemons past it', async (t) => {
  const [a, b] = dirs(t, 2);
  const BASE = BASE0 + 20_000;
  const fixed = await claimUidRange({ stateDir: a, explicit: { start: BASE + 250, count: 10 } });
  const auto = await claimUidRange({ stateDir: b, autoBase: BASE + 200, blockSize: 100 });
  t.is(auto.uids.poolId, BASE + 300);
  await Promise.all([fixed.release(), auto.release()]);
});
