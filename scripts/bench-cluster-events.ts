/**
 * Async events through the real API with the cluster queue at replicas 3, beside the SQLite queue
 * in the same run (issue 14): events accepted per second (202), single submits and batches, and
 * the end-to-end latency of one event, from `POST /v1/functions/F/events` until `GET /v1/events/ID`
 * says succeeded (polled by the client).
 *
 *   flock /tmp/hearth-bench.lock node dist/scripts/bench-cluster-events.js [--rounds 3] [--events 2000] [--batches 30] [--latency 200] [--hosts 1-3]
 *
 * Daemons as child processes (root; real sandboxes): one on SQLite (no broker), and `--hosts`
 * on a 3-broker nats-server cluster on loopback with `natsReplicas: 3` (the event stream's replica
 * count is read back and printed). Each round measures SQLite then the cluster with the same load:
 * single submits (`--events`, 32 in flight, round-robin over the cluster's hosts), batches of 100
 * (`--batches`, 4 in flight); the latency samples alternate one SQLite event and one cluster event,
 * a warm instance idle on each side, so both share the machine's noise. The events run as they
 * come (a node echo), so the acceptance rate includes running them, as in bench-cluster.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { ControlClient } from '../src/control/client.js';
import { startNatsCluster } from '../test/integration/nats-cluster.js';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { acceptBatches, acceptSingles, load } from './bench/event-submits.js';
import { DaemonProcess, repoRoot } from './bench/daemon-process.js';
import { msSince, sleep, summarize } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

/** One event from submit to succeeded, as a client sees it (GET polled about every millisecond). */
async function endToEnd(c: ControlClient, i: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const { id } = await c.call<{ id: string }>('POST', '/v1/functions/ev/events', { i });
  for (;;) {
    const e = await c.call<{ status: string }>('GET', `/v1/events/${id}`);
    if (e.status === 'succeeded') return msSince(t0);
    if (e.status === 'dead') throw new Error(`event ${id} ended dead`);
    await sleep(1);
  }
}

/** Waits until no event waits or runs (as host `c` sees the queue). */
async function drained(c: ControlClient): Promise<void> {
  const end = Date.now() + 300_000;
  for (;;) {
    const q = await c.call<{ total: { queued: number; running: number; failed: number } }>('GET', '/v1/queue');
    if (q.total.queued + q.total.running + q.total.failed === 0) return;
    if (Date.now() > end) throw new Error('the queue did not drain within 300 s');
    await sleep(50);
  }
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const usage = 'usage: node dist/scripts/bench-cluster-events.js [--rounds N] [--events N] [--batches N] [--latency N] [--hosts 1-3]';
  const opts = scriptArgs('bench-cluster-events', usage, { rounds: VALUE, events: VALUE, batches: VALUE, latency: VALUE, hosts: VALUE }, ({ values: v }) => ({
    rounds: numberArg(v.rounds, '--rounds', 3, COUNT),
    events: numberArg(v.events, '--events', 2000, COUNT),
    batches: numberArg(v.batches, '--batches', 30, COUNT),
    latency: numberArg(v.latency, '--latency', 200, COUNT),
    hosts: Math.min(3, numberArg(v.hosts, '--hosts', 1, COUNT)),
  }));
  if (process.getuid?.() !== 0) throw new Error('run as root (real daemons)');
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const work = mkdtempSync(join(tmpdir(), 'hearth-bench-cev-'));
  cleanup.add('work dir', () => removeDir(work));
  try {
    const brokers = await startNatsCluster({ nodes: 3 });
    cleanup.add('nats-servers', () => brokers.stop());
    const fixture = join(repoRoot, 'test', 'integration', 'fixtures', 'probe-node');
    const solo = await DaemonProcess.start(work, { generic: { node: 1, python: 0 }, policy: 'fixed' }, cleanup);
    const hosts: DaemonProcess[] = [];
    for (let i = 0; i < opts.hosts; i++) {
      const extra = { nats: brokers.urls, hostId: `h${i + 1}`, natsReplicas: 3 };
      hosts.push(await DaemonProcess.start(work, { generic: { node: 1, python: 0 }, policy: 'fixed', extra }, cleanup));
    }
    for (const d of [solo, ...hosts]) await waitFor('a host ready', async () => (await d.client.call<{ status: string }>('GET', '/v1/health')).status === 'ok');
    await solo.deploy('ev', fixture, 'node', 'probe.echo');
    await hosts[0].deploy('ev', fixture, 'node', 'probe.echo');
    for (const d of [solo, ...hosts]) {
      await waitFor('ev deployed', async () => (await d.client.request('GET', '/v1/functions/ev')).status === 200);
      await d.client.call('POST', '/v1/functions/ev/invoke', {});
    }
    // The event stream's replica count as the brokers hold it.
    const nc = await connect({ servers: brokers.urls });
    const info = await (await jetstreamManager(nc)).streams.info('KV_hearth-events');
    await nc.close();
    const replicas = info.config.num_replicas;
    const peers = 1 + (info.cluster?.replicas?.length ?? 0);

    const clients = hosts.map((h) => h.client);
    const rounds: Array<{ sqliteSingle: number; jsSingle: number; sqliteBatch: number; jsBatch: number; before: string; after: string }> = [];
    for (let r = 0; r < opts.rounds; r++) {
      cleanup.check();
      const before = load();
      await drained(solo.client);
      const sqliteSingle = await acceptSingles([solo.client], opts.events, 32);
      await drained(hosts[0].client);
      const jsSingle = await acceptSingles(clients, opts.events, 32);
      await drained(solo.client);
      const sqliteBatch = await acceptBatches([solo.client], opts.batches);
      await drained(hosts[0].client);
      const jsBatch = await acceptBatches(clients, opts.batches);
      rounds.push({ sqliteSingle, jsSingle, sqliteBatch, jsBatch, before, after: load() });
    }
    await drained(solo.client);
    await drained(hosts[0].client);
    const latBefore = load();
    const sqliteLat: number[] = [];
    const jsLat: number[] = [];
    for (let i = 0; i < opts.latency + 10; i++) {
      cleanup.check();
      const s = await endToEnd(solo.client, i);
      const j = await endToEnd(clients[i % clients.length], i);
      if (i >= 10) {
        sqliteLat.push(s);
        jsLat.push(j);
      }
      await sleep(5);
    }
    const latAfter = load();
    const sl = summarize(sqliteLat);
    const jl = summarize(jsLat);
    const f0 = (x: number): string => x.toFixed(0);
    const f2 = (x: number): string => x.toFixed(2);
    process.stdout.write(
      [
        `Async events through the API, ${new Date().toISOString()}: SQLite (one host, no broker) and JetStream (${opts.hosts} host(s), 3 brokers, event stream replicas ${replicas} on ${peers} peers).`,
        '',
        `Accepted per second (202); single: ${opts.events} submits, 32 in flight; batches: ${opts.batches} of 100, 4 in flight; per round, SQLite then JetStream:`,
        '',
        '| round | SQLite single | JetStream R3 single | SQLite batches | JetStream R3 batches | load average before → after |',
        '| --- | ---: | ---: | ---: | ---: | --- |',
        ...rounds.map(
          (x, i) => `| ${i + 1} | ${f0(x.sqliteSingle)} | ${f0(x.jsSingle)} | ${f0(x.sqliteBatch)} | ${f0(x.jsBatch)} | ${x.before} → ${x.after} |`,
        ),
        `| median | ${f0(median(rounds.map((x) => x.sqliteSingle)))} | ${f0(median(rounds.map((x) => x.jsSingle)))} | ${f0(median(rounds.map((x) => x.sqliteBatch)))} | ${f0(median(rounds.map((x) => x.jsBatch)))} | |`,
        '',
        `End to end, one event at a time, POST /v1/functions/ev/events until GET /v1/events/ID says succeeded (ms; SQLite and JetStream alternate; load ${latBefore} → ${latAfter}):`,
        '',
        '| queue | p50 | p99 | max | n |',
        '| --- | ---: | ---: | ---: | ---: |',
        `| SQLite | ${f2(sl.median)} | ${f2(sl.p99)} | ${f2(sl.max)} | ${sl.n} |`,
        `| JetStream R3 | ${f2(jl.median)} | ${f2(jl.p99)} | ${f2(jl.max)} | ${jl.n} |`,
        '',
      ].join('\n'),
    );
  } finally {
    await cleanup.runAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-cluster-events: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
