/**
 * JetStreamQueue as several hosts see it (what the single-queue conformance suite cannot show):
 * two queues on one bucket lease each event once, see each other's events and results, recover
 * only their own leases at start and any host's expired lease in a sweep; a full bucket answers
 * TOO_MANY_REQUESTS. Real nats-server, one per test.
 */
import test, { type ExecutionContext } from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ManualClock } from '../../src/clock.js';
import { HearthError } from '../../src/errors.js';
import { JetStreamQueue, type JetStreamQueueOptions } from '../../src/cluster/jetstream-queue.js';
import { natsServerPath, startNatsCluster, type NatsCluster } from './nats-cluster.js';

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const skip = natsServerPath() ? undefined : 'needs nats-server (apt-get install nats-server)';
const maybe = skip ? test.skip : test.serial;

async function broker(t: ExecutionContext): Promise<{ cluster: NatsCluster; conn: () => Promise<NatsConnection> }> {
  const cluster = await startNatsCluster({ nodes: 1 });
  t.teardown(() => cluster.stop());
  const conn = async (): Promise<NatsConnection> => {
    const nc = await connect({ servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    t.teardown(() => nc.close());
    return nc;
  };
  return { cluster, conn };
}

async function open(t: ExecutionContext, nc: NatsConnection, opts: JetStreamQueueOptions): Promise<JetStreamQueue> {
  const q = new JetStreamQueue(nc, { maintenanceIntervalMs: 0, ...opts });
  t.teardown(() => q.close());
  await q.start();
  return q;
}

/** Polls `check` (the other host's view follows a watch) until true; fails the test after 10 s. */
async function eventually(t: ExecutionContext, what: string, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > until) t.fail(`not within 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.pass(what);
}

maybe(`two hosts on one bucket: each event is leased once, results are visible from both, wake-ups cross hosts${skip ? ` (${skip})` : ''}`, async (t) => {
  const { conn } = await broker(t);
  const clock = new ManualClock(T0);
  const a = await open(t, await conn(), { hostId: 'a', clock });
  const b = await open(t, await conn(), { hostId: 'b', clock });
  const woke: string[] = [];
  b.onAvailable((fn) => woke.push(fn));
  const ids = (
    await a.submitBatch(
      'f',
      Array.from({ length: 60 }, (_, i) => String(i)),
    )
  ).ids;
  await eventually(t, "host b is told about host a's events", async () => woke.includes('f'));
  await eventually(t, 'host b sees all 60 waiting', async () => (await b.stats()).total.queued === 60);
  const leased = new Map<string, string>();
  for (let round = 0; leased.size < 60 && round < 200; round++) {
    const [la, lb] = await Promise.all([a.lease({ perFunction: 7 }), b.lease({ perFunction: 7 })]);
    for (const [host, list] of [
      ['a', la],
      ['b', lb],
    ] as const) {
      for (const e of list) {
        t.false(leased.has(e.id), `event ${e.id} leased by ${leased.get(e.id)} and again by ${host}`);
        leased.set(e.id, host);
        await (host === 'a' ? a : b).complete(e.id, JSON.stringify(host), { attempt: e.attempts });
      }
    }
  }
  t.deepEqual([...leased.keys()].sort(), [...ids].sort());
  t.true([...leased.values()].includes('a') && [...leased.values()].includes('b'), 'both hosts got work');
  // Status and result from the other host: get reads the broker when its view has not caught up.
  for (const id of ids.slice(0, 5)) t.like(await b.get(id), { status: 'succeeded', result: JSON.stringify(leased.get(id)) });
  await eventually(t, 'both views count 60 succeeded', async () => (await a.stats()).total.succeeded === 60 && (await b.stats()).total.succeeded === 60);
});

maybe("recoverRunning at start takes back only this host's leases; the sweep recovers any host's expired lease and fences the old holder", async (t) => {
  const { conn } = await broker(t);
  const clock = new ManualClock(T0);
  const a = await open(t, await conn(), { hostId: 'a', clock });
  const b = await open(t, await conn(), { hostId: 'b', clock });
  const { id } = await a.submit('f', '{}');
  const [held] = await a.lease({ leaseMs: 10_000 });
  await eventually(t, 'host b sees the lease', async () => (await b.list({ status: 'running' })).length === 1);
  t.deepEqual(await b.recoverRunning(), { requeued: [], dead: [] }, "host b starting does not take host a's running event");
  clock.advance(10_000);
  t.deepEqual(await b.recoverRunning({ expiredOnly: true }), { requeued: [id], dead: [] });
  const [again] = await b.lease();
  t.like(again, { id, attempts: 2 });
  const err = await t.throwsAsync(a.complete(id, '"late"', { attempt: held.attempts }));
  t.is((err as HearthError).code, 'CONFLICT', 'the old holder cannot settle the new attempt');
  await b.complete(id, '"b"', { attempt: again.attempts });
  t.like(await a.get(id), { status: 'succeeded', result: '"b"' });
});

maybe('a host started later loads every event, idempotency key and schedule state already in the bucket', async (t) => {
  const { conn } = await broker(t);
  const clock = new ManualClock(T0);
  const a = await open(t, await conn(), { hostId: 'a', clock });
  const ids = (await a.submitBatch('f', ['1', '2', '3'], { idempotencyKey: 'k' })).ids;
  await a.setScheduleState('f', 'rate(1 minute)', T0);
  const [first] = await a.lease();
  await a.complete(first.id, null);
  await a.purgeFunction('gone');
  const late = await open(t, await conn(), { hostId: 'late', clock });
  t.like((await late.stats()).total, { queued: 2, succeeded: 1 });
  t.deepEqual(await late.submitBatch('f', ['x'], { idempotencyKey: 'k' }), { ids, duplicate: true });
  t.deepEqual([...(await late.getScheduleStates('f'))], [['rate(1 minute)', T0]]);
  const newId = (await late.submit('f', '{}')).id;
  t.true(newId > ids[2], 'ids of the new host sort after the stored ones');
});

maybe('a purge heard late spares the events and idempotency keys made after it was asked for', async (t) => {
  const { conn } = await broker(t);
  const clock = new ManualClock(T0);
  const a = await open(t, await conn(), { hostId: 'a', clock });
  const old = (await a.submit('f', '"old"', { idempotencyKey: 'old' })).id;
  const asked = clock.now() + 1;
  clock.advance(1000);
  // The function is deployed again and gets new events before this host hears the delete.
  const fresh = (await a.submit('f', '"new"', { idempotencyKey: 'new' })).id;
  t.is(await a.purgeFunction('f', { createdBefore: asked }), 1);
  const err = await t.throwsAsync(a.get(old));
  t.is((err as HearthError).code, 'EVENT_NOT_FOUND');
  t.like(await a.get(fresh), { status: 'queued' });
  t.deepEqual(await a.submit('f', '"again"', { idempotencyKey: 'new' }), { id: fresh, duplicate: true }, 'the new key is kept');
  t.false((await a.submit('f', '"again"', { idempotencyKey: 'old' })).duplicate, 'the old key is gone');
});

maybe('a full bucket answers TOO_MANY_REQUESTS with retryAfterS and keeps what it accepted', async (t) => {
  const { conn } = await broker(t);
  const q = await open(t, await conn(), { hostId: 'a', maxBytes: 64 * 1024, retryAfterS: 3 });
  const accepted: string[] = [];
  let refused: unknown;
  for (let i = 0; i < 1000 && !refused; i++) {
    try {
      accepted.push((await q.submit('f', JSON.stringify({ i, pad: 'x'.repeat(200) }))).id);
    } catch (e) {
      refused = e;
    }
  }
  t.true(refused instanceof HearthError, `expected a refusal, got ${String(refused)}`);
  t.is((refused as HearthError).code, 'TOO_MANY_REQUESTS', (refused as Error).message);
  t.deepEqual((refused as HearthError).details, { retryAfterS: 3 });
  t.true(accepted.length > 10);
  for (const id of [accepted[0], accepted[accepted.length - 1]]) t.is((await q.get(id)).status, 'queued');
  t.is((await q.stats()).total.queued, accepted.length);
});
