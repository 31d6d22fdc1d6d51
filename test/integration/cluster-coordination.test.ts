/**
 * Hosts and leases on a real nats-server: heartbeats make every host see the others with their
 * load, a host that stops leaves at once and one that goes silent is dropped after deadAfterMs; the
 * scheduler lease has exactly one holder, and another host takes it when the holder goes away; a
 * scheduler that does not hold the lease fires nothing.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ClusterConnection } from '../../src/cluster/connection.js';
import { HostDirectory, type HostLoad } from '../../src/cluster/hosts.js';
import { ClusterLease } from '../../src/cluster/lease.js';
import { silentLogger } from '../../src/log.js';
import { natsServerPath, startNatsCluster, type NatsCluster } from './nats-cluster.js';

const bin = natsServerPath();
const it = bin ? test.serial : test.skip;
if (!bin) test('coordination tests need nats-server (apt-get install nats-server)', (t) => t.pass());

let cluster: Promise<NatsCluster> | undefined;
const broker = (): Promise<NatsCluster> => (cluster ??= startNatsCluster({ nodes: 1 }));
test.after.always(async () => {
  if (cluster) await (await cluster).stop();
});

async function conn(t: { teardown(fn: () => Promise<void>): void }, hostId: string): Promise<ClusterConnection> {
  const c = new ClusterConnection({ servers: (await broker()).urls, hostId, log: silentLogger() });
  t.teardown(() => c.stop());
  await c.start();
  return c;
}

async function waitFor(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const load = (busy: number): HostLoad => ({ busy, idleWarm: { f: busy }, freeGeneric: { node: 1 }, memoryInUseMb: 0 });

it('hosts see each other with their load; a stopped host leaves, a silent one is dropped', async (t) => {
  const bucket = `hosts-${randomBytes(3).toString('hex')}`;
  const mk = async (id: string, busy: number) => {
    const d = new HostDirectory({ connection: await conn(t, id), load: () => load(busy), log: silentLogger(), bucket, intervalMs: 200, deadAfterMs: 1000 });
    t.teardown(() => d.stop());
    d.start();
    return d;
  };
  const a = await mk('a', 1);
  const b = await mk('b', 2);
  const c = await mk('c', 3);
  await waitFor('a sees three hosts', () => a.hosts().length === 3);
  t.deepEqual(
    a.hosts().map((h) => [h.hostId, h.load.busy]),
    [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ],
  );
  await b.stop();
  await waitFor('b left', () => a.hosts().length === 2);
  // c goes silent (its connection closes without a goodbye): dropped after deadAfterMs.
  const cc = (c as unknown as { opts: { connection: ClusterConnection } }).opts.connection;
  await cc.connection!.close();
  await waitFor('c dropped', () => a.hosts().length === 1);
  t.deepEqual(
    a.hosts().map((h) => h.hostId),
    ['a'],
  );
});

it('the lease has one holder; another host takes it when the holder stops', async (t) => {
  const bucket = `leases-${randomBytes(3).toString('hex')}`;
  const leases: ClusterLease[] = [];
  for (const id of ['a', 'b', 'c']) {
    const l = new ClusterLease({ connection: await conn(t, id), name: 'scheduler', log: silentLogger(), bucket, ttlMs: 1200 });
    t.teardown(() => l.stop());
    l.start();
    leases.push(l);
  }
  await waitFor('a holder', () => leases.some((l) => l.held()));
  for (let i = 0; i < 20; i++) {
    t.true(leases.filter((l) => l.held()).length <= 1, 'never two holders');
    await new Promise((r) => setTimeout(r, 50));
  }
  const holder = leases.find((l) => l.held())!;
  await holder.stop();
  await waitFor('another holder', () => leases.some((l) => l !== holder && l.held()));
  t.is(leases.filter((l) => l.held()).length, 1);
});
