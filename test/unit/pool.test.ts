import test from 'ava';
import { poolFunction } from './pool-fixture.js';
import { ManualClock, systemClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { FakeSpawner } from '../../src/pool/fake-spawner.js';
import { FixedKeepAlivePolicy } from '../../src/model/fixed-keep-alive.js';
import { Pool, type PoolFunction } from '../../src/pool/pool.js';

const limits = { memoryMb: 256, pids: 64, cpuPercent: 100, tmpMb: 16 };

function fn(over: Partial<PoolFunction> = {}): PoolFunction {
  return poolFunction({ handler: 'main.handler', ...over });
}

function setup(opts: { generic?: number; clock?: ManualClock; keepAliveMs?: number } = {}) {
  const spawner = new FakeSpawner();
  const clock = opts.clock;
  const pool = new Pool({
    spawner,
    connect: spawner.connect,
    clock: clock ?? systemClock,
    log: silentLogger(),
    policy: new FixedKeepAlivePolicy(opts.keepAliveMs ?? 60_000),
    genericTarget: { node: 0, python: opts.generic ?? 0, provided: 0 },
    genericLimits: limits,
  });
  return { spawner, pool };
}

const tick = () => new Promise((r) => setImmediate(r));
async function settle(n = 5) {
  for (let i = 0; i < n; i++) await tick();
}

test('first invocation with no generic instance is cold, the next is warm on the same instance', async (t) => {
  const { spawner, pool } = setup();
  spawner.define('/code/f', 'main.handler', (e) => ({ got: e }));
  const a = await pool.invoke({ fn: fn(), codeDir: '/code/f', event: { x: 1 } });
  t.is(a.start, 'cold');
  t.deepEqual(a.result, { got: { x: 1 } });
  t.is(a.error, null);
  const b = await pool.invoke({ fn: fn(), codeDir: '/code/f', event: { x: 2 } });
  t.is(b.start, 'warm');
  t.is(b.instance, a.instance);
  await pool.stop();
  t.is(spawner.live().length, 0);
});

test('a generic instance is specialised: code mounted, memory limit set to the function', async (t) => {
  const { spawner, pool } = setup({ generic: 2 });
  pool.start();
  await settle();
  t.is(pool.list().filter((i) => i.state === 'generic').length, 2);
  spawner.define('/code/f', 'main.handler', () => 'ok');
  const r = await pool.invoke({ fn: fn({ memoryMb: 300 }), codeDir: '/code/f', event: {} });
  t.is(r.start, 'generic');
  const proc = spawner.processes.find((p) => p.id === r.instance)!;
  t.is(proc.mounted, '/code/f');
  t.is(proc.limits.memoryMb, 300);
  await settle();
  t.is(pool.list().filter((i) => i.state === 'generic').length, 2, 'the generic pool is refilled');
  await pool.stop();
});

test('thrown errors come back as the function error and the instance is reused', async (t) => {
  const { spawner, pool } = setup();
  spawner.define('/c', 'h.h', () => {
    const e = new Error('boom');
    e.name = 'ValueError';
    throw e;
  });
  const r = await pool.invoke({ fn: fn({ handler: 'h.h' }), codeDir: '/c', event: {} });
  t.deepEqual(r.error, { type: 'ValueError', message: 'boom' });
  const r2 = await pool.invoke({ fn: fn({ handler: 'h.h' }), codeDir: '/c', event: {} });
  t.is(r2.start, 'warm');
  await pool.stop();
});

test('an import failure is an InitError and the instance is not kept', async (t) => {
  const { spawner, pool } = setup();
  const r = await pool.invoke({ fn: fn({ handler: 'missing.h' }), codeDir: '/c', event: {} });
  t.is(r.error?.type, 'InitError');
  await settle();
  t.is(spawner.live().length, 0);
  await pool.stop();
});

test('a handler past its timeout yields Timeout and its instance is killed', async (t) => {
  const { spawner, pool } = setup();
  spawner.define('/c', 'h.h', () => new Promise(() => {}));
  const r = await pool.invoke({ fn: fn({ handler: 'h.h', timeoutMs: 50 }), codeDir: '/c', event: {} });
  t.is(r.error?.type, 'Timeout');
  await settle();
  t.is(spawner.live().length, 0);
  await pool.stop();
});

test('a runtime killed for memory yields OutOfMemory, an exit RuntimeExit; the next call works', async (t) => {
  const { spawner, pool } = setup();
  let mode: 'oom' | 'exit' | 'ok' = 'oom';
  spawner.define('/c', 'h.h', () => {
    if (mode === 'ok') return 'fine';
    const p = spawner.live()[0];
    p.crash(mode === 'oom');
    return new Promise(() => {});
  });
  const f = fn({ handler: 'h.h' });
  t.is((await pool.invoke({ fn: f, codeDir: '/c', event: {} })).error?.type, 'OutOfMemory');
  mode = 'exit';
  t.is((await pool.invoke({ fn: f, codeDir: '/c', event: {} })).error?.type, 'RuntimeExit');
  mode = 'ok';
  const r = await pool.invoke({ fn: f, codeDir: '/c', event: {} });
  t.is(r.result, 'fine');
  t.is(r.start, 'cold');
  await pool.stop();
});

test('concurrency limit: extra callers wait, synchronous ones ahead of queued events', async (t) => {
  const { spawner, pool } = setup();
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  spawner.define('/c', 'h.h', async (e) => {
    const tag = (e as { tag: string }).tag;
    if (tag === 'first') await gate;
    order.push(tag);
    return tag;
  });
  const f = fn({ handler: 'h.h', concurrency: 1 });
  const first = pool.invoke({ fn: f, codeDir: '/c', event: { tag: 'first' } });
  await settle();
  const a1 = pool.invoke({ fn: f, codeDir: '/c', event: { tag: 'async1' }, priority: 'async' });
  const a2 = pool.invoke({ fn: f, codeDir: '/c', event: { tag: 'async2' }, priority: 'async' });
  const s1 = pool.invoke({ fn: f, codeDir: '/c', event: { tag: 'sync1' }, priority: 'sync' });
  await settle();
  t.is(spawner.spawnCount, 1, 'no second instance past the limit');
  release();
  await Promise.all([first, a1, a2, s1]);
  t.deepEqual(order, ['first', 'sync1', 'async1', 'async2']);
  await pool.stop();
});

test('refuseWhenBusy: past the concurrency limit a caller is refused (TOO_MANY_REQUESTS) instead of waiting, and nothing runs', async (t) => {
  const { spawner, pool } = setup();
  const ran: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  spawner.define('/c', 'h.h', async (e) => {
    const tag = (e as { tag: string }).tag;
    ran.push(tag);
    if (tag === 'first') await gate;
    return tag;
  });
  const f = fn({ handler: 'h.h', concurrency: 1 });
  const first = pool.invoke({ fn: f, codeDir: '/c', event: { tag: 'first' }, refuseWhenBusy: true });
  await settle();
  const err = await t.throwsAsync(pool.invoke({ fn: f, codeDir: '/c', event: { tag: 'refused' }, refuseWhenBusy: true }));
  t.is((err as { code?: string }).code, 'TOO_MANY_REQUESTS');
  release();
  t.like(await first, { result: 'first' });
  t.like(await pool.invoke({ fn: f, codeDir: '/c', event: { tag: 'after' }, refuseWhenBusy: true }), { result: 'after' }, 'the slot is free again');
  t.deepEqual(ran, ['first', 'after']);
  await pool.stop();
});

test('idle instances end after the keep-alive (injected clock)', async (t) => {
  const clock = new ManualClock(1_000_000);
  const { spawner, pool } = setup({ clock, keepAliveMs: 10_000 });
  spawner.define('/c', 'h.h', () => 1);
  await pool.invoke({ fn: fn({ handler: 'h.h' }), codeDir: '/c', event: {} });
  t.is(pool.list().filter((i) => i.state === 'idle').length, 1);
  clock.advance(9_999);
  t.is(spawner.live().length, 1);
  clock.advance(2);
  await settle();
  t.is(spawner.live().length, 0);
  t.is(pool.list().length, 0);
  await pool.stop();
});

test('each use restarts the keep-alive; the instance ends the full keep-alive after its last use', async (t) => {
  const clock = new ManualClock(1_000_000);
  const { spawner, pool } = setup({ clock, keepAliveMs: 10_000 });
  spawner.define('/c', 'h.h', () => 1);
  const f = fn({ handler: 'h.h' });
  await pool.invoke({ fn: f, codeDir: '/c', event: {} });
  clock.advance(6_000);
  t.is((await pool.invoke({ fn: f, codeDir: '/c', event: {} })).start, 'warm');
  clock.advance(6_000); // past the first use's keep-alive, within the second's
  await settle();
  t.is(spawner.live().length, 1);
  t.is(pool.list().filter((i) => i.state === 'idle').length, 1);
  clock.advance(3_999);
  await settle();
  t.is(spawner.live().length, 1);
  clock.advance(2);
  await settle();
  t.is(spawner.live().length, 0);
  await pool.stop();
});

test('draining a network also ends an instance whose creation was in progress', async (t) => {
  const { spawner, pool } = setup();
  let open!: () => void;
  spawner.gate = new Promise<void>((r) => (open = r));
  pool.setGenericTarget('python', 1, 'beta'); // a refill starts and waits inside spawn
  await settle();
  t.is(spawner.live().length, 0);
  pool.setGenericTarget('python', 0, 'beta');
  let drained = false;
  const draining = pool.drainNetwork('beta').then(() => (drained = true));
  await settle();
  t.false(drained, 'the drain waits for the creation in progress');
  spawner.gate = undefined;
  open();
  await draining;
  t.is(spawner.live().length, 0, 'the instance created meanwhile was ended, not kept as generic');
  t.is(pool.list().length, 0);
  await pool.stop();
});

test('a redeployed function never reuses instances of the old version', async (t) => {
  const { spawner, pool } = setup();
  spawner.define('/c1', 'h.h', () => 'v1');
  spawner.define('/c2', 'h.h', () => 'v2');
  const r1 = await pool.invoke({ fn: fn({ handler: 'h.h', updatedAt: '1' }), codeDir: '/c1', event: {} });
  pool.retire('f');
  await settle();
  const r2 = await pool.invoke({ fn: fn({ handler: 'h.h', updatedAt: '2' }), codeDir: '/c2', event: {} });
  t.is(r1.result, 'v1');
  t.is(r2.result, 'v2');
  t.not(r2.instance, r1.instance);
  t.is(spawner.live().length, 1);
  await pool.stop();
});

test('spawn failure is a clear UNAVAILABLE error and the pool keeps working after', async (t) => {
  const { spawner, pool } = setup();
  spawner.failWith = new Error('no cgroup');
  const err = await t.throwsAsync(pool.invoke({ fn: fn(), codeDir: '/c', event: {} }));
  t.is((err as { code?: string }).code, 'UNAVAILABLE');
  spawner.failWith = undefined;
  spawner.define('/c', 'main.handler', () => 'back');
  t.is((await pool.invoke({ fn: fn(), codeDir: '/c', event: {} })).result, 'back');
  await pool.stop();
});
