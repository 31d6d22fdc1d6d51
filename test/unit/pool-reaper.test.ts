import test from 'ava';
import { fakePool, settle } from './pool-fixture.js';
import { FixedKeepAlivePolicy } from '../../src/model/fixed-keep-alive.js';
import type { PoolFunction } from '../../src/pool/pool.js';

function fn(name: string, over: Partial<PoolFunction> = {}): PoolFunction {
  return { name, runtime: 'python', handler: 'h.h', memoryMb: 128, timeoutMs: 1000, env: {}, concurrency: 10, codeSha256: name, updatedAt: 'v1', ...over };
}

function setup(opts: { keepAliveMs: number; memoryBudgetMb?: number }) {
  const fixture = fakePool({
    policy: new FixedKeepAlivePolicy(opts.keepAliveMs),
    ...(opts.memoryBudgetMb === undefined ? {} : { memoryBudgetMb: opts.memoryBudgetMb }),
  });
  for (const d of ['/a', '/b', '/c']) fixture.spawner.define(d, 'h.h', () => d);
  return fixture;
}

test('a keep-alive of 0 ends the instance as soon as its invocation is answered', async (t) => {
  const { spawner, pool } = setup({ keepAliveMs: 0 });
  const r = await pool.invoke({ fn: fn('a'), codeDir: '/a', event: {} });
  t.is(r.result, '/a');
  await settle();
  t.is(spawner.live().length, 0);
  t.is((await pool.invoke({ fn: fn('a'), codeDir: '/a', event: {} })).start, 'cold');
  await pool.stop();
});

test('under a memory budget, a new instance ends the idle one the policy chooses (the oldest)', async (t) => {
  const { spawner, pool, clock } = setup({ keepAliveMs: 600_000, memoryBudgetMb: 256 });
  const a = await pool.invoke({ fn: fn('a'), codeDir: '/a', event: {} });
  clock.advance(1000);
  const b = await pool.invoke({ fn: fn('b'), codeDir: '/b', event: {} });
  t.is(pool.memoryInUseMb(), 256);
  clock.advance(1000);
  await pool.invoke({ fn: fn('c'), codeDir: '/c', event: {} });
  await settle();
  const live = new Set(spawner.live().map((p) => p.id));
  t.false(live.has(a.instance), 'the least recently used idle instance was evicted');
  t.true(live.has(b.instance));
  t.is(pool.memoryInUseMb(), 256);
  await pool.stop();
});

test('a busy instance is never evicted: past the budget the pool still serves', async (t) => {
  const { spawner, pool } = setup({ keepAliveMs: 600_000, memoryBudgetMb: 128 });
  let release!: () => void;
  spawner.define('/slow', 'h.h', () => new Promise((r) => (release = () => r('slow'))));
  const slow = pool.invoke({ fn: fn('slow'), codeDir: '/slow', event: {} });
  await settle();
  const other = await pool.invoke({ fn: fn('a'), codeDir: '/a', event: {} });
  t.is(other.result, '/a');
  release();
  t.is((await slow).result, 'slow');
  await pool.stop();
});

test('the keep-alive of an instance shows in the pool listing with the policy that kept it', async (t) => {
  const { pool, clock } = setup({ keepAliveMs: 60_000 });
  await pool.invoke({ fn: fn('a'), codeDir: '/a', event: {} });
  const [view] = pool.list();
  t.is(view?.state, 'idle');
  t.is(view?.keepAliveUntil, new Date(clock.now() + 60_000).toISOString());
  t.regex(view?.why ?? '', /^kept by fixed-1m after its last use; 60 s left/);
  await pool.stop();
});
