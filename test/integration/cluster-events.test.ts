/**
 * Async events on a Hearth cluster: two hosts (a daemon in this process and one in a child
 * process, so that it can be killed with SIGKILL) share one event queue on a 3-node nats-server
 * cluster. Events submitted to both hosts all finish, also when one host is killed in the middle
 * of the stream; their status is readable from either host; the killed host restarts, takes back
 * its own interrupted events and takes new work again; a delete purges the shared queue from both.
 */
import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { packDirectory } from '../../src/cli/pack.js';
import { fixture, isRoot, leftoverCgroups, startHarness, waitFor } from './daemon-harness.js';
import { natsServerPath, startNatsCluster } from './nats-cluster.js';

const bin = natsServerPath();
const it = isRoot && bin ? test.serial : test.skip;
if (!isRoot || !bin) test('cluster event tests need root and nats-server', (t) => t.pass());

const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

interface EventView {
  id: string;
  status: string;
}
interface QueueView {
  total: { queued: number; running: number; failed: number; succeeded: number; dead: number };
}

/** `hearth daemon` as a child process on dir's socket and state dir, joined to the brokers as host `b`. */
function spawnHost(dir: string, urls: string[], cgroupName: string): ChildProcess {
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ cgroupName, nats: urls, hostId: 'b', generic: { node: 0, python: 2 } }));
  return spawn(
    process.execPath,
    [MAIN, 'daemon', '--socket', join(dir, 'h.sock'), '--state-dir', join(dir, 'state'), '--config', cfg, '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

function exitOf(p: ChildProcess): Promise<unknown> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));
}

const ready = async (c: ControlClient) => {
  const r = await c.request('GET', '/v1/health').catch(() => undefined);
  return (r?.body as { status?: string } | undefined)?.status === 'ok' ? true : undefined;
};

it('kill -9 of one of two hosts mid-stream: every accepted event finishes, readable from the survivor; the host restarts and takes work again', async (t) => {
  const cluster = await startNatsCluster({ nodes: 3 });
  t.teardown(() => cluster.stop());
  const a = await startHarness({ nats: cluster.urls, hostId: 'a', generic: { node: 0, python: 2 } });
  t.teardown(() => a.stop());
  const dir = mkdtempSync(join(tmpdir(), 'hearth-cq-'));
  const cgroupName = `hearth-test-${randomBytes(3).toString('hex')}`;
  const b = new ControlClient(join(dir, 'h.sock'));
  let child = spawnHost(dir, cluster.urls, cgroupName);
  t.teardown(async () => {
    b.close();
    child.kill('SIGTERM');
    await exitOf(child);
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('b ready', () => ready(b), 60_000);

  const code = (await packDirectory(fixture('queue-python'))).toString('base64');
  await a.client.call('PUT', '/v1/functions/work', { runtime: 'python', handler: 'work.slow', code, concurrency: 4, retries: 5 });
  await waitFor('b lists work', async () =>
    (await b.call<{ functions: { name: string }[] }>('GET', '/v1/functions')).functions.length === 1 ? true : undefined,
  );

  const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ i: from + i, sleep: 0.005 }));
  const onA: string[] = [];
  const onB: string[] = [];
  // The stream: batches to both hosts, until b has run some of them.
  for (let k = 0; k < 8; k++) {
    onA.push(...(await a.client.call<{ ids: string[] }>('POST', '/v1/functions/work/events/batch', batch(k * 100, 50))).ids);
    onB.push(...(await b.call<{ ids: string[] }>('POST', '/v1/functions/work/events/batch', batch(k * 100 + 50, 50))).ids);
  }
  for (let i = 0; i < 20; i++) onB.push((await b.call<{ id: string }>('POST', '/v1/functions/work/events', { i: 1000 + i, sleep: 0.005 })).id);
  const anOnA = onA[0];
  t.is((await b.call<EventView>('GET', `/v1/events/${anOnA}`)).id, anOnA, 'an event submitted on a is readable from b');
  await waitFor('b runs events', async () => {
    const inv = await b.call<{ invocations: unknown[] }>('GET', '/v1/functions/work/invocations?last=5');
    return inv.invocations.length > 0 ? true : undefined;
  });

  // kill -9 of b in the middle of the stream; a goes on taking events.
  child.kill('SIGKILL');
  await exitOf(child);
  for (let k = 0; k < 4; k++) onA.push(...(await a.client.call<{ ids: string[] }>('POST', '/v1/functions/work/events/batch', batch(2000 + k * 50, 50))).ids);

  // The survivor runs everything that waits; only what b held when it died stays running (its lease).
  const whileDown = await waitFor(
    'a drains the queue',
    async () => {
      const q = await a.client.call<QueueView>('GET', '/v1/queue');
      // a's own runs end; b's (at most its 4 slots) stay running until b comes back or their lease expires.
      return q.total.queued + q.total.failed === 0 && q.total.running <= 4 ? q.total : undefined;
    },
    120_000,
  );
  t.log('while b was down', whileDown);
  // Status of events submitted on the killed host, from the survivor.
  for (const id of onB.filter((_, i) => i % 7 === 0))
    t.true(['succeeded', 'running'].includes((await a.client.call<EventView>('GET', `/v1/events/${id}`)).status));

  // b restarts on its state dir: it rejoins, puts back what it held, and every accepted event ends succeeded.
  child = spawnHost(dir, cluster.urls, cgroupName);
  await waitFor('b ready again', () => ready(b), 60_000);
  const done = await waitFor(
    'all events settled',
    async () => {
      const q = await a.client.call<QueueView>('GET', '/v1/queue');
      return q.total.queued + q.total.running + q.total.failed === 0 ? q.total : undefined;
    },
    120_000,
  );
  t.is(done.dead, 0);
  t.true(done.succeeded >= onA.length + onB.length, `${done.succeeded} succeeded of ${onA.length + onB.length} accepted`);
  for (const id of [...onA, ...onB]) t.is((await a.client.call<EventView>('GET', `/v1/events/${id}`)).status, 'succeeded', id);
  t.is((await b.call<EventView>('GET', `/v1/events/${onB[0]}`)).status, 'succeeded', 'and from the restarted host');

  // `hearth hosts` on the restarted host lists both.
  const listed = await waitFor('b sees both hosts', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [MAIN, 'hosts', '--json', '--socket', join(dir, 'h.sock')], (err, stdout) =>
        err ? reject(new Error(`hearth hosts: ${err.message}`)) : resolve(stdout),
      ),
    );
    const ids = (JSON.parse(out) as { hosts: { hostId: string }[] }).hosts.map((h) => h.hostId).sort();
    return ids.length === 2 ? ids : undefined;
  });
  t.deepEqual(listed, ['a', 'b']);

  // The restarted host takes work again: events submitted on a, some run on b.
  const later = new Set<string>();
  for (let k = 0; k < 4; k++)
    for (const id of (await a.client.call<{ ids: string[] }>('POST', '/v1/functions/work/events/batch', batch(5000 + k * 50, 50))).ids) later.add(id);
  await waitFor('b runs some of the new events', async () => {
    const inv = await b.call<{ invocations: { eventId?: string }[] }>('GET', '/v1/functions/work/invocations?last=1000');
    return inv.invocations.some((r) => r.eventId !== undefined && later.has(r.eventId)) ? true : undefined;
  });
  await waitFor('the new events settle', async () => {
    const q = await a.client.call<QueueView>('GET', '/v1/queue');
    return q.total.queued + q.total.running + q.total.failed === 0 ? true : undefined;
  });
  for (const id of later) t.is((await b.call<EventView>('GET', `/v1/events/${id}`)).status, 'succeeded');

  // A delete is heard by both hosts and both purge the shared queue: the events are gone everywhere.
  await a.client.call('DELETE', '/v1/functions/work');
  const some = [...later][0];
  await waitFor('b no longer finds the events', async () => ((await b.request('GET', `/v1/events/${some}`)).status === 404 ? true : undefined));
  t.is((await a.client.request('GET', `/v1/events/${onB[0]}`)).status, 404);
  await waitFor('a counts no event of work', async () => ((await a.client.call<QueueView>('GET', '/v1/queue')).total.succeeded === 0 ? true : undefined));

  child.kill('SIGTERM');
  await exitOf(child);
  t.deepEqual(leftoverCgroups(cgroupName), [], 'b left no cgroups');
});
