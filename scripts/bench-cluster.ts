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
 * largest of the other hosts). Root only (real sandboxes).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { DaemonProcess, repoRoot, type InvokeReply } from './bench/daemon-process.js';
import { msSince, sleep, summarize, type Summary } from './bench/stats.js';
import { findTool } from '../src/host-tools.js';
import { freePort } from './bench/free-port.js';

const { values } = parseArgs({ options: { n: { type: 'string' }, deploys: { type: 'string' } } });
const N = Number(values.n ?? 300);
const DEPLOYS = Number(values.deploys ?? 20);

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
    const hosts: DaemonProcess[] = [];
    const fixture = join(repoRoot, 'test', 'integration', 'fixtures', 'probe-node');
    const rows: string[] = [];
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
      if (hosts.length === 1) await a.deploy('echo', fixture, 'node', 'probe.echo');
      await a.client.call('POST', '/v1/functions/echo/invoke', {});
      // Others must know a's warm instance before their invokes can be routed to it.
      await waitFor('a warm instance seen by all', async () =>
        (
          await Promise.all(
            hosts.map((h) => h.client.call<{ cluster: { hosts: { hostId: string; idleWarm: Record<string, number> }[] } }>('GET', '/v1/health')),
          )
        ).every((x) => x.cluster.hosts.some((h) => h.hostId === 'a' && (h.idleWarm['echo'] ?? 0) > 0)),
      );
      const local: number[] = [];
      const remote: number[] = [];
      let remoteOnA = 0;
      const aInstance = (await a.client.call<InvokeReply>('POST', '/v1/functions/echo/invoke', {})).instance;
      for (let i = 0; i < N + 20; i++) {
        cleanup.check();
        let t0 = process.hrtime.bigint();
        await a.client.call('POST', '/v1/functions/echo/invoke', { i });
        if (i >= 20) local.push(msSince(t0));
        if (hosts.length > 1) {
          const via = hosts[1 + (i % (hosts.length - 1))];
          t0 = process.hrtime.bigint();
          const r = await via.client.call<InvokeReply>('POST', '/v1/functions/echo/invoke', { i });
          if (i >= 20) remote.push(msSince(t0));
          if (r.instance === aInstance) remoteOnA++;
        }
      }
      const ls = summarize(local);
      rows.push(`| ${hosts.length} | local warm (a → a) | ${fmt(ls)} | ${ls.n} |`);
      if (remote.length) {
        const rs = summarize(remote);
        rows.push(`| ${hosts.length} | remote warm (${hosts.length === 2 ? 'b' : 'b, c'} → a) | ${fmt(rs)} | ${rs.n} (${remoteOnA} in a's warm instance) |`);
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
    }
    process.stdout.write(
      [
        `Many hosts on loopback, one nats-server 2.9 (JetStream R1), ${N} invokes per row, node echo handler, ms:`,
        '',
        '| hosts | measure | median | p99 | n |',
        '| --- | --- | --- | --- | --- |',
        ...rows,
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
