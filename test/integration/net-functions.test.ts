/**
 * Private networks through the API, end to end: the test builds its own "private network" (a
 * namespace with a bridge and TCP servers), creates Hearth networks attached to it, deploys
 * functions on them and proves who can reach what. Traffic goes only to addresses inside
 * namespaces this test made. Root only.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, isRoot, startHarness, type Harness } from './daemon-harness.js';
import { inNs, ip, startServer } from './private-net.js';

const reason = !isRoot ? 'needs root (network namespaces)' : !existsSync('/usr/sbin/nft') ? 'needs nft (scripts/install.sh installs nftables)' : undefined;
const it = reason ? test.skip : test.serial;
if (reason) test(`network function tests skipped: ${reason}`, (t) => t.pass());

const rand = randomBytes(3).toString('hex');
const nsA = `hearth-t-${rand}a`;
const nsB = `hearth-t-${rand}b`;
const servers: ChildProcess[] = [];
let h: Harness;

test.before(async () => {
  if (reason) return;
  ip('netns', 'add', nsA);
  ip('netns', 'add', nsB);
  for (const [ns, br, addr] of [
    [nsA, 'br0', '10.77.0.10/24'],
    [nsB, 'br1', '10.88.0.10/24'],
  ] as const) {
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    inNs(ns, 'ip', 'link', 'add', br, 'type', 'bridge');
    inNs(ns, 'ip', 'link', 'set', br, 'up');
    inNs(ns, 'ip', 'addr', 'add', addr, 'dev', br);
  }
  await startServer(nsA, [7000, 7001], servers);
  await startServer(nsB, [7000], servers);
  h = await startHarness({ generic: { node: 0, python: 1 }, runDir: `/run/hearth-t-${rand}` });
});

test.after.always(async () => {
  if (reason) return;
  const runDir = h?.config.runDir;
  await h?.stop();
  for (const s of servers) s.kill('SIGKILL');
  for (const ns of [nsA, nsB]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not created */
    }
  }
  if (runDir) {
    const left = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(runDir));
    if (left.length) throw new Error(`mounts left under ${runDir}: ${left.length}`);
  }
});

const reach = async (fn: string, host: string, port: number) => (await h.invoke(fn, { host, port })).result as { ok: boolean; reply?: string; error?: string };

it('networks are created through the API; bad specs are refused and change nothing', async (t) => {
  const a = await h.client.request('PUT', '/v1/networks/alpha', {
    attach: { bridge: 'br0', netns: nsA },
    address: '10.77.0.2/24',
    routes: ['10.77.0.0/24'],
    allow: ['10.77.0.10/32:7000'],
  });
  t.is(a.status, 201, JSON.stringify(a.body));
  const b = await h.client.request('PUT', '/v1/networks/beta', { attach: { bridge: 'br1', netns: nsB }, address: '10.88.0.2/24', routes: ['10.88.0.0/24'] });
  t.is(b.status, 201, JSON.stringify(b.body));
  t.is(
    (await h.client.request('PUT', '/v1/networks/alpha', { attach: { bridge: 'br0', netns: nsA }, address: '10.77.0.3/24', routes: ['10.77.0.0/24'] })).status,
    409,
  );
  t.is(
    (await h.client.request('PUT', '/v1/networks/bad', { attach: { bridge: 'nope', netns: nsA }, address: '10.77.0.4/24', routes: ['10.77.0.0/24'] })).status,
    400,
  );
  t.is(
    (await h.client.request('PUT', '/v1/networks/bad', { attach: { bridge: 'br0', netns: nsA }, address: '10.77.0.5/33', routes: ['10.77.0.0/24'] })).status,
    400,
  );
  const list = await h.client.call<{ networks: Array<{ name: string }> }>('GET', '/v1/networks');
  t.deepEqual(list.networks.map((n) => n.name).sort(), ['alpha', 'beta']);
  t.is((await h.client.request('PUT', '/v1/functions/x', { runtime: 'python', handler: 'reach.reach', code: 'AA==', network: 'ghost' })).status, 404);
});

it('a function on the network reaches an allowed server, which sees the gateway address; other ports are refused', async (t) => {
  await h.deploy('reach-a', fixture('net-python'), 'python', 'reach.reach', { network: 'alpha' });
  const ok = await reach('reach-a', '10.77.0.10', 7000);
  t.deepEqual(ok, { ok: true, reply: '10.77.0.2' });
  const port = await reach('reach-a', '10.77.0.10', 7001);
  t.false(port.ok);
});

it('a function on another network, or on none, cannot reach it; nor the host', async (t) => {
  await h.deploy('reach-b', fixture('net-python'), 'python', 'reach.reach', { network: 'beta' });
  await h.deploy('reach-none', fixture('net-python'), 'python', 'reach.reach');
  t.deepEqual(await reach('reach-b', '10.88.0.10', 7000), { ok: true, reply: '10.88.0.2' });
  t.false((await reach('reach-b', '10.77.0.10', 7000)).ok);
  t.false((await reach('reach-none', '10.77.0.10', 7000)).ok);
  t.false((await reach('reach-a', '10.77.0.2', 7000)).ok, 'not the gateway itself');
});

it('a provided function on a network gets its Runtime API on its own 127.0.0.1:9001', async (t) => {
  await h.deploy('custom-a', fixture('provided-python'), 'provided', '', { network: 'alpha' });
  const r = await h.invoke<{ env: Record<string, string>; count: number }>('custom-a', { action: 'echo' });
  t.is(r.error, null, JSON.stringify(r.error));
  t.is(r.result.env['AWS_LAMBDA_RUNTIME_API'], '127.0.0.1:9001');
  t.is((await h.invoke<{ count: number }>('custom-a', { action: 'echo' })).result.count, 2, 'warm on the same bootstrap');
  t.is((await h.client.request('DELETE', '/v1/functions/custom-a')).status, 204);
});

it('a network in use cannot be deleted; once unused it is removed with its namespace', async (t) => {
  t.is((await h.client.request('DELETE', '/v1/networks/beta')).status, 409);
  t.is((await h.client.request('DELETE', '/v1/functions/reach-b')).status, 204);
  const del = await h.client.request('DELETE', '/v1/networks/beta');
  t.is(del.status, 204, JSON.stringify(del.body));
  t.false(readdirSync(join(h.config.runDir, 'netns')).includes('beta'));
  t.is((await h.client.request('DELETE', '/v1/networks/beta')).status, 404);
});
