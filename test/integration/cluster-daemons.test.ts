/**
 * Several Hearth hosts on real brokers: daemons on one machine, each with its own socket, state dir
 * and cgroup name, joined to a 3-node nats-server cluster. A function deployed on one host is
 * listed, invoked and deleted from another; racing deploys give one 409; a sync invoke on a host
 * without a warm instance runs on the host that has one; a daemon whose broker is unreachable
 * starts, says so, reports not ready, and joins once the broker comes; with the broker gone, cached
 * functions keep running.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, isRoot, startHarness, waitFor, type Harness, type InvokeReply } from './daemon-harness.js';
import { freePort, natsServerPath, startNatsCluster, type NatsCluster } from './nats-cluster.js';

const bin = natsServerPath();
const it = isRoot && bin ? test.serial : test.skip;
if (!isRoot || !bin) test('cluster daemon tests need root and nats-server', (t) => t.pass());

interface Health {
  status: string;
  cluster?: { ready: boolean; broker: { connected: boolean; error?: string }; hosts: { hostId: string; idleWarm: Record<string, number> }[] };
}
interface PoolView {
  instances: { id: string; function: string | null; state: string }[];
}

const health = (h: Harness) => h.client.call<Health>('GET', '/v1/health');
const names = async (h: Harness) => (await h.client.call<{ functions: { name: string }[] }>('GET', '/v1/functions')).functions.map((f) => f.name);

async function hosts(cluster: NatsCluster, ids: string[]): Promise<Harness[]> {
  const out: Harness[] = [];
  for (const id of ids) out.push(await startHarness({ nats: cluster.urls, hostId: id, generic: { node: 1, python: 0 } }));
  return out;
}

it('a function deployed on one host is listed, invoked and deleted from another; racing deploys give one 409', async (t) => {
  const cluster = await startNatsCluster({ nodes: 3 });
  t.teardown(() => cluster.stop());
  const [a, b] = await hosts(cluster, ['a', 'b']);
  t.teardown(() => Promise.all([a.stop(), b.stop()]).then(() => undefined));
  // The shared queue attaches after start (its streams are made or checked on the brokers, with
  // retries while a fresh cluster elects leaders): a host joined to healthy brokers becomes ready.
  await waitFor('a is ready', async () => ((await health(a)).status === 'ok' ? true : undefined), 20_000);
  t.is((await health(a)).status, 'ok');
  await waitFor('both hosts see each other', async () => ((await health(b)).cluster?.hosts.length === 2 ? true : undefined));

  await a.deploy('echo', fixture('probe-node'), 'node', 'probe.echo');
  await waitFor('b lists echo', async () => ((await names(b)).includes('echo') ? true : undefined), 5000);
  const r = await b.invoke<{ event: { x: number } }>('echo', { x: 1 });
  t.deepEqual(r.result.event, { x: 1 });
  // A host that joins later loads the function and fetches its code at start.
  const [c] = await hosts(cluster, ['c']);
  t.teardown(() => c.stop());
  t.true((await names(c)).includes('echo'));
  t.is((await c.client.call<{ cluster: { functionsLoaded: boolean } }>('GET', '/v1/health')).cluster.functionsLoaded, true);

  // Racing deploys of one function from two hosts: one wins, the other is told 409.
  const body = async (size: number) => {
    const { packDirectory } = await import('../../src/cli/pack.js');
    return { runtime: 'node', handler: 'probe.echo', memoryMb: size * 32, code: (await packDirectory(fixture('probe-node'))).toString('base64') };
  };
  // Two requests only race when they overlap: when one finished (and reached the other host)
  // before the other began, both rightly succeed one after the other. So the race is tried a few
  // times; each round must end in [200, 409] or in two serial successes leaving one of the two
  // definitions whole, and at least one round must have raced.
  let raced = false;
  for (let round = 0; round < 6 && !raced; round++) {
    const [ba, bb] = await Promise.all([body(4 + 2 * round), body(5 + 2 * round)]);
    const statuses = (await Promise.all([a.client.request('PUT', '/v1/functions/echo', ba), b.client.request('PUT', '/v1/functions/echo', bb)])).map(
      (x) => x.status,
    );
    if (statuses.includes(409)) {
      t.deepEqual([...statuses].sort(), [200, 409]);
      raced = true;
    } else {
      t.deepEqual(statuses, [200, 200]);
      const now = await a.client.call<{ memoryMb: number }>('GET', '/v1/functions/echo');
      t.true([ba.memoryMb, bb.memoryMb].includes(now.memoryMb), 'one of the two definitions, whole');
    }
  }
  t.true(raced, 'racing deploys: one got 409 in at least one round');

  await b.client.call('DELETE', '/v1/functions/echo');
  await waitFor('a no longer lists echo', async () => (!(await names(a)).includes('echo') ? true : undefined), 5000);
  t.is((await a.client.request('POST', '/v1/functions/echo/invoke', {})).status, 404);
});

it('a sync invoke on a host without a warm instance runs on the host that has one', async (t) => {
  const cluster = await startNatsCluster({ nodes: 3 });
  t.teardown(() => cluster.stop());
  const [a, b] = await hosts(cluster, ['a', 'b']);
  t.teardown(() => Promise.all([a.stop(), b.stop()]).then(() => undefined));
  await a.deploy('echo', fixture('probe-node'), 'node', 'probe.echo');
  await waitFor('b lists echo', async () => ((await names(b)).includes('echo') ? true : undefined), 5000);
  const first = await a.invoke('echo', { n: 1 });
  const warmOnA = (await a.client.call<PoolView>('GET', '/v1/pool')).instances.filter((i) => i.function === 'echo').map((i) => i.id);
  t.true(warmOnA.includes(first.instance));
  await waitFor('b hears that a has a warm echo', async () =>
    (await health(b)).cluster?.hosts.some((h) => h.hostId === 'a' && (h.idleWarm['echo'] ?? 0) > 0) ? true : undefined,
  );
  const routed = await b.invoke<{ event: { n: number } }>('echo', { n: 2 });
  t.is(routed.instance, first.instance, 'ran on a, in its warm instance');
  t.is(routed.start, 'warm');
  t.deepEqual(routed.result.event, { n: 2 });
  t.false(
    (await b.client.call<PoolView>('GET', '/v1/pool')).instances.some((i) => i.function === 'echo'),
    'b started no instance of echo',
  );
  // b's policy saw the arrivals that ran on a (the one b routed, and the one a got directly): pools are sized for the cluster.
  const model = (h: Harness) => h.client.call<{ window: { arrivalsTotal: number } }>('GET', '/v1/functions/echo/model');
  await waitFor('b counted both arrivals', async () => ((await model(b)).window.arrivalsTotal >= 2 ? true : undefined), 5000);
  t.is((await model(b)).window.arrivalsTotal, 2);
  t.is((await model(a)).window.arrivalsTotal, 2, 'a counts each arrival once: its own runs, not its own echoes');
});

it('broker unreachable at start: the daemon starts, says not ready, and joins when the broker comes; cached functions run without it', async (t) => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'hearth-nats-late-'));
  let server: ReturnType<typeof spawn> | undefined;
  t.teardown(async () => {
    if (server && server.exitCode === null) {
      const s = server;
      await new Promise((r) => {
        s.once('exit', r);
        s.kill('SIGKILL');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const a = await startHarness({ nats: [`nats://127.0.0.1:${port}`], hostId: 'late', generic: { node: 1, python: 0 } });
  t.teardown(() => a.stop());
  const h = await health(a);
  t.is(h.status, 'not ready');
  t.false(h.cluster?.broker.connected);
  t.truthy(h.cluster?.broker.error);
  const refused = await a.client.request('PUT', '/v1/functions/echo', { runtime: 'node', handler: 'probe.echo', code: 'AA==' });
  t.is(refused.status, 503, JSON.stringify(refused.body));

  const startServer = () => {
    server = spawn(bin!, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  };
  startServer();
  await waitFor('ready once the broker is up', async () => ((await health(a)).status === 'ok' ? true : undefined));
  await a.deploy('echo', fixture('probe-node'), 'node', 'probe.echo');
  t.deepEqual((await a.invoke<{ event: unknown }>('echo', { k: 1 })).result.event, { k: 1 });

  // The broker goes away: the function and its code are cached here, so it still runs.
  await new Promise((r) => {
    server!.once('exit', r);
    server!.kill('SIGKILL');
  });
  await waitFor('not ready without the broker', async () => ((await health(a)).status === 'not ready' ? true : undefined));
  const r: InvokeReply<{ event: unknown }> = await a.invoke('echo', { k: 2 });
  t.deepEqual(r.result.event, { k: 2 });
  const deploy = await a.client.request('DELETE', '/v1/functions/echo');
  t.is(deploy.status, 503, 'a change needs the broker');
  const submit = await a.client.request('POST', '/v1/functions/echo/events', { k: 3 });
  t.is(submit.status, 503, 'an async submit needs the shared queue');
  t.truthy(submit.headers['retry-after']);
  startServer();
  await waitFor('ready again', async () => ((await health(a)).status === 'ok' ? true : undefined));
  const { id } = await a.client.call<{ id: string }>('POST', '/v1/functions/echo/events', { k: 4 });
  await waitFor('the event runs', async () => ((await a.client.call<{ status: string }>('GET', `/v1/events/${id}`)).status === 'succeeded' ? true : undefined));
  t.is((await a.client.request('DELETE', '/v1/functions/echo')).status, 204);
});

it('a replica count the brokers cannot hold stops the daemon at start with the reason', async (t) => {
  const single = await startNatsCluster({ nodes: 1 });
  t.teardown(() => single.stop());
  const one = await t.throwsAsync(startHarness({ nats: single.urls, hostId: 'r', natsReplicas: 3 }));
  t.regex(one?.message ?? '', /natsReplicas 3 needs a JetStream cluster of at least 3 brokers.*not in a cluster: set natsReplicas to 1/);
  const three = await startNatsCluster({ nodes: 3 });
  t.teardown(() => three.stop());
  const five = await t.throwsAsync(startHarness({ nats: three.urls, hostId: 'r', natsReplicas: 5 }));
  t.regex(five?.message ?? '', /natsReplicas 5: JetStream found fewer than 5 brokers able to hold a replica/);
});
