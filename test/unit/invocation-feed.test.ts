/**
 * The dispatcher's invocation feed: one record per finished invocation, with its trigger, start
 * kind and outcome, for sync invokes, queued events and failures alike.
 */
import test from 'ava';
import { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { HearthError } from '../../src/errors.js';
import { InvocationFeed, type DeadLetter, type InvocationRecord } from '../../src/dispatch/invocations.js';
import { silentLogger } from '../../src/log.js';
import { MemoryQueue } from '../../src/queue/memory-queue.js';
import { fakePool, poolFunction, settle } from './pool-fixture.js';

function setup() {
  const { spawner, pool, clock } = fakePool();
  const fn = poolFunction({ name: 'f', handler: 'h.h', timeoutMs: 1000 });
  spawner.define('/code/f', 'h.h', (event) => {
    const e = event as { fail?: boolean; sleep?: number };
    if (e.fail) throw new Error('boom');
    return { echo: event };
  });
  const queue = new MemoryQueue({ clock });
  const dispatcher = new Dispatcher({ queue, pool, lookup: (n) => (n === 'f' ? { fn, codeDir: '/code/f' } : undefined), clock, log: silentLogger() });
  const records: InvocationRecord[] = [];
  dispatcher.invocations.subscribe((r) => records.push(r));
  return { pool, queue, dispatcher, records, clock };
}

test('a sync invoke emits one record: trigger, start kind, outcome, and the id it ran under', async (t) => {
  const { pool, dispatcher, records } = setup();
  pool.start();
  const first = await dispatcher.invokeSync('f', { a: 1 });
  const second = await dispatcher.invokeSync('f', { a: 2 }, { trigger: 'lambda', invocationId: 'req-1' });
  t.is(records.length, 2);
  t.like(records[0], { id: first.invocationId, function: 'f', trigger: 'sync', start: 'cold', outcome: 'ok', error: null });
  t.like(records[1], { id: 'req-1', trigger: 'lambda', start: 'warm', outcome: 'ok' });
  t.is(second.invocationId, 'req-1');
  await pool.stop();
});

test("a handler's error is outcome error; an unknown function emits nothing and throws", async (t) => {
  const { pool, dispatcher, records } = setup();
  pool.start();
  const r = await dispatcher.invokeSync('f', { fail: true });
  t.is(r.error?.message, 'boom');
  t.like(records[0], { outcome: 'error', trigger: 'sync' });
  t.is(records[0].error?.message, 'boom');
  await t.throwsAsync(dispatcher.invokeSync('nope', {}), { message: /no function named "nope"/ });
  t.is(records.length, 1);
  await pool.stop();
});

test('a queued event emits a record with trigger async and its event id', async (t) => {
  const { pool, queue, dispatcher, records } = setup();
  pool.start();
  await dispatcher.start();
  const { id } = await queue.submit('f', JSON.stringify({ q: 1 }));
  for (let i = 0; i < 50 && records.length === 0; i++) await settle();
  t.is(records.length, 1);
  t.like(records[0], { function: 'f', trigger: 'async', outcome: 'ok', eventId: id, id: `${id}-1` });
  await dispatcher.stop();
  await pool.stop();
});

test('a schedule tick runs with trigger schedule; an event that runs out of attempts is one dead letter', async (t) => {
  const { pool, queue, dispatcher, records } = setup();
  const dead: DeadLetter[] = [];
  dispatcher.deadLetters.subscribe((d) => dead.push(d));
  pool.start();
  await dispatcher.start();
  const tick = await queue.submit('f', JSON.stringify({ time: 'now' }), { trigger: 'schedule' });
  const failing = await queue.submit('f', JSON.stringify({ fail: true }), { maxAttempts: 1 });
  for (let i = 0; i < 100 && (records.length < 2 || dead.length === 0); i++) await settle();
  t.like(
    records.find((r) => r.eventId === tick.id),
    { trigger: 'schedule', outcome: 'ok' },
  );
  t.like(
    records.find((r) => r.eventId === failing.id),
    { trigger: 'async', outcome: 'error' },
  );
  t.is(dead.length, 1);
  t.like(dead[0], { function: 'f', eventId: failing.id, trigger: 'async', error: { message: 'boom' } });
  await dispatcher.stop();
  await pool.stop();
});

test('an event that passes its maximum age before it could run is one dead letter, and never runs', async (t) => {
  const { pool, queue, dispatcher, records, clock } = setup();
  const dead: DeadLetter[] = [];
  dispatcher.deadLetters.subscribe((d) => dead.push(d));
  pool.start();
  const stale = await queue.submit('f', JSON.stringify({ q: 1 }), { expiresAt: clock.now() + 5 });
  clock.advance(10);
  await dispatcher.start();
  for (let i = 0; i < 50 && dead.length === 0; i++) await settle();
  t.is(dead.length, 1);
  t.like(dead[0], { function: 'f', eventId: stale.id, trigger: 'async', error: { type: 'Expired' } });
  t.is((await queue.get(stale.id)).status, 'dead');
  t.is(records.length, 0);
  await dispatcher.stop();
  await pool.stop();
});

test('a listener that throws is reported and does not stop the others', (t) => {
  const errors: unknown[] = [];
  const feed = new InvocationFeed((e) => errors.push(e));
  const seen: string[] = [];
  feed.subscribe(() => {
    throw new Error('bad listener');
  });
  const off = feed.subscribe((r) => seen.push(r.id));
  const rec: InvocationRecord = {
    id: 'i',
    function: 'f',
    trigger: 'sync',
    start: 'warm',
    initMs: 0,
    durationMs: 1,
    outcome: 'ok',
    error: null,
    logs: '',
    endedAt: 0,
  };
  feed.emit(rec);
  off();
  feed.emit(rec);
  t.deepEqual(seen, ['i']);
  t.is(errors.length, 2);
});

test('a result the queue cannot take for a moment (UNAVAILABLE) is written again; a stop ends the retries', async (t) => {
  const { pool, queue, dispatcher } = setup();
  const complete = queue.complete.bind(queue);
  let refusals = 2;
  queue.complete = (...args: Parameters<typeof queue.complete>) => {
    if (refusals > 0) {
      refusals--;
      return Promise.reject(new HearthError('UNAVAILABLE', 'brokers electing a leader'));
    }
    return complete(...args);
  };
  pool.start();
  await dispatcher.start();
  const { id } = await queue.submit('f', JSON.stringify({ q: 1 }));
  for (let i = 0; i < 200 && (await queue.get(id)).status !== 'succeeded'; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(refusals, 0, 'both refusals were met');
  t.like(await queue.get(id), { status: 'succeeded', attempts: 1, result: JSON.stringify({ echo: { q: 1 } }) });

  // A queue that stays unavailable (both settle writes refused): stop() does not wait out the retries.
  refusals = Infinity;
  const fail = queue.fail.bind(queue);
  queue.fail = (...args: Parameters<typeof queue.fail>) => (refusals > 0 ? Promise.reject(new HearthError('UNAVAILABLE', 'brokers gone')) : fail(...args));
  const second = await queue.submit('f', JSON.stringify({ q: 2 }));
  for (let i = 0; i < 200 && (await queue.get(second.id)).status !== 'running'; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 150));
  const t0 = Date.now();
  await dispatcher.stop();
  t.true(Date.now() - t0 < 5000, 'stop ended the retries');
  t.is((await queue.get(second.id)).status, 'running', 'left for its lease to end (another host, or the next start, takes it)');
  await pool.stop();
});
