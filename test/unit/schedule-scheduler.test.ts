/**
 * The Scheduler with an injected clock over the real SQLite queue: one event per tick, on time,
 * and across a restart neither duplicates nor a burst of missed ticks.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { HearthError } from '../../src/errors.js';
import type { EventQueue, ScheduleStateStore } from '../../src/queue/event-queue.js';
import { MemoryQueue } from '../../src/queue/memory-queue.js';
import { Scheduler } from '../../src/queue/scheduler.js';
import { SqliteQueue } from '../../src/queue/sqlite-queue.js';

const MIN = 60_000;
const at = (iso: string): number => Date.parse(iso);

interface Host {
  clock: ManualClock;
  dir: string;
  queue: SqliteQueue | null;
  scheduler: Scheduler | null;
  warnings: string[];
}

function host(t: ExecutionContext, start: string): Host {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-scheduler-'));
  const h: Host = { clock: new ManualClock(at(start)), dir, queue: null, scheduler: null, warnings: [] };
  t.teardown(async () => {
    await h.scheduler?.stop();
    await h.queue?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return h;
}

/** A daemon start: open the queue, build the scheduler, set the schedules, start. */
async function boot(h: Host, schedules: Record<string, string[]>): Promise<{ queue: SqliteQueue; scheduler: Scheduler }> {
  const queue = SqliteQueue.open({ stateDir: h.dir, clock: h.clock, maintenanceIntervalMs: 0 });
  const scheduler = new Scheduler({ queue, state: queue, clock: h.clock, logger: { warn: (_o, msg) => h.warnings.push(msg) } });
  h.queue = queue;
  h.scheduler = scheduler;
  for (const [fn, exprs] of Object.entries(schedules)) await scheduler.set(fn, exprs);
  await scheduler.start();
  return { queue, scheduler };
}

/** A daemon stop (graceful or not: the scheduler keeps nothing that the queue does not). */
async function halt(h: Host): Promise<void> {
  await h.scheduler?.stop();
  await h.queue?.close();
  h.scheduler = null;
  h.queue = null;
}

/** Advance the clock in steps so each timer's async work runs before the next. */
async function advance(h: Host, ms: number, step = MIN): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    h.clock.advance(Math.min(step, ms - done));
    await h.scheduler?.idle();
  }
}

async function ticks(q: EventQueue & ScheduleStateStore, fn: string): Promise<Array<{ time: string; schedule: string }>> {
  const events = await q.list({ function: fn, limit: 1000 });
  return events.reverse().map((e) => JSON.parse(e.payload) as { time: string; schedule: string });
}

test('a rate schedule queues one event per tick, on time, and not for ticks before it existed', async (t) => {
  const h = host(t, '2026-11-26T13:02:30Z');
  const { queue } = await boot(h, { f: ['rate(5 minutes)'] });
  t.deepEqual(await ticks(queue, 'f'), [], 'the 13:00 tick was before the schedule was set');
  await advance(h, 2.5 * MIN, 30_000);
  t.deepEqual(await ticks(queue, 'f'), [{ time: '2026-11-26T13:05:00.000Z', schedule: 'rate(5 minutes)' }]);
  await advance(h, 10 * MIN);
  t.deepEqual(
    (await ticks(queue, 'f')).map((e) => e.time),
    ['2026-11-26T13:05:00.000Z', '2026-11-26T13:10:00.000Z', '2026-11-26T13:15:00.000Z'],
  );
});

test('after downtime only the last missed tick fires, then the schedule continues on time', async (t) => {
  const h = host(t, '2026-11-26T13:02:30Z');
  await boot(h, { f: ['rate(5 minutes)'] });
  await advance(h, 7.5 * MIN); // fires 13:05 and 13:10
  await halt(h);
  h.clock.advance(62 * MIN); // down from 13:10 to 14:12: twelve ticks missed
  const { queue } = await boot(h, { f: ['rate(5 minutes)'] });
  t.deepEqual(
    (await ticks(queue, 'f')).map((e) => e.time),
    ['2026-11-26T13:05:00.000Z', '2026-11-26T13:10:00.000Z', '2026-11-26T14:10:00.000Z'],
  );
  await advance(h, 3 * MIN);
  t.deepEqual((await ticks(queue, 'f')).map((e) => e.time).slice(-2), ['2026-11-26T14:10:00.000Z', '2026-11-26T14:15:00.000Z']);
});

test('a restart between ticks fires nothing extra', async (t) => {
  const h = host(t, '2026-11-26T13:02:30Z');
  await boot(h, { f: ['rate(5 minutes)'] });
  await advance(h, 3 * MIN); // 13:05 fired; now 13:05:30
  await halt(h);
  h.clock.advance(MIN);
  const { queue } = await boot(h, { f: ['rate(5 minutes)'] });
  t.deepEqual(
    (await ticks(queue, 'f')).map((e) => e.time),
    ['2026-11-26T13:05:00.000Z'],
  );
  await advance(h, 4 * MIN);
  t.deepEqual(
    (await ticks(queue, 'f')).map((e) => e.time),
    ['2026-11-26T13:05:00.000Z', '2026-11-26T13:10:00.000Z'],
  );
});

test('a crash between queueing a tick and recording it does not queue the tick twice', async (t) => {
  const h = host(t, '2026-11-26T13:02:30Z');
  const first = await boot(h, { f: ['rate(5 minutes)'] });
  await advance(h, 3 * MIN); // 13:05 queued and recorded
  // Lose the record of the tick, as if the daemon died right after the submit committed.
  await first.queue.setScheduleState('f', 'rate(5 minutes)', at('2026-11-26T13:02:30Z'));
  await halt(h);
  const { queue } = await boot(h, { f: ['rate(5 minutes)'] });
  t.deepEqual(
    (await ticks(queue, 'f')).map((e) => e.time),
    ['2026-11-26T13:05:00.000Z'],
    'the idempotency key caught the repeat',
  );
  t.is((await queue.getScheduleStates('f')).get('rate(5 minutes)'), at('2026-11-26T13:05:00Z'));
});

test('a daily cron schedule missed for three days fires once at restart', async (t) => {
  const h = host(t, '2026-11-26T11:00:00Z');
  await boot(h, { f: ['cron(0 12 * * ? *)'], g: ['rate(1 hour)'] });
  await advance(h, 61 * MIN, 10 * MIN); // 12:00 fires for both; now 12:01
  await halt(h);
  h.clock.advance(3 * 24 * 60 * MIN);
  const { queue } = await boot(h, { f: ['cron(0 12 * * ? *)'], g: ['rate(1 hour)'] });
  t.deepEqual(
    (await ticks(queue, 'f')).map((e) => e.time),
    ['2026-11-26T12:00:00.000Z', '2026-11-29T12:00:00.000Z'],
  );
  t.deepEqual(
    (await ticks(queue, 'g')).map((e) => e.time),
    ['2026-11-26T12:00:00.000Z', '2026-11-29T12:00:00.000Z'],
  );
});

test('set rejects a bad or never-firing expression with BAD_REQUEST and keeps the old schedules', async (t) => {
  const h = host(t, '2026-11-26T13:02:30Z');
  const { queue, scheduler } = await boot(h, { f: ['rate(5 minutes)'] });
  const bad = await t.throwsAsync(scheduler.set('f', ['rate(1 minute)', 'cron(0 12 ? * 8 *)']));
  t.is((bad as HearthError).code, 'BAD_REQUEST');
  t.regex(bad.message, /day-of-week '8' out of range 1-7/);
  const never = await t.throwsAsync(scheduler.set('f', ['cron(0 0 1 1 ? 2020)']));
  t.regex(never.message, /never fires/);
  t.deepEqual([...(await queue.getScheduleStates('f')).keys()], ['rate(5 minutes)']);
  t.is(scheduler.upcoming('f')[0]?.at, at('2026-11-26T13:05:00Z'));
});

test('replacing or removing schedules drops their state; a re-added schedule starts fresh', async (t) => {
  const h = host(t, '2026-11-26T13:02:30Z');
  const { queue, scheduler } = await boot(h, { f: ['rate(5 minutes)', 'rate(1 hour)'] });
  await scheduler.set('f', ['rate(1 hour)']);
  t.deepEqual([...(await queue.getScheduleStates('f')).keys()], ['rate(1 hour)']);
  await advance(h, 3 * MIN);
  t.deepEqual(await ticks(queue, 'f'), [], 'the dropped 5-minute schedule no longer fires');
  await scheduler.remove('f');
  t.is((await queue.getScheduleStates('f')).size, 0);
  await advance(h, 60 * MIN, 5 * MIN);
  t.deepEqual(await ticks(queue, 'f'), []);
});

test('scheduled events carry the function retries and maximum age, and trigger schedule', async (t) => {
  const h = host(t, '2026-11-26T13:04:00Z');
  const { queue, scheduler } = await boot(h, {});
  await scheduler.set('f', ['rate(5 minutes)'], { maxAttempts: 4, maxEventAgeMs: 10 * MIN });
  await advance(h, MIN);
  const [e] = await queue.list({ function: 'f' });
  t.like(e, { maxAttempts: 4, expiresAt: at('2026-11-26T13:15:00Z'), trigger: 'schedule' });
});

test('when the queue refuses a tick, the scheduler warns and tries again', async (t) => {
  const clock = new ManualClock(at('2026-11-26T13:04:00Z'));
  const queue = new MemoryQueue({ clock, maxQueued: 1 });
  const warnings: string[] = [];
  const scheduler = new Scheduler({ queue, state: queue, clock, retryDelayMs: 10_000, logger: { warn: (_o, m) => warnings.push(m) } });
  t.teardown(() => scheduler.stop());
  await queue.submit('other', '{}'); // the queue is now full
  await scheduler.set('f', ['rate(5 minutes)']);
  await scheduler.start();
  clock.advance(MIN);
  await scheduler.idle();
  t.is(warnings.length, 1);
  t.deepEqual(await ticks(queue, 'f'), []);
  await queue.lease(); // room again
  clock.advance(10_000);
  await scheduler.idle();
  t.deepEqual(await ticks(queue, 'f'), [{ time: '2026-11-26T13:05:00.000Z', schedule: 'rate(5 minutes)' }]);
});

test('many hosts: only the lease holder fires; a new holder fires the tick the old one missed, and none twice', async (t) => {
  const a = host(t, '2026-11-26T13:02:30Z');
  const b = host(t, '2026-11-26T13:02:30Z');
  let holder: 'a' | 'b' | null = 'a';
  const mk = (h: Host, me: 'a' | 'b') => {
    const queue = SqliteQueue.open({ stateDir: h.dir, clock: h.clock, maintenanceIntervalMs: 0 });
    const scheduler = new Scheduler({ queue, state: queue, clock: h.clock, fires: () => holder === me, followerGraceMs: 30_000 });
    h.queue = queue;
    h.scheduler = scheduler;
    return { queue, scheduler };
  };
  const qa = mk(a, 'a');
  const qb = mk(b, 'b');
  for (const { scheduler } of [qa, qb]) {
    await scheduler.set('f', ['rate(5 minutes)']);
    await scheduler.start();
  }
  const step = async (ms: number): Promise<void> => {
    for (let done = 0; done < ms; done += 10_000) {
      for (const h of [a, b]) {
        h.clock.advance(10_000);
        await h.scheduler?.idle();
      }
    }
  };
  await step(12 * MIN + 20_000); // to 13:14:50: a fired 13:05 and 13:10
  // a dies just before 13:15; b takes the lease 20 s later.
  const fromA = (await ticks(qa.queue, 'f')).map((e) => e.time);
  t.deepEqual(
    (await ticks(qb.queue, 'f')).map((e) => e.time),
    [],
    'b fired nothing while a held the lease',
  );
  await halt(a);
  holder = null;
  await step(20_000);
  holder = 'b';
  await step(6 * MIN);
  const fromB = (await ticks(qb.queue, 'f')).map((e) => e.time);
  t.deepEqual(fromA, ['2026-11-26T13:05:00.000Z', '2026-11-26T13:10:00.000Z']);
  t.deepEqual(fromB, ['2026-11-26T13:15:00.000Z', '2026-11-26T13:20:00.000Z'], 'the missed 13:15 fires on b, late; nothing a fired');
});
