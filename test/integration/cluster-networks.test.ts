/**
 * Private networks on a Hearth cluster: two daemons (hosts a and b, each its own socket, state
 * dir, runtime dir and cgroup) joined to a real nats-server. A network created on a is listed on
 * b; a function on it deployed on a runs on b through b's own gateway (built there at first use,
 * leaving with b's address from `hostAddresses`); a delete on b removes the network from both and
 * each host's gateway goes. The "private network" is a namespace this test makes (bridge + TCP
 * server); traffic goes only to addresses inside it. Root, nft and nats-server only.
 */
import test from 'ava';
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, isRoot, startHarness, waitFor, type Harness } from './daemon-harness.js';
import { natsServerPath, startNatsCluster } from './nats-cluster.js';
import { inNs, ip, startServer } from './private-net.js';

const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const reason = !isRoot
  ? 'needs root (network namespaces)'
  : !existsSync('/usr/sbin/nft')
    ? 'needs nft (scripts/install.sh installs nftables)'
    : !natsServerPath()
      ? 'needs nats-server (apt-get install nats-server)'
      : undefined;
const it = reason ? test.skip : test.serial;
if (reason) test(`cluster network tests skipped: ${reason}`, (t) => t.pass());

interface NetView {
  name: string;
  state: string;
  instances: number;
  spec: { address: string; hostAddresses?: Record<string, string> };
}
const networks = async (h: Harness) => (await h.client.call<{ networks: NetView[] }>('GET', '/v1/networks')).networks;
const gatewaysOf = (h: Harness) => (existsSync(join(h.config.runDir, 'netns')) ? readdirSync(join(h.config.runDir, 'netns')) : []);

it('a network created on one host is listed on the other; its function runs on either host through that host’s gateway; a delete reaches both', async (t) => {
  const rand = randomBytes(3).toString('hex');
  const ns = `hearth-t-${rand}c`;
  const servers: ChildProcess[] = [];
  const cluster = await startNatsCluster({ nodes: 1 });
  const hosts: Harness[] = [];
  t.teardown(async () => {
    const runDirs = hosts.map((h) => h.config.runDir);
    for (const h of hosts) await h.stop();
    await cluster.stop();
    for (const s of servers) s.kill('SIGKILL');
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not created */
    }
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    for (const d of runDirs) if (mounts.includes(d)) throw new Error(`mounts left under ${d}`);
  });
  ip('netns', 'add', ns);
  inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  inNs(ns, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  inNs(ns, 'ip', 'link', 'set', 'br0', 'up');
  inNs(ns, 'ip', 'addr', 'add', '10.77.0.10/24', 'dev', 'br0');
  await startServer(ns, [7000, 7001], servers);

  for (const id of ['a', 'b']) {
    hosts.push(await startHarness({ nats: cluster.urls, hostId: id, generic: { node: 0, python: 0 }, runDir: `/run/hearth-t-${rand}${id}` }));
  }
  const [a, b] = hosts;
  await waitFor('both ready', async () => {
    const s = await Promise.all(hosts.map((h) => h.client.call<{ status: string }>('GET', '/v1/health')));
    return s.every((x) => x.status === 'ok') ? true : undefined;
  });

  const body = {
    attach: { bridge: 'br0', netns: ns },
    address: '10.77.0.2/24',
    routes: ['10.77.0.0/24'],
    allow: ['10.77.0.10/32:7000'],
    hostAddresses: { b: '10.77.0.3/24' },
  };
  // Created with the CLI on a (`--host-address` fills hostAddresses).
  // (Asynchronously: the daemon answering it runs in this process.)
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [
        ...[MAIN, 'network', 'create', 'vpc', '--bridge', 'br0', '--netns', ns, '--address', '10.77.0.2/24', '--route', '10.77.0.0/24'],
        ...['--allow', '10.77.0.10/32:7000', '--host-address', 'b=10.77.0.3/24', '--socket', a.config.socket],
      ],
      (err, stdout, stderr) => (err ? reject(new Error(`hearth network create: ${err.message} ${stderr}`)) : resolve(stdout)),
    ),
  );
  t.like(JSON.parse(out), { name: 'vpc', spec: body });
  // Listed on b (no gateway there yet: nothing of it has run on b).
  const onB = await waitFor('b lists vpc', async () => (await networks(b)).find((n) => n.name === 'vpc'), 5000);
  t.like(onB, { state: 'pending', spec: { address: '10.77.0.2/24', hostAddresses: { b: '10.77.0.3/24' } } });
  t.deepEqual(gatewaysOf(b), []);
  // The name is taken in the whole cluster; bad input is refused on any host and changes nothing.
  t.is((await b.client.request('PUT', '/v1/networks/vpc', { ...body, address: '10.77.0.5/24', hostAddresses: {} })).status, 409);
  t.is((await b.client.request('PUT', '/v1/networks/bad', { ...body, hostAddresses: { b: '10.78.0.3/24' } })).status, 400);
  t.deepEqual(
    (await networks(a)).map((n) => n.name),
    ['vpc'],
  );

  await a.deploy('reach', fixture('net-python'), 'python', 'reach.reach', { network: 'vpc' });
  await waitFor('b lists reach', async () => ((await b.client.request('GET', '/v1/functions/reach')).status === 200 ? true : undefined), 5000);
  // On each host the function leaves through that host's gateway, with that host's address.
  const viaB = await b.invoke<{ ok: boolean; reply?: string }>('reach', { host: '10.77.0.10', port: 7000 });
  t.deepEqual(viaB.result, { ok: true, reply: '10.77.0.3' });
  const viaA = await a.invoke<{ ok: boolean; reply?: string }>('reach', { host: '10.77.0.10', port: 7000 });
  t.deepEqual(viaA.result, { ok: true, reply: '10.77.0.2' });
  // The rules travel with the definition: a port not allowed is refused on b too.
  t.false((await b.invoke<{ ok: boolean }>('reach', { host: '10.77.0.10', port: 7001 })).result.ok);
  t.is((await networks(b)).find((n) => n.name === 'vpc')?.state, 'ready');
  t.deepEqual(gatewaysOf(b), ['vpc']);

  // A network in use by a function is not deleted from any host; once free, a delete on b reaches a.
  t.is((await b.client.request('DELETE', '/v1/networks/vpc')).status, 409);
  await a.client.call('DELETE', '/v1/functions/reach');
  await waitFor('b forgets reach', async () => ((await b.client.request('GET', '/v1/functions/reach')).status === 404 ? true : undefined), 5000);
  t.is((await b.client.request('DELETE', '/v1/networks/vpc')).status, 204);
  await waitFor('a forgets vpc', async () => ((await networks(a)).length === 0 ? true : undefined), 5000);
  t.deepEqual(await networks(b), []);
  await waitFor("a's gateway is gone", async () => (gatewaysOf(a).length === 0 ? true : undefined), 5000);
  t.deepEqual(gatewaysOf(b), []);
});
