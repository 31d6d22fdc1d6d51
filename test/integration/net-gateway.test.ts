/**
 * Gateways against a private network the test builds itself: namespaces hearth-t-<rand>{a,b} with
 * a bridge and TCP servers. Traffic goes only to addresses inside namespaces this test made; the
 * host's interfaces, routes and firewall are never touched. Root only.
 */
import test from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { HearthError, type ErrorCode } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { loadNetProbes, type NetProbes } from '../../src/native/net-probes.js';
import { loadNetBinding, type NetBinding } from '../../src/net/native-binding.js';
import { NetworkManager, outerPeerName, type InstanceNetns } from '../../src/net/network-manager.js';
import { inNs, ip, PATH_ENV, startServer } from './private-net.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (!fs.existsSync('/usr/sbin/nft')) return 'needs nft (apt-get install nftables)';
  try {
    loadNetBinding();
    loadNetProbes();
  } catch (e) {
    return `hearth_net.node not built: ${(e as Error).message.split('\n')[0]}`;
  }
  return undefined;
}
const reason = skipReason();
const serial = reason ? test.skip : test.serial;
if (reason) {
  test('network gateway integration', (t) => {
    t.log(`skipped: ${reason}`);
    t.pass();
  });
}

const rand = crypto.randomBytes(3).toString('hex');
const nsA = `hearth-t-${rand}a`;
const nsB = `hearth-t-${rand}b`;
const runDir = `/run/hearth-t-${rand}`;
let stateDir = '';
let binding: NetBinding;
let probes: NetProbes;
let manager: NetworkManager | undefined;
const servers: ChildProcess[] = [];
const fds: number[] = [];
const leases: InstanceNetns[] = [];

function linksIn(ns: string): string[] {
  return (JSON.parse(ip('-n', ns, '-j', 'link', 'show')) as Array<{ ifname: string }>).map((l) => l.ifname);
}

function linkIndexIn(ns: string, name: string): number {
  return (JSON.parse(ip('-n', ns, '-j', 'link', 'show', 'dev', name)) as Array<{ ifindex: number }>)[0].ifindex;
}

/** Connects from inside the namespace held by nsFd and returns what the server sends. */
async function request(nsFd: number, addr: string, port: number, timeoutMs = 2000): Promise<string> {
  const fd = probes.socketIn(nsFd, 'tcp');
  try {
    probes.tcpConnect(fd, addr, port, timeoutMs);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  const sock = new net.Socket({ fd, readable: true, writable: true });
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no reply'));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

/** The error code of a connection attempt that must fail. */
async function refusedCode(nsFd: number, addr: string, port: number, timeoutMs = 1500): Promise<string> {
  try {
    await request(nsFd, addr, port, timeoutMs);
  } catch (e) {
    return (e as { code?: string }).code ?? (e as Error).message;
  }
  return 'CONNECTED';
}

/** A TCP listener inside the namespace held by nsFd, on 0.0.0.0:<ephemeral>. */
async function listenIn(nsFd: number): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((c) => c.end('hello'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd: probes.socketIn(nsFd, 'tcp') }, () => resolve());
  });
  return { port: (server.address() as net.AddressInfo).port, server };
}

function netnsFiles(): string[] {
  try {
    return fs.readdirSync(path.join(runDir, 'netns'));
  } catch {
    return [];
  }
}

const alphaSpec = { attach: { bridge: 'br0', netns: nsA }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'], allow: ['10.77.0.10/32:7000'] };
const betaSpec = { attach: { bridge: 'br1', netns: nsB }, address: '10.88.0.2/24', routes: ['10.88.0.0/24'] };

test.before(async () => {
  if (reason) return;
  binding = loadNetBinding();
  probes = loadNetProbes();
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-net-'));
  ip('netns', 'add', nsA);
  ip('netns', 'add', nsB);
  for (const [ns, br, addrs] of [
    [nsA, 'br0', ['10.77.0.10/24', '10.77.0.11/24']],
    [nsB, 'br1', ['10.88.0.10/24']],
  ] as const) {
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    inNs(ns, 'ip', 'link', 'add', br, 'type', 'bridge');
    inNs(ns, 'ip', 'link', 'set', br, 'up');
    for (const a of addrs) inNs(ns, 'ip', 'addr', 'add', a, 'dev', br);
  }
  await startServer(nsA, [7000, 7001], servers);
  await startServer(nsB, [7000], servers);
  manager = new NetworkManager({ stateDir, runDir, log: silentLogger() });
  await manager.start();
  await manager.create('alpha', alphaSpec);
  await manager.create('beta', betaSpec);
});

test.after.always(async () => {
  if (reason) return;
  for (const l of leases) await l.release().catch(() => undefined);
  await manager?.stop().catch(() => undefined);
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
  }
  for (const s of servers) s.kill('SIGKILL');
  for (const ns of [nsA, nsB]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not created */
    }
  }
  // Anything still mounted under our run dir (only after a failure) goes too.
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp?.startsWith(runDir + '/')) execFileSync('umount', ['-l', mp]);
  }
  fs.rmSync(runDir, { recursive: true, force: true });
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

async function prepare(name: string): Promise<InstanceNetns> {
  const l = await manager!.prepareInstanceNetns(name);
  leases.push(l);
  return l;
}

serial('an instance reaches an allowed destination and the server sees the gateway address', async (t) => {
  const inst = await prepare('alpha');
  t.regex(inst.address, /^100\.96\.\d+\.\d+\/32$/);
  t.is(await request(inst.netnsFd, '10.77.0.10', 7000), '10.77.0.2');
  const rec = manager!.get('alpha')!;
  t.is(rec.state, 'ready');
  t.is(rec.instances, 1);
  t.deepEqual(rec.spec.allow, ['10.77.0.10/32:7000']);
  // The gateway holds one nftables table, ours.
  const tables = execFileSync('nsenter', [`--net=${path.join(runDir, 'netns', 'alpha')}`, 'nft', 'list', 'tables'], { env: PATH_ENV, encoding: 'utf8' });
  t.is(tables.trim(), 'table inet hearth');
});

serial('a port or address outside allow is refused', async (t) => {
  const inst = await prepare('alpha');
  // Control: both are served inside the private network.
  const aFd = fs.openSync(`/run/netns/${nsA}`, 'r');
  fds.push(aFd);
  t.is(await request(aFd, '10.77.0.10', 7001), '10.77.0.10');
  t.is(await request(aFd, '10.77.0.11', 7000), '10.77.0.10');
  t.is(await refusedCode(inst.netnsFd, '10.77.0.10', 7001), 'ECONNREFUSED');
  t.is(await refusedCode(inst.netnsFd, '10.77.0.11', 7000), 'ECONNREFUSED');
});

serial('an instance on another network, or on none, cannot reach it', async (t) => {
  const other = await prepare('beta');
  t.is(await request(other.netnsFd, '10.88.0.10', 7000), '10.88.0.2'); // its own network works
  t.not(await refusedCode(other.netnsFd, '10.77.0.10', 7000), 'CONNECTED');
  const bare = binding.createNetns();
  fds.push(bare);
  t.not(await refusedCode(bare, '10.77.0.10', 7000), 'CONNECTED');
});

serial('instances cannot reach each other, the gateway or the host; the private network cannot reach instances', async (t) => {
  const one = await prepare('alpha');
  const two = await prepare('alpha');
  const twoAddr = two.address.split('/')[0];
  const l2 = await listenIn(two.netnsFd);
  try {
    t.is(await request(two.netnsFd, twoAddr, l2.port), 'hello'); // control: the listener answers
    t.not(await refusedCode(one.netnsFd, twoAddr, l2.port), 'CONNECTED');

    // The gateway itself, on both legs.
    const gwPath = path.join(runDir, 'netns', 'alpha');
    const gwFd = fs.openSync(gwPath, 'r');
    fds.push(gwFd);
    const inner = manager!.get('alpha')!.innerSubnet.replace(/\.0\/22$/, '.1');
    const lg = await listenIn(gwFd);
    try {
      t.is(await request(gwFd, inner, lg.port), 'hello'); // control
      t.is(await refusedCode(one.netnsFd, inner, lg.port), 'ECONNREFUSED');
      t.is(await refusedCode(one.netnsFd, '10.77.0.2', lg.port), 'ECONNREFUSED');
    } finally {
      lg.server.close();
    }

    // The host: a listener on all host addresses.
    const host = net.createServer((c) => c.end('host'));
    await new Promise<void>((r) => host.listen(0, '0.0.0.0', () => r()));
    try {
      const port = (host.address() as net.AddressInfo).port;
      for (const a of binding.listAddresses(-1)) t.not(await refusedCode(one.netnsFd, a.address, port, 800), 'CONNECTED', a.address);
    } finally {
      host.close();
    }

    // The private network, even with a route to the inner subnet through the gateway.
    const aFd = fs.openSync(`/run/netns/${nsA}`, 'r');
    fds.push(aFd);
    inNs(nsA, 'ip', 'route', 'add', manager!.get('alpha')!.innerSubnet, 'via', '10.77.0.2');
    t.not(await refusedCode(aFd, twoAddr, l2.port, 800), 'CONNECTED');
  } finally {
    l2.server.close();
  }
});

serial('bad input is refused with a reason and leaves nothing behind', async (t) => {
  const before = { files: netnsFiles(), linksA: linksIn(nsA) };
  const cases: Array<[string, unknown, ErrorCode, RegExp]> = [
    ['gamma', { ...alphaSpec, address: '10.77.0.3/24', attach: { bridge: 'nobr', netns: nsA } }, 'BAD_REQUEST', /no such interface/],
    ['gamma', { ...alphaSpec, address: '10.77.0.3/24', attach: { bridge: 'br0', netns: `${nsA}-missing` } }, 'BAD_REQUEST', /no such network namespace/],
    ['gamma', { ...alphaSpec, address: '10.77.0.10/24' }, 'BAD_REQUEST', /already used in the attach namespace/],
    ['gamma', { ...alphaSpec, routes: ['10.77.0.0/24', '10.77.0.0/25'] }, 'BAD_REQUEST', /overlap/],
    ['gamma', { ...alphaSpec, attach: { bridge: 'lo', netns: nsA }, address: '10.77.0.3/24' }, 'BAD_REQUEST', /not a bridge/],
    ['gamma', alphaSpec, 'CONFLICT', /already used by network alpha/],
    ['alpha', { ...alphaSpec, address: '10.77.0.3/24' }, 'CONFLICT', /already exists/],
  ];
  for (const [name, spec, code, re] of cases) {
    const e = await t.throwsAsync(manager!.create(name, spec as never), { instanceOf: HearthError });
    t.is(e?.code, code, String(re));
    t.regex(e?.message ?? '', re);
  }
  t.deepEqual(netnsFiles(), before.files);
  t.deepEqual(linksIn(nsA), before.linksA);
  t.false(fs.existsSync(path.join(stateDir, 'networks', 'gamma.json')));
  t.is((await t.throwsAsync(manager!.delete('nope'), { instanceOf: HearthError }))?.code, 'NETWORK_NOT_FOUND');
  t.is((await t.throwsAsync(manager!.prepareInstanceNetns('nope'), { instanceOf: HearthError }))?.code, 'NETWORK_NOT_FOUND');
});

serial('delete refuses while instances are out, then removes the gateway and its outer leg', async (t) => {
  await manager!.create('delta', { attach: { bridge: 'br0', netns: nsA }, address: '10.77.0.4/24', routes: ['10.77.0.0/24'] });
  t.true(linksIn(nsA).includes(outerPeerName('delta', runDir)));
  const inst = await manager!.prepareInstanceNetns('delta');
  t.is(await request(inst.netnsFd, '10.77.0.11', 7001), '10.77.0.4');
  t.is((await t.throwsAsync(manager!.delete('delta'), { instanceOf: HearthError }))?.code, 'CONFLICT');
  await inst.release();
  await inst.release(); // idempotent
  await manager!.delete('delta');
  t.false(linksIn(nsA).includes(outerPeerName('delta', runDir)));
  t.false(netnsFiles().includes('delta'));
  t.false(fs.existsSync(path.join(stateDir, 'networks', 'delta.json')));
  t.is(manager!.get('delta'), undefined);
});

serial('definitions survive a restart; a crashed daemon leaves nothing the next start does not clean', async (t) => {
  for (const l of leases.splice(0)) await l.release();
  await manager!.stop();
  t.deepEqual(netnsFiles(), []);
  t.false(linksIn(nsA).some((n) => n.startsWith('hg')));
  t.false(linksIn(nsB).some((n) => n.startsWith('hg')));

  // A "daemon" that dies with SIGKILL while holding a gateway and an instance.
  const distNet = path.resolve(__dirname, '../../src/net/network-manager.js');
  const src = `const {NetworkManager}=require(${JSON.stringify(distNet)});(async()=>{const m=new NetworkManager({stateDir:${JSON.stringify(stateDir)},runDir:${JSON.stringify(runDir)}});await m.start();await m.create('crash',${JSON.stringify({ ...betaSpec, address: '10.88.0.3/24' })});await m.create('calm',${JSON.stringify({ ...betaSpec, address: '10.88.0.4/24' })});await m.prepareInstanceNetns('crash');console.log('ready');setInterval(()=>{},1e6)})().catch(e=>{console.error(e);process.exit(1)})`;
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`crash daemon exited ${c}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.deepEqual(netnsFiles().sort(), ['alpha', 'beta', 'calm', 'crash']); // the bind mounts outlive the process
  const calmPeer = linkIndexIn(nsB, outerPeerName('calm', runDir));

  manager = new NetworkManager({ stateDir, runDir, log: silentLogger() });
  await manager.start();
  t.deepEqual(
    manager.list().map((r) => [r.name, r.state]),
    [
      ['alpha', 'ready'],
      ['beta', 'ready'],
      ['calm', 'ready'],
      ['crash', 'ready'],
    ],
  );
  // The intact gateway was taken over, not rebuilt: its outer leg is the same link.
  t.is(linkIndexIn(nsB, outerPeerName('calm', runDir)), calmPeer);
  const inst = await prepare('crash');
  t.is(await request(inst.netnsFd, '10.88.0.10', 7000), '10.88.0.3');
  const calm = await prepare('calm');
  t.is(await request(calm.netnsFd, '10.88.0.10', 7000), '10.88.0.4');
  await calm.release();
  await manager.delete('calm');
  const a = await prepare('alpha');
  t.is(await request(a.netnsFd, '10.77.0.10', 7000), '10.77.0.2');
  await manager.delete('crash', { force: true });
  t.false(linksIn(nsB).includes(outerPeerName('crash', runDir)));
  t.false(linksIn(nsB).includes(outerPeerName('calm', runDir)));
});

serial('after delete and stop nothing is left', async (t) => {
  await manager!.delete('alpha', { force: true });
  await manager!.delete('beta');
  await manager!.stop();
  t.deepEqual(netnsFiles(), []);
  t.false(linksIn(nsA).some((n) => n.startsWith('hg')));
  t.false(linksIn(nsB).some((n) => n.startsWith('hg')));
  t.deepEqual(fs.readdirSync(path.join(stateDir, 'networks')), []);
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  t.false(mounts.includes(runDir));
});
