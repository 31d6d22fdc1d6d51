/**
 * Faults of a Hearth cluster at the daemon level, with real nats-server processes and real
 * daemons (each its own socket, state dir and cgroup):
 *  - kill -9 of one of three brokers (the event stream's leader) while async events are submitted
 *    to two hosts: every accepted event finishes, the hosts carry on (a 503 during the election is
 *    retried with the same Idempotency-Key, as `Retry-After` asks), and the broker restarts and
 *    catches up (it then serves the events with another broker gone);
 *  - kill -9 of a host that holds running events, not restarted: the survivor takes them back once
 *    the dead host has been silent for 10 s (long before their leases would end), runs them, and
 *    shows their status; the host restarts, rejoins and takes work again.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ControlClient } from '../../src/control/client.js';
import { packDirectory } from '../../src/cli/pack.js';
import { fixture, isRoot, leftoverCgroups, startHarness, waitFor, type Harness } from './daemon-harness.js';
import { natsServerPath, startNatsCluster } from './nats-cluster.js';

const bin = natsServerPath();
const it = isRoot && bin ? test.serial : test.skip;
if (!isRoot || !bin) test('cluster fault tests need root and nats-server', (t) => t.pass());

const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface QueueView {
  total: { queued: number; running: number; failed: number; succeeded: number; dead: number };
}
type Client = Pick<ControlClient, 'request' | 'call'>;

const settled = async (c: Client) => {
  const q = await c.call<QueueView>('GET', '/v1/queue');
  return q.total.queued + q.total.running + q.total.failed === 0 ? q.total : undefined;
};
const ready = async (c: Client) => {
  const r = await c.request('GET', '/v1/health').catch(() => undefined);
  return (r?.body as { status?: string } | undefined)?.status === 'ok' ? true : undefined;
};

/** Submits one event until accepted (a 503 or 429 is retried with the same Idempotency-Key); counts refusals. */
async function submit(c: Client, payload: unknown, key: string, refusals: { n: number }): Promise<string> {
  for (;;) {
    const r = await c.request('POST', '/v1/functions/work/events', payload, { 'idempotency-key': key }).catch(() => undefined);
    if (r && r.status === 202) return (r.body as { id: string }).id;
    if (r && r.status !== 503 && r.status !== 429) throw new Error(`submit: ${r.status} ${JSON.stringify(r.body)}`);
    refusals.n++;
    await sleep(100);
  }
}

async function deployWork(h: Harness, extra: Record<string, unknown> = {}): Promise<void> {
  const code = (await packDirectory(fixture('queue-python'))).toString('base64');
  await h.client.call('PUT', '/v1/functions/work', { runtime: 'python', handler: 'work.slow', code, concurrency: 4, retries: 5, ...extra });
}

it('kill -9 of one of three brokers during a stream of async events to two hosts: nothing accepted is lost; the broker restarts and catches up', async (t) => {
  const cluster = await startNatsCluster({ nodes: 3 });
  t.teardown(() => cluster.stop());
  const hosts: Harness[] = [];
  t.teardown(async () => {
    for (const h of hosts) await h.stop();
  });
  for (const id of ['a', 'b']) hosts.push(await startHarness({ nats: cluster.urls, hostId: id, generic: { node: 0, python: 1 } }));
  const [a, b] = hosts;
  await waitFor('both ready', async () => ((await ready(a.client)) && (await ready(b.client)) ? true : undefined), 30_000);
  await deployWork(a);
  await waitFor('b lists work', async () => ((await b.client.request('GET', '/v1/functions/work')).status === 200 ? true : undefined), 5000);

  const nc = await connect({ servers: cluster.urls });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const leader = (await jsm.streams.info('KV_hearth-events')).cluster?.leader;
  const victim = Math.max(
    0,
    cluster.nodes.findIndex((n) => n.name === leader),
  );

  const accepted: string[] = [];
  const refusals = { n: 0 };
  const run = `r${randomBytes(3).toString('hex')}`;
  const stream = (async () => {
    for (let i = 0; i < 150; i++) {
      const pair = await Promise.all([
        submit(a.client, { i, sleep: 0.001 }, `${run}-a-${i}`, refusals),
        submit(b.client, { i: 1000 + i, sleep: 0.001 }, `${run}-b-${i}`, refusals),
      ]);
      accepted.push(...pair);
    }
  })();
  while (accepted.length < 80) await sleep(5);
  await cluster.kill(victim); // the event stream's leader: the two left elect another
  await stream;
  t.log(`${accepted.length} accepted; ${refusals.n} submits refused (503) during the election and retried`);
  t.is(new Set(accepted).size, 300, 'every submit was accepted once (retries with the same key gave the same id)');

  // The cluster carries on: everything accepted finishes, seen from either host. (A result that
  // could not be written during the election is written again once a leader is there: the
  // dispatcher retries settle writes the queue answers UNAVAILABLE, so nothing waits for a lease.)
  const done = await waitFor('every event settled', () => settled(a.client), 60_000).catch(async (err: unknown) => {
    for (const h of hosts) t.log(h.config.hostId, JSON.stringify((await h.client.call<QueueView>('GET', '/v1/queue')).total));
    throw err;
  });
  t.is(done.dead, 0);
  for (const id of accepted.filter((_, i) => i % 10 === 0)) {
    t.is((await b.client.call<{ status: string }>('GET', `/v1/events/${id}`)).status, 'succeeded', id);
  }

  // The broker restarts and catches up: the stream reports it a current replica again.
  await cluster.restart(victim);
  await waitFor(
    'the restarted broker is a current replica of the event stream',
    async () => {
      const info = await jsm.streams.info('KV_hearth-events').catch(() => undefined);
      const current = [info?.cluster?.leader, ...(info?.cluster?.replicas ?? []).filter((r) => r.current).map((r) => r.name)];
      return current.includes(cluster.nodes[victim].name) ? true : undefined;
    },
    30_000,
  );
  // Then another broker goes: the restarted one and the third hold every result.
  await cluster.kill((victim + 1) % 3);
  for (const id of [accepted[0], accepted[150], accepted[299]]) {
    const r = await waitFor(
      'an event readable with the restarted broker and one other',
      async () => {
        const x = await a.client.request('GET', `/v1/events/${id}`);
        return x.status === 200 ? (x.body as { status: string }) : undefined;
      },
      30_000,
    );
    t.is(r.status, 'succeeded');
  }
});

/** `hearth daemon` as a child process (so that it can be killed with SIGKILL), as host `id`. */
function spawnHost(dir: string, urls: string[], cgroupName: string, id: string): ChildProcess {
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ cgroupName, nats: urls, hostId: id, generic: { node: 0, python: 2 } }));
  return spawn(
    process.execPath,
    [MAIN, 'daemon', '--socket', join(dir, 'h.sock'), '--state-dir', join(dir, 'state'), '--config', cfg, '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}
const exitOf = (p: ChildProcess): Promise<unknown> =>
  p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));

it('kill -9 of a host holding running events: the survivor takes them over after the host has been silent for 10 s and runs them; the host rejoins and takes work', async (t) => {
  const cluster = await startNatsCluster({ nodes: 1 });
  t.teardown(() => cluster.stop());
  const a = await startHarness({ nats: cluster.urls, hostId: 'a', generic: { node: 0, python: 2 } });
  t.teardown(() => a.stop());
  const dir = mkdtempSync(join(tmpdir(), 'hearth-cf-'));
  const cgroupName = `hearth-test-${randomBytes(3).toString('hex')}`;
  const b = new ControlClient(join(dir, 'h.sock'));
  let child = spawnHost(dir, cluster.urls, cgroupName, 'b');
  t.teardown(async () => {
    b.close();
    child.kill('SIGKILL');
    await exitOf(child);
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('b ready', () => ready(b), 60_000);
  await waitFor('a ready', () => ready(a.client), 30_000);
  // A long timeout: the leases b takes would last 2 minutes (timeout plus a minute), far past this test.
  await deployWork(a, { timeoutMs: 60_000 });
  await waitFor('b lists work', async () => ((await b.request('GET', '/v1/functions/work')).status === 200 ? true : undefined), 5000);

  // Events of 0.5 s each, submitted to b: both hosts run them, 4 at a time each.
  const ids: string[] = [];
  for (let k = 0; k < 3; k++) {
    ids.push(
      ...(
        await b.call<{ ids: string[] }>(
          'POST',
          '/v1/functions/work/events/batch',
          Array.from({ length: 20 }, (_, i) => ({ i: k * 20 + i, sleep: 0.5 })),
        )
      ).ids,
    );
  }
  await waitFor('b runs events', async () => {
    const inv = await b.call<{ invocations: unknown[] }>('GET', '/v1/functions/work/invocations?last=5');
    return inv.invocations.length > 0 ? true : undefined;
  });
  child.kill('SIGKILL');
  await exitOf(child);

  // a alone: it runs what waits, then takes back what b held (b silent for 10 s), and runs that too.
  const done = await waitFor('every event settled on a', () => settled(a.client), 90_000);
  t.is(done.dead, 0);
  const health = await a.client.call<{ cluster: { eventsTakenOver: number; hosts: { hostId: string }[] } }>('GET', '/v1/health');
  t.true(health.cluster.eventsTakenOver > 0, `a took back ${health.cluster.eventsTakenOver} event(s) b held`);
  t.deepEqual(
    health.cluster.hosts.map((h) => h.hostId),
    ['a'],
  );
  for (const id of ids) t.is((await a.client.call<{ status: string }>('GET', `/v1/events/${id}`)).status, 'succeeded', id);
  const retried = (await Promise.all(ids.map((id) => a.client.call<{ attempts: number }>('GET', `/v1/events/${id}`)))).filter((e) => e.attempts > 1);
  t.true(retried.length > 0 && retried.length <= 4, `${retried.length} event(s) ran again (at most b's 4 slots)`);

  // b restarts on its state dir, rejoins, and takes work again.
  child = spawnHost(dir, cluster.urls, cgroupName, 'b');
  await waitFor('b ready again', () => ready(b), 60_000);
  await waitFor('a sees b again', async () => {
    const h = await a.client.call<{ cluster: { hosts: { hostId: string }[] } }>('GET', '/v1/health');
    return h.cluster.hosts.length === 2 ? true : undefined;
  });
  const later = new Set(
    (
      await a.client.call<{ ids: string[] }>(
        'POST',
        '/v1/functions/work/events/batch',
        Array.from({ length: 40 }, (_, i) => ({ i: 500 + i, sleep: 0.05 })),
      )
    ).ids,
  );
  await waitFor('b runs some of the new events', async () => {
    const inv = await b.call<{ invocations: { eventId?: string }[] }>('GET', '/v1/functions/work/invocations?last=1000');
    return inv.invocations.some((r) => r.eventId !== undefined && later.has(r.eventId)) ? true : undefined;
  });
  await waitFor('the new events settle', () => settled(a.client), 60_000);
  for (const id of later) t.is((await b.call<{ status: string }>('GET', `/v1/events/${id}`)).status, 'succeeded');
  child.kill('SIGTERM');
  await exitOf(child);
  t.deepEqual(leftoverCgroups(cgroupName), [], 'b left no cgroups');
});
