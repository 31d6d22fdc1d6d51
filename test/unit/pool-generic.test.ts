import test from 'ava';
import { fakePool, poolFunction, settle as settleRounds } from './pool-fixture.js';
import { GenericPoolSizer } from '../../src/pool/generic-sizer.js';
import { Pool } from '../../src/pool/pool.js';

const settle = (n = 8): Promise<void> => settleRounds(n);

function setup(python = 2) {
  return fakePool({ genericTarget: { node: 0, python, provided: 0 }, refillBackoffMs: 100 });
}

const generic = (pool: Pool, network: string | null = null) => pool.list().filter((i) => i.state === 'generic' && i.network === network).length;

test('start fills each generic pool to its target; an exited generic instance is replaced', async (t) => {
  const { spawner, pool } = setup(2);
  pool.start();
  await settle();
  t.is(generic(pool), 2);
  spawner.live()[0].crash();
  await settle();
  t.is(generic(pool), 2);
  t.is(spawner.spawnCount, 3);
  await pool.stop();
});

test('a failing spawn is retried after a growing backoff (injected clock)', async (t) => {
  const { spawner, pool, clock } = setup(1);
  spawner.failWith = new Error('no cgroup');
  pool.start();
  await settle();
  t.is(generic(pool), 0);
  spawner.failWith = undefined;
  clock.advance(199); // first retry after 100 ms × 2
  await settle();
  t.is(generic(pool), 0);
  clock.advance(1);
  await settle();
  t.is(generic(pool), 1);
  await pool.stop();
});

test("a target of 0 ends the pool's generic instances; a network pool is kept apart", async (t) => {
  const { spawner, pool } = setup(1);
  pool.start();
  pool.setGenericTarget('python', 2, 'beta');
  await settle();
  t.is(generic(pool), 1);
  t.is(generic(pool, 'beta'), 2);
  t.deepEqual(pool.genericTargets(), { node: 0, python: 1, provided: 0, 'python@beta': 2 });
  pool.setGenericTarget('python', 0, 'beta');
  await settle();
  t.is(generic(pool, 'beta'), 0);
  t.is(generic(pool), 1);
  t.deepEqual(pool.genericTargets(), { node: 0, python: 1, provided: 0 });
  t.is(spawner.live().length, 1);
  await pool.stop();
});

test('the sizer grows a generic pool after a burst of non-warm starts', async (t) => {
  const { spawner, pool, clock } = setup(0);
  pool.start();
  spawner.define('/c', 'h.h', () => new Promise(() => {}));
  const f = poolFunction();
  for (let i = 0; i < 4; i++) void pool.invoke({ fn: f, codeDir: '/c', event: {} });
  await settle();
  const sizer = new GenericPoolSizer({ pool, clock, base: { node: 0, python: 1, provided: 0 } });
  const targets = sizer.resize();
  t.is(targets.node, 0);
  t.true(targets.python > 1, `python target ${targets.python} grows past its base with the burst`);
  t.is(pool.genericTargets().python, targets.python);
  await pool.stop();
});
