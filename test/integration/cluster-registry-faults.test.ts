/**
 * The JetStream function registry under a broker fault, with real nats-server processes: kill -9
 * the stream leader of the registry's R3 bucket during a stream of deploys, restart it, and start
 * new hosts right after the restart: each, once started (loaded), lists every acknowledged deploy.
 *
 * Issue 14 showed the cause for the event queue: a host's load goes through a watch whose consumer
 * JetStream may place on the restarted replica, which says it is current before it has applied its
 * last writes. The registry and the network definitions load through the same kind of watch
 * (watched-kv.ts); their load ends on a write of their own.
 */
import test, { type ExecutionContext } from 'ava';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ClusterConnection } from '../../src/cluster/connection.js';
import { JetStreamRegistry } from '../../src/cluster/jetstream-registry.js';
import { HearthError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { def, sha } from '../conformance/function-registry.js';
import { natsServerPath, startNatsCluster } from './nats-cluster.js';

const maybe = natsServerPath() ? test.serial : test.skip;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function host(t: ExecutionContext, urls: string[], hostId: string, bucket: string): Promise<JetStreamRegistry> {
  const conn = new ClusterConnection({ servers: urls, hostId, log: silentLogger() });
  await conn.start();
  const r = new JetStreamRegistry({ connection: conn, log: silentLogger(), bucket, replicas: 3 });
  t.teardown(async () => {
    await r.stop();
    await conn.stop();
  });
  await r.start();
  return r;
}

/** Deploys until acknowledged (a client's retry after 503); false when an unacknowledged try had stored it after all. */
async function deploy(r: JetStreamRegistry, name: string, refusals: { n: number }): Promise<boolean> {
  for (;;) {
    try {
      await r.put(name, def({ codeSha256: sha('a') }));
      return true;
    } catch (e) {
      if (e instanceof HearthError && e.code === 'CONFLICT') return false;
      if (!(e instanceof HearthError && e.code === 'UNAVAILABLE')) throw e;
      refusals.n++;
      await sleep(100);
    }
  }
}

maybe('kill -9 the registry stream leader during deploys, restart it: hosts started right after it list every acknowledged deploy', async (t) => {
  const c = await startNatsCluster({ nodes: 3 });
  t.teardown(() => c.stop());
  const bucket = 'fn-faults';
  const r1 = await host(t, c.urls, 'h1', bucket);
  const nc = await connect({ servers: c.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const leaderName = (await jsm.streams.info(`KV_${bucket}`)).cluster?.leader;
  const victim = Math.max(
    0,
    c.nodes.findIndex((n) => n.name === leaderName),
  );
  const acked: string[] = [];
  const refusals = { n: 0 };
  const stream = (async () => {
    for (let i = 0; i < 300; i++) {
      const names = Array.from({ length: 5 }, (_, j) => `f-${i}-${j}`);
      const ok = await Promise.all(names.map((n) => deploy(r1, n, refusals)));
      acked.push(...names.filter((_, j) => ok[j]));
    }
  })();
  while (acked.length < 1000) await sleep(5);
  await c.kill(victim);
  await stream;
  t.log(`${acked.length} deploys acknowledged, ${refusals.n} refused with 503 and retried during the election`);
  await c.restart(victim);
  const until = Date.now() + 30_000;
  for (;;) {
    const info = await jsm.streams.info(`KV_${bucket}`).catch(() => undefined);
    const names = [info?.cluster?.leader, ...(info?.cluster?.replicas ?? []).filter((r) => r.current).map((r) => r.name)];
    if (names.includes(c.nodes[victim].name)) break;
    if (Date.now() > until) return t.fail('the restarted broker did not become a current replica within 30 s');
    await sleep(50);
  }
  // Hosts started at once right after the restart: in most runs a watch lands on the restarted replica.
  const hosts = await Promise.all(['h2', 'h3', 'h4'].map((id) => host(t, c.urls, id, bucket)));
  for (const [i, h] of hosts.entries()) {
    const listed = new Set((await h.list()).map((r) => r.name));
    const missing = acked.filter((n) => !listed.has(n));
    t.deepEqual(missing.slice(0, 10), [], `new host ${i + 2} lists every acknowledged deploy once started (${missing.length} of ${acked.length} missing)`);
  }
});
