/**
 * The EventQueue conformance suite (litestream's RunWithReplicaClient idea): every implementation
 * must behave the same. `eventQueueConformance(backend)` registers ava tests; `backend.open`
 * returns a queue on fresh state, with a teardown registered on `t` that closes it and removes
 * its state. Run by test/unit/queue-conformance.test.ts (SQLite, memory) and
 * test/integration/queue-jetstream.test.ts (JetStream, real nats-server).
 */
import test, { type ExecutionContext } from 'ava';
import { ManualClock } from '../../src/clock.js';
import { HearthError } from '../../src/errors.js';
import { retryPlan, toEventView, type EventQueue, type EventRecord, type QueueSettings, type ScheduleStateStore } from '../../src/queue/event-queue.js';

export type Q = EventQueue & ScheduleStateStore;

export interface Backend {
  name: string;
  /** A queue on fresh state, usable at once (calls may wait for its start); `t.teardown` closes it and removes its state. */
  open(t: ExecutionContext, clock: ManualClock, settings?: Partial<QueueSettings>): Q;
}

export const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);
const HOUR = 3600_000;

async function rejectsWith(t: ExecutionContext, p: Promise<unknown>, code: string, message?: RegExp): Promise<HearthError> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof HearthError, `expected a HearthError, got ${String(err)}`);
  const he = err as HearthError;
  t.is(he.code, code as HearthError['code'], he.message);
  if (message) t.regex(he.message, message);
  return he;
}

export function eventQueueConformance(b: Backend): void {
  const setup = (t: ExecutionContext, settings?: Partial<QueueSettings>) => {
    const clock = new ManualClock(T0);
    return { clock, q: b.open(t, clock, settings) };
  };

  test(`${b.name}: submit stores the event as queued, and get returns it`, async (t) => {
    const { q } = setup(t);
    const r = await q.submit('f', '{"a":1}');
    t.false(r.duplicate);
    t.is(r.id.length, 26);
    const e = await q.get(r.id);
    t.like(e, {
      id: r.id,
      function: 'f',
      payload: '{"a":1}',
      status: 'queued',
      attempts: 0,
      maxAttempts: 3,
      createdAt: T0,
      notBefore: T0,
      startedAt: null,
      finishedAt: null,
      result: null,
      error: null,
    });
    const fromBuffer = await q.submit('f', Buffer.from('[1,2]'));
    t.is((await q.get(fromBuffer.id)).payload, '[1,2]');
    await rejectsWith(t, q.get('01NOSUCHEVENT0000000000000'), 'EVENT_NOT_FOUND');
  });

  test(`${b.name}: bad submit arguments are BAD_REQUEST and queue nothing`, async (t) => {
    const { q } = setup(t);
    await rejectsWith(t, q.submit('', '{}'), 'BAD_REQUEST', /function/);
    await rejectsWith(t, q.submit('f', '{}', { maxAttempts: 0 }), 'BAD_REQUEST', /maxAttempts/);
    await rejectsWith(t, q.submitBatch('f', []), 'BAD_REQUEST', /at least one/);
    t.is((await q.stats()).total.depth, 0);
  });

  test(`${b.name}: an event keeps what queued it (async by default, schedule when told) through lease, retry and list`, async (t) => {
    const { q, clock } = setup(t);
    const api = await q.submit('f', '1');
    const tick = await q.submit('f', '2', { trigger: 'schedule' });
    const batch = await q.submitBatch('g', ['3', '4'], { trigger: 'schedule' });
    t.is((await q.get(api.id)).trigger, 'async');
    t.is((await q.get(tick.id)).trigger, 'schedule');
    for (const id of batch.ids) t.is((await q.get(id)).trigger, 'schedule');
    const leased = await q.lease({ functions: ['f'], perFunction: 2 });
    t.deepEqual(
      leased.map((e) => [e.id, e.trigger]),
      [
        [api.id, 'async'],
        [tick.id, 'schedule'],
      ],
    );
    await q.fail(tick.id, { type: 'E', message: 'x' }, { retryAt: clock.now() + 1000 });
    clock.advance(1000);
    const [again] = await q.lease({ functions: ['f'] });
    t.like(again, { id: tick.id, trigger: 'schedule', attempts: 2 });
    t.deepEqual(new Set((await q.list({ function: 'g' })).map((e) => e.trigger)), new Set(['schedule']));
    await rejectsWith(t, q.submit('f', '5', { trigger: 'cron' as never }), 'BAD_REQUEST', /trigger/);
  });

  test(`${b.name}: ids are unique and sort in arrival order even when the clock stands still`, async (t) => {
    const { q } = setup(t);
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push((await q.submit('f', String(i))).id);
    const batch = await q.submitBatch('f', ['a', 'b', 'c']);
    ids.push(...batch.ids);
    t.is(new Set(ids).size, ids.length);
    t.deepEqual([...ids].sort(), ids);
  });

  test(`${b.name}: events of one function are leased in arrival order; functions are independent`, async (t) => {
    const { q } = setup(t);
    const f: string[] = [];
    const g: string[] = [];
    for (let i = 0; i < 5; i++) {
      f.push((await q.submit('f', `{"f":${i}}`)).id);
      g.push((await q.submit('g', `{"g":${i}}`)).id);
    }
    const first = await q.lease({ functions: ['f'] });
    t.deepEqual(
      first.map((e) => e.id),
      [f[0]],
    );
    const two = await q.lease({ functions: ['f'], perFunction: 2 });
    t.deepEqual(
      two.map((e) => e.id),
      [f[1], f[2]],
    );
    const all = await q.lease({ perFunction: 10 });
    t.deepEqual(
      all.filter((e) => e.function === 'f').map((e) => e.id),
      [f[3], f[4]],
    );
    t.deepEqual(
      all.filter((e) => e.function === 'g').map((e) => e.id),
      g,
    );
    t.deepEqual(await q.lease({ perFunction: 10 }), []);
  });

  test(`${b.name}: lease marks running, counts the attempt and sets the lease deadline`, async (t) => {
    const { q, clock } = setup(t);
    const { id } = await q.submit('f', '{}');
    clock.advance(1000);
    const [e] = await q.lease({ leaseMs: 30_000 });
    t.like(e, { id, status: 'running', attempts: 1, startedAt: T0 + 1000, leaseUntil: T0 + 31_000 });
    t.like(await q.get(id), { status: 'running', attempts: 1, startedAt: T0 + 1000 });
    t.deepEqual(await q.lease(), [], 'a running event is not leased twice');
  });

  test(`${b.name}: perFunction map, total limit and priority`, async (t) => {
    const { q } = setup(t);
    await q.submitBatch('f', ['1', '2', '3']);
    await q.submitBatch('g', ['1', '2', '3']);
    const sync = await q.submit('f', '"sync"', { priority: 1 });
    const byMap = await q.lease({ perFunction: { f: 2 } });
    t.deepEqual(
      byMap.map((e) => e.function),
      ['f', 'f'],
      'functions missing from the map get nothing',
    );
    t.is(byMap[0].id, sync.id, 'higher priority goes first within a function');
    const capped = await q.lease({ perFunction: 10, limit: 3 });
    t.is(capped.length, 3);
  });

  test(`${b.name}: leases over all functions with a small limit go round-robin, so no function starves`, async (t) => {
    const { q } = setup(t);
    for (const fn of ['a', 'b', 'c']) await q.submitBatch(fn, ['1', '2', '3']);
    const served: string[] = [];
    for (let i = 0; i < 6; i++) served.push(...(await q.lease({ perFunction: 1, limit: 1 })).map((e) => e.function));
    t.deepEqual(served, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test(`${b.name}: complete stores the result; the API view has ISO times and parsed JSON`, async (t) => {
    const { q, clock } = setup(t);
    const { id } = await q.submit('f', '{}');
    clock.advance(10);
    const [e] = await q.lease();
    clock.advance(25);
    await q.complete(id, '{"ok":true}', { attempt: e.attempts });
    const done = await q.get(id);
    t.like(done, { status: 'succeeded', attempts: 1, result: '{"ok":true}', finishedAt: T0 + 35, leaseUntil: null });
    t.deepEqual(toEventView(done), {
      id,
      function: 'f',
      status: 'succeeded',
      attempts: 1,
      createdAt: new Date(T0).toISOString(),
      startedAt: new Date(T0 + 10).toISOString(),
      finishedAt: new Date(T0 + 35).toISOString(),
      result: { ok: true },
      error: null,
    });
  });

  test(`${b.name}: acknowledging an event that is not running, or with a stale attempt, is CONFLICT`, async (t) => {
    const { q } = setup(t);
    const { id } = await q.submit('f', '{}');
    await rejectsWith(t, q.complete(id, null), 'CONFLICT', /queued, not running/);
    const [e] = await q.lease();
    await rejectsWith(t, q.complete(id, null, { attempt: e.attempts + 1 }), 'CONFLICT', /stale/);
    await rejectsWith(t, q.fail('01NOSUCHEVENT0000000000000', { type: 'E', message: 'm' }, { dead: true }), 'EVENT_NOT_FOUND');
    await q.complete(id, null, { attempt: e.attempts });
    await rejectsWith(t, q.complete(id, null), 'CONFLICT', /succeeded/);
    await rejectsWith(t, q.fail(id, { type: 'E', message: 'm' }, { dead: true }), 'CONFLICT');
  });

  test(`${b.name}: a failed attempt is retried at the time the caller chose, with backoff`, async (t) => {
    const { q, clock } = setup(t);
    const { id } = await q.submit('f', '{}', { maxAttempts: 3 });
    const [e] = await q.lease();
    const plan = retryPlan(e, clock.now(), () => 0.5);
    t.deepEqual(plan, { retryAt: T0 + 1000 });
    const status = await q.fail(id, { type: 'TypeError', message: 'boom' }, plan);
    t.is(status, 'failed');
    t.like(await q.get(id), { status: 'failed', attempts: 1, notBefore: T0 + 1000, error: { type: 'TypeError', message: 'boom' } });
    t.is((await q.stats()).total.depth, 1, 'a failed event waits in the queue');
    t.is(await q.nextDueAt('f'), T0 + 1000);
    clock.advance(999);
    t.deepEqual(await q.lease(), [], 'not before retryAt');
    clock.advance(1);
    const [again] = await q.lease();
    t.like(again, { id, attempts: 2, status: 'running' });
    const plan2 = retryPlan(again, clock.now(), () => 0.5);
    t.deepEqual(plan2, { retryAt: clock.now() + 2000 }, 'backoff doubles');
  });

  test(`${b.name}: attempts exhausted make the event dead whatever the caller asked; redrive queues it again`, async (t) => {
    const { q, clock } = setup(t);
    const { id } = await q.submit('f', '{}', { maxAttempts: 2 });
    await q.lease();
    t.is(await q.fail(id, { type: 'E', message: 'one' }, { retryAt: clock.now() }), 'failed');
    await q.lease();
    t.is(await q.fail(id, { type: 'E', message: 'two' }, { retryAt: clock.now() }), 'dead');
    t.like(await q.get(id), { status: 'dead', attempts: 2, finishedAt: T0, error: { type: 'E', message: 'two' } });
    t.like((await q.stats()).total, { dead: 1, depth: 0 });
    await rejectsWith(t, q.redrive((await q.submit('f', '{}')).id), 'CONFLICT', /only dead/);
    clock.advance(5000);
    await q.redrive(id);
    t.like(await q.get(id), { status: 'queued', attempts: 0, notBefore: T0 + 5000, error: null, finishedAt: null });
    const [again] = await q.lease({ perFunction: 5 });
    t.is(again.id, id, 'the redriven event keeps its place in arrival order');
    t.like(again, { attempts: 1 });
  });

  test(`${b.name}: fail with dead:true ends the event at once`, async (t) => {
    const { q } = setup(t);
    const { id } = await q.submit('f', '{}', { maxAttempts: 5 });
    await q.lease();
    t.is(await q.fail(id, { type: 'Timeout', message: 'took too long' }, { dead: true }), 'dead');
    t.is((await q.get(id)).status, 'dead');
  });

  test(`${b.name}: an event past its maximum age becomes dead instead of starting; redrive gives it a fresh window`, async (t) => {
    const { q, clock } = setup(t);
    const { id } = await q.submit('f', '{}', { expiresAt: T0 + 60_000 });
    const keep = await q.submit('f', '{}', { expiresAt: T0 + 120_000 });
    clock.advance(60_000);
    const expired: EventRecord[] = [];
    const leased = await q.lease({ perFunction: 5, onExpired: (e) => expired.push(e) });
    t.deepEqual(
      leased.map((e) => e.id),
      [keep.id],
    );
    t.like(await q.get(id), { status: 'dead', attempts: 0, error: { type: 'Expired' } });
    // The lease tells its caller which events it ended (the dispatcher counts them as dead letters).
    t.deepEqual(
      expired.map((e) => e.id),
      [id],
    );
    t.like(expired[0], { function: 'f', status: 'dead', trigger: 'async', error: { type: 'Expired' } });
    await q.redrive(id);
    t.like(await q.get(id), { status: 'queued', expiresAt: T0 + 120_000 });
    // A retry that would land after expiry ends the event now.
    t.is(await q.fail(keep.id, { type: 'E', message: 'm' }, { retryAt: T0 + 120_000 }), 'dead');
  });

  test(`${b.name}: idempotency key returns the same id within 24 h and queues nothing new`, async (t) => {
    const { q, clock } = setup(t);
    const a = await q.submit('f', '{"n":1}', { idempotencyKey: 'k1' });
    clock.advance(23 * HOUR);
    const b2 = await q.submit('f', '{"n":2}', { idempotencyKey: 'k1' });
    t.deepEqual(b2, { id: a.id, duplicate: true });
    t.is((await q.stats()).total.queued, 1);
    const otherFn = await q.submit('g', '{}', { idempotencyKey: 'k1' });
    t.false(otherFn.duplicate, 'keys are per function');
    clock.advance(HOUR + 1);
    const c = await q.submit('f', '{"n":3}', { idempotencyKey: 'k1' });
    t.false(c.duplicate, 'after 24 h the key is new again');
    t.not(c.id, a.id);
    t.is((await q.stats()).functions['f'].queued, 2);
  });

  test(`${b.name}: idempotency covers a whole batch; reusing a batch key for one event is CONFLICT`, async (t) => {
    const { q } = setup(t);
    const a = await q.submitBatch('f', ['1', '2'], { idempotencyKey: 'b' });
    const again = await q.submitBatch('f', ['1', '2', '3'], { idempotencyKey: 'b' });
    t.deepEqual(again, { ids: a.ids, duplicate: true });
    await rejectsWith(t, q.submit('f', '1', { idempotencyKey: 'b' }), 'CONFLICT', /batch/);
    t.is((await q.stats()).total.queued, 2);
  });

  test(`${b.name}: same idempotency key twice in one tick queues one event`, async (t) => {
    const { q } = setup(t);
    const [a, b2] = await Promise.all([q.submit('f', '1', { idempotencyKey: 'same' }), q.submit('f', '2', { idempotencyKey: 'same' })]);
    t.is(a.id, b2.id);
    t.deepEqual([a.duplicate, b2.duplicate], [false, true]);
    t.is((await q.stats()).total.queued, 1);
  });

  test(`${b.name}: past the bound, submit is TOO_MANY_REQUESTS with retryAfterS and writes nothing`, async (t) => {
    const { q } = setup(t, { maxQueued: 5, retryAfterS: 2 });
    await q.submitBatch('f', ['1', '2', '3', '4']);
    const err = await rejectsWith(t, q.submitBatch('f', ['a', 'b']), 'TOO_MANY_REQUESTS', /bound of 5/);
    t.deepEqual(err.details, { retryAfterS: 2 });
    t.is((await q.list()).length, 4, 'a batch over the bound writes none of its events');
    await q.submit('f', '5', { idempotencyKey: 'k' });
    await rejectsWith(t, q.submit('f', '6'), 'TOO_MANY_REQUESTS');
    t.deepEqual(
      await q.submit('f', 'again', { idempotencyKey: 'k' }),
      { id: (await q.list({ limit: 1 }))[0].id, duplicate: true },
      'a duplicate is answered even when full',
    );
    t.like((await q.stats()).total, { queued: 5, depth: 5 });
    await q.lease({ perFunction: 2 });
    await q.submitBatch('f', ['x', 'y']);
    t.is((await q.stats()).total.depth, 5, 'running events do not count toward the bound');
  });

  test(`${b.name}: concurrent submits in one tick stop exactly at the bound`, async (t) => {
    const { q } = setup(t, { maxQueued: 5 });
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => q.submit('f', String(i))));
    t.is(results.filter((r) => r.status === 'fulfilled').length, 5);
    for (const r of results) if (r.status === 'rejected') t.is((r.reason as HearthError).code, 'TOO_MANY_REQUESTS');
    t.is((await q.stats()).total.queued, 5);
  });

  test(`${b.name}: redrive also respects the bound`, async (t) => {
    const { q } = setup(t, { maxQueued: 1 });
    const { id } = await q.submit('f', '{}');
    await q.lease();
    await q.fail(id, { type: 'E', message: 'm' }, { dead: true });
    await q.submit('f', '{}');
    await rejectsWith(t, q.redrive(id), 'TOO_MANY_REQUESTS');
    t.is((await q.get(id)).status, 'dead');
  });

  test(`${b.name}: stats count per function and in total`, async (t) => {
    const { q } = setup(t);
    await q.submitBatch('f', ['1', '2', '3']);
    await q.submitBatch('g', ['1']);
    const [a, b2] = await q.lease({ functions: ['f'], perFunction: 2 });
    await q.complete(a.id, null);
    await q.fail(b2.id, { type: 'E', message: 'm' }, { dead: true });
    await q.lease({ functions: ['g'] });
    const s = await q.stats();
    t.deepEqual(s.functions['f'], { queued: 1, running: 0, succeeded: 1, failed: 0, dead: 1, depth: 1 });
    t.deepEqual(s.functions['g'], { queued: 0, running: 1, succeeded: 0, failed: 0, dead: 0, depth: 0 });
    t.deepEqual(s.total, { queued: 1, running: 1, succeeded: 1, failed: 0, dead: 1, depth: 1 });
    t.is(s.maxQueued, 100_000);
  });

  test(`${b.name}: list filters by function and status, newest first, with a limit and a cursor`, async (t) => {
    const { q } = setup(t);
    const f = (await q.submitBatch('f', ['1', '2', '3', '4'])).ids;
    await q.submit('g', '1');
    const [first] = await q.lease({ functions: ['f'] });
    await q.fail(first.id, { type: 'E', message: 'm' }, { dead: true });
    t.deepEqual(
      (await q.list({ function: 'f' })).map((e) => e.id),
      [...f].reverse(),
    );
    t.deepEqual(
      (await q.list({ status: 'dead' })).map((e) => e.id),
      [f[0]],
    );
    t.deepEqual(
      (await q.list({ function: 'f', status: 'queued', limit: 2 })).map((e) => e.id),
      [f[3], f[2]],
    );
    t.deepEqual(
      (await q.list({ function: 'f', limit: 2, before: f[2] })).map((e) => e.id),
      [f[1], f[0]],
    );
    t.is((await q.list()).length, 5);
    await rejectsWith(t, q.list({ status: 'bogus' as never }), 'BAD_REQUEST', /unknown event status/);
  });

  test(`${b.name}: recoverRunning puts interrupted events back with the attempt counted, or dead when exhausted`, async (t) => {
    const { q, clock } = setup(t);
    const a = await q.submit('f', '{}', { maxAttempts: 3 });
    const b2 = await q.submit('f', '{}', { maxAttempts: 1 });
    const c = await q.submit('f', '{}', { maxAttempts: 3, expiresAt: T0 + 500 });
    await q.lease({ perFunction: 3 });
    clock.advance(1000);
    const r = await q.recoverRunning();
    t.deepEqual(r.requeued, [a.id]);
    t.deepEqual([...r.dead].sort(), [b2.id, c.id].sort());
    t.like(await q.get(a.id), { status: 'failed', attempts: 1, notBefore: T0 + 1000, error: { type: 'Interrupted' } });
    t.like(await q.get(b2.id), { status: 'dead', error: { type: 'Interrupted' } });
    t.like(await q.get(c.id), { status: 'dead', error: { type: 'Expired' } });
    const [again] = await q.lease();
    t.like(again, { id: a.id, attempts: 2 });
  });

  test(`${b.name}: recoverRunning with expiredOnly touches only expired leases`, async (t) => {
    const { q, clock } = setup(t);
    const short = await q.submit('f', '{}');
    const long = await q.submit('g', '{}');
    await q.lease({ functions: ['f'], leaseMs: 1000 });
    await q.lease({ functions: ['g'], leaseMs: 10_000 });
    clock.advance(5000);
    await q.extendLease(long.id, 10_000);
    const r = await q.recoverRunning({ expiredOnly: true });
    t.deepEqual(r, { requeued: [short.id], dead: [] });
    t.is((await q.get(long.id)).status, 'running');
    t.is((await q.get(long.id)).leaseUntil, T0 + 15_000);
  });

  test(`${b.name}: nextDueAt reports the earliest waiting event`, async (t) => {
    const { q } = setup(t);
    t.is(await q.nextDueAt(), null);
    await q.submit('f', '{}', { notBefore: T0 + 5000 });
    await q.submit('g', '{}', { notBefore: T0 + 3000 });
    t.is(await q.nextDueAt(), T0 + 3000);
    t.is(await q.nextDueAt('f'), T0 + 5000);
    t.is(await q.nextDueAt('h'), null);
  });

  test(`${b.name}: prune removes succeeded events past retention and expired idempotency keys only`, async (t) => {
    const { q, clock } = setup(t, { retentionMs: HOUR, idempotencyWindowMs: 2 * HOUR });
    const old = await q.submit('f', '{}', { idempotencyKey: 'k' });
    const dead = await q.submit('f', '{}');
    await q.lease({ perFunction: 2 });
    await q.complete(old.id, null);
    await q.fail(dead.id, { type: 'E', message: 'm' }, { dead: true });
    clock.advance(HOUR - 1);
    const fresh = await q.submit('f', '{}');
    await q.lease();
    await q.complete(fresh.id, null);
    clock.advance(2);
    t.deepEqual(await q.prune(), { events: 1, idempotencyKeys: 0 });
    await rejectsWith(t, q.get(old.id), 'EVENT_NOT_FOUND');
    t.is((await q.get(dead.id)).status, 'dead', 'dead events stay until redriven or purged');
    t.is((await q.get(fresh.id)).status, 'succeeded');
    clock.advance(2 * HOUR);
    t.deepEqual(await q.prune(), { events: 1, idempotencyKeys: 1 });
  });

  test(`${b.name}: purgeFunction deletes a function's events, keys and schedule state`, async (t) => {
    const { q } = setup(t, { maxQueued: 3 });
    await q.submitBatch('f', ['1', '2'], { idempotencyKey: 'k' });
    await q.submit('g', '1');
    await q.setScheduleState('f', 'rate(1 minute)', T0);
    t.is(await q.purgeFunction('f'), 2);
    t.deepEqual(Object.keys((await q.stats()).functions), ['g']);
    t.false((await q.submitBatch('f', ['1', '2'], { idempotencyKey: 'k' })).duplicate, 'depth and keys were released');
    t.is((await q.getScheduleStates('f')).size, 0);
  });

  test(`${b.name}: onAvailable tells which function has new events`, async (t) => {
    const { q } = setup(t);
    const seen: string[] = [];
    const off = q.onAvailable((fn) => seen.push(fn));
    await q.submit('f', '{}');
    await q.submitBatch('g', ['1']);
    await new Promise((r) => setImmediate(r));
    t.deepEqual(seen, ['f', 'g']);
    off();
    await q.submit('h', '{}');
    await new Promise((r) => setImmediate(r));
    t.deepEqual(seen, ['f', 'g']);
  });

  test(`${b.name}: schedule state round-trips`, async (t) => {
    const { q } = setup(t);
    await q.setScheduleState('f', 'rate(1 minute)', 10);
    await q.setScheduleState('f', 'rate(1 minute)', 20);
    await q.setScheduleState('f', 'cron(0 12 * * ? *)', 30);
    t.deepEqual([...(await q.getScheduleStates('f'))].sort(), [
      ['cron(0 12 * * ? *)', 30],
      ['rate(1 minute)', 20],
    ]);
    await q.deleteScheduleState('f', 'rate(1 minute)');
    t.deepEqual([...(await q.getScheduleStates('f'))], [['cron(0 12 * * ? *)', 30]]);
  });

  test(`${b.name}: a closed queue refuses calls with UNAVAILABLE`, async (t) => {
    const { q } = setup(t);
    await q.close();
    await rejectsWith(t, q.submit('f', '{}'), 'UNAVAILABLE', /closed/);
    await rejectsWith(t, q.stats(), 'UNAVAILABLE');
  });
}
