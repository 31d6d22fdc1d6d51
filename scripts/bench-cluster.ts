/**
 * Many hosts on loopback: the cost of routing a sync invoke to the host with the warm instance, and
 * how long a deploy takes to be visible on the other hosts, with 1, 2 and 3 Hearth hosts (daemons
 * as child processes, each its own socket and state dir) on one nats-server with JetStream.
 *
 *   flock /tmp/hearth-bench.lock node dist/scripts/bench-cluster.js [--n 300] [--deploys 20]
 *
 * Per host count: "local warm" invokes host a's warm instance through a's socket (the baseline);
 * b and c keep no generic instance, so their invokes are always routed to a;
 * "remote warm" invokes it through another host's socket, which routes it to a over NATS
 * request/reply; the two are interleaved so they share the machine's noise. "deploy visible" is
 * from a's answer to a deploy until another host's API shows the new definition (polled; the
 * largest of the other hosts). "async accepted" is how many events per second the hosts' APIs
 * accept (202) with submits spread over every host, single (`--inflight` in flight) and in batches
 * of 100; the same load on a one-host daemon on SQLite (no broker), measured in the same run just
 * before, is the baseline. The events run as they come (a node echo), on every host.
 * Root only (real sandboxes).
 *
 *   flock /tmp/hearth-bench.lock node dist/scripts/bench-cluster.js --n 1000 --events 2000 --batches 30
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { acceptBatches, acceptSingles, load } from './bench/event-submits.js';
import { DaemonProcess, repoRoot, type InvokeReply } from './bench/daemon-process.js';
import { msSince, sleep, summarize, type Summary } from './bench/stats.js';
import type { ControlClient } from '../src/control/client.js';
import { findTool } from '../src/host-tools.js';
import { freePort } from './bench/free-port.js';

const { values } = parseArgs({
  options: { n: { type: 'string' }, deploys: { type: 'string' }, events: { type: 'string' }, batches: { type: 'string' }, inflight: { type: 'string' } },
});
const N = Number(values.n ?? 300);
const DEPLOYS = Number(values.deploys ?? 20);
const EVENTS = Number(values.events ?? 2000);
const BATCHES = Number(values.batches ?? 30);
const INFLIGHT = Number(values.inflight ?? 32);

async function natsRoundTrip(url: string, n: number): Promise<Summary> {
  const { connect } = await import('@nats-io/transport-node');
  const server = await connect({ servers: url });
  const client = await connect({ servers: url });
  try {
    server.subscribe('bench.echo', { callback: (_e, m) => void m.respond(m.data) });
    await server.flush();
    const payload = new Uint8Array(200);
    const samples: number[] = [];
    for (let i = 0; i < n + 20; i++) {
      const t0 = process.hrtime.bigint();
      await client.request('bench.echo', payload, { timeout: 5000 });
      if (i >= 20) samples.push(msSince(t0));
    }
    return summarize(samples);
  } finally {
    await client.close();
    await server.close();
  }
}

/** Invokes these hosts sent to another host (their routers' counts). */
async function routedCount(hs: DaemonProcess[]): Promise<number> {
  let n = 0;
  for (const h of hs) n += (await h.client.call<{ cluster: { routing: { remote: number } } }>('GET', '/v1/health')).cluster.routing.remote;
  return n;
}

/** Waits until no event waits or runs (as host `c` sees the queue). */
async function drained(c: ControlClient): Promise<void> {
  await waitFor(
    'the queue drained',
    async () => {
      const q = await c.call<{ total: { queued: number; running: number; failed: number } }>('GET', '/v1/queue');
      return q.total.queued + q.total.running + q.total.failed === 0;
    },
    300_000,
    100,
  );
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 30_000, pollMs = 20): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    if (pollMs > 0) await sleep(pollMs);
  }
}

const fmt = (s: Summary): string => `${s.median.toFixed(3)} | ${s.p99.toFixed(3)}`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (real daemons)');
  const bin = findTool('nats-server');
  if (!bin) throw new Error('nats-server is not installed (apt-get install nats-server)');
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const work = mkdtempSync(join(tmpdir(), 'hearth-bench-cluster-'));
  cleanup.add('work dir', () => removeDir(work));
  try {
    const port = await freePort();
    const broker = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(work, 'nats')], { stdio: 'ignore' });
    cleanup.add('nats-server', () => {
      if (broker.exitCode === null) broker.kill('SIGKILL');
    });
    const url = `nats://127.0.0.1:${port}`;
    // The floor of a routed invoke's extra path: one NATS request/reply through the broker (two
    // connections of this process; a routed invoke also wakes host a's process).
    const floor = await natsRoundTrip(url, N);
    const hosts: DaemonProcess[] = [];
    const fixture = join(repoRoot, 'test', 'integration', 'fixtures', 'probe-node');
    const rows: string[] = [];
    const asyncRows: string[] = [];
    // The baseline for async: one host on SQLite (no broker), the same function and load.
    const solo = await DaemonProcess.start(work, { generic: { node: 1, python: 0 }, policy: 'fixed' }, cleanup);
    await waitFor('sqlite host ready', async () => (await solo.client.call<{ status: string }>('GET', '/v1/health')).status === 'ok');
    // Events go to their own function, so that the hosts running them get no instance of echo (which would
    // then run invokes there instead of routing them to a).
    await solo.deploy('ev', fixture, 'node', 'probe.echo');
    for (const id of ['a', 'b', 'c']) {
      // b and c keep no generic instance: their invokes always go to a (a warm instance, or a's generic one).
      const d = await DaemonProcess.start(
        work,
        { generic: { node: id === 'a' ? 1 : 0, python: 0 }, policy: 'fixed', extra: { nats: [url], hostId: id } },
        cleanup,
      );
      hosts.push(d);
      await waitFor(`${id} ready`, async () => (await d.client.call<{ status: string }>('GET', '/v1/health')).status === 'ok');
      await waitFor(`${hosts.length} hosts seen`, async () =>
        (await Promise.all(hosts.map((h) => h.client.call<{ cluster: { hosts: unknown[] } }>('GET', '/v1/health')))).every(
          (x) => x.cluster.hosts.length === hosts.length,
        ),
      );
      const a = hosts[0];
      if (hosts.length === 1) {
        await a.deploy('echo', fixture, 'node', 'probe.echo');
        await a.deploy('ev', fixture, 'node', 'probe.echo');
      }
      await a.client.call('POST', '/v1/functions/echo/invoke', {});
      // Others must know a's warm instance before their invokes can be routed to it.
      await waitFor('a warm instance seen by all', async () =>
        (
          await Promise.all(
            hosts.map((h) => h.client.call<{ cluster: { hosts: { hostId: string; idleWarm: Record<string, number> }[] } }>('GET', '/v1/health')),
          )
        ).every((x) => x.cluster.hosts.some((h) => h.hostId === 'a' && (h.idleWarm['echo'] ?? 0) > 0)),
      );
      const loadBefore = load();
      const local: number[] = [];
      const remote: Array<{ ms: number; instance: string }> = [];
      // a's instances over the row (one may be replaced during it), read between timed calls.
      const onA = new Set<string>();
      const readA = async () => {
        for (const x of (await a.client.call<{ instances: { id: string }[] }>('GET', '/v1/pool')).instances) onA.add(x.id);
      };
      const routedBefore = await routedCount(hosts.slice(1));
      for (let i = 0; i < N + 20; i++) {
        cleanup.check();
        if (i % 10 === 0) await readA();
        let t0 = process.hrtime.bigint();
        await a.client.call('POST', '/v1/functions/echo/invoke', { i });
        if (i >= 20) local.push(msSince(t0));
        if (hosts.length > 1) {
          const via = hosts[1 + (i % (hosts.length - 1))];
          t0 = process.hrtime.bigint();
          const r = await via.client.call<InvokeReply>('POST', '/v1/functions/echo/invoke', { i });
          if (i >= 20) remote.push({ ms: msSince(t0), instance: r.instance });
        }
      }
      const ls = summarize(local);
      rows.push(`| ${hosts.length} | local warm (a → a) | ${fmt(ls)} | ${ls.n} (load ${loadBefore} → ${load()}) |`);
      if (remote.length) {
        // Only the invokes that ran on a count as routed (one that found a warm instance on b or c ran there, unrouted).
        await readA();
        const routed = remote.filter((r) => onA.has(r.instance));
        const rs = summarize(routed.map((r) => r.ms));
        const sent = (await routedCount(hosts.slice(1))) - routedBefore;
        rows.push(
          `| ${hosts.length} | remote warm (${hosts.length === 2 ? 'b' : 'b, c'} → a) | ${fmt(rs)} | ${rs.n} ran on a (of ${remote.length}; ${sent} routed over NATS, with the warm-up) |`,
        );
        rows.push(`| ${hosts.length} | routing overhead (remote − local) | ${(rs.median - ls.median).toFixed(3)} | ${(rs.p99 - ls.p99).toFixed(3)} | |`);
        // Deploy visibility.
        const vis: number[] = [];
        for (let k = 0; k < DEPLOYS; k++) {
          const tag = `${hosts.length}-${k}`;
          await a.deploy('vis', fixture, 'node', 'probe.echo', { env: { V: tag } });
          const t0 = process.hrtime.bigint();
          await Promise.all(
            hosts.slice(1).map((h) =>
              waitFor(
                'deploy visible',
                async () => {
                  const r = await h.client.request('GET', '/v1/functions/vis');
                  return r.status === 200 && (r.body as { env: Record<string, string> }).env['V'] === tag;
                },
                10_000,
                0,
              ),
            ),
          );
          vis.push(msSince(t0));
        }
        const vs = summarize(vis);
        rows.push(`| ${hosts.length} | deploy visible on every other host | ${fmt(vs)} | ${vs.n} |`);
      }
      // Async events accepted per second: the SQLite host, then the cluster, with the same load.
      const clients = hosts.map((h) => h.client);
      const asyncLoad = load();
      await drained(solo.client);
      const sqliteSingles = await acceptSingles([solo.client], EVENTS, INFLIGHT);
      await drained(solo.client);
      const clusterSingles = await acceptSingles(clients, EVENTS, INFLIGHT);
      await drained(a.client);
      const sqliteBatches = await acceptBatches([solo.client], BATCHES);
      await drained(solo.client);
      const clusterBatches = await acceptBatches(clients, BATCHES);
      await drained(a.client);
      asyncRows.push(
        `| ${hosts.length} | ${sqliteSingles.toFixed(0)} | ${clusterSingles.toFixed(0)} | ${sqliteBatches.toFixed(0)} | ${clusterBatches.toFixed(0)} | ${asyncLoad} → ${load()} |`,
      );
    }
    process.stdout.write(
      [
        `Many hosts on loopback, one nats-server 2.9 (JetStream R1), ${N} invokes per row, node echo handler, ms:`,
        '',
        '| hosts | measure | median | p99 | n |',
        '| --- | --- | --- | --- | --- |',
        `| - | NATS request/reply through the broker, 200-byte payload (the floor of routing) | ${fmt(floor)} | ${floor.n} |`,
        ...rows,
        '',
        `Async events accepted per second through the API (202), submits spread over the hosts; SQLite: one host without a broker, same load, measured just before in the same run; single: ${EVENTS} submits, ${INFLIGHT} in flight; batches: ${BATCHES} of 100, 4 in flight:`,
        '',
        '| hosts | SQLite single | JetStream single | SQLite batches | JetStream batches | load average (1, 5, 15 min) before → after |',
        '| --- | ---: | ---: | ---: | ---: | --- |',
        ...asyncRows,
        '',
      ].join('\n'),
    );
  } finally {
    await cleanup.runAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-cluster: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
