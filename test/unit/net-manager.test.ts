import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { HearthError, type ErrorCode } from '../../src/errors.js';
import { FakeNetBinding } from '../../src/net/fake-net-binding.js';
import { MemoryNetworkBus, MemoryNetworkDefinitions } from '../../src/net/memory-definitions.js';
import { NetworkManager, type NetworkManagerOptions } from '../../src/net/network-manager.js';

const spec = { attach: { bridge: 'br0' }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'], allow: ['10.77.0.10/32:7000'] };

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function setup(over: Partial<NetworkManagerOptions> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-net-unit-'));
  dirs.push(dir);
  const binding = new FakeNetBinding();
  binding.host.add('br0', 'bridge');
  binding.host.add('eth9', 'veth');
  const rulesets: string[] = [];
  const opts: NetworkManagerOptions = {
    stateDir: path.join(dir, 'state'),
    runDir: path.join(dir, 'run'),
    binding,
    nft: async (_p, text) => void rulesets.push(text),
    ...over,
  };
  const make = () => new NetworkManager(opts);
  return {
    dir,
    binding,
    rulesets,
    make,
    netnsFiles: () => (fs.existsSync(path.join(dir, 'run', 'netns')) ? fs.readdirSync(path.join(dir, 'run', 'netns')) : []),
  };
}

test('create builds a gateway, persists the definition and applies one ruleset', async (t) => {
  const { binding, rulesets, make, dir, netnsFiles } = setup();
  const m = make();
  await m.start();
  const rec = await m.create('vpc', spec);
  t.like(rec, { name: 'vpc', innerSubnet: '100.96.0.0/22', state: 'ready', instances: 0, capacity: 1021 });
  t.deepEqual(rec.spec.allow, ['10.77.0.10/32:7000']);
  t.deepEqual(netnsFiles(), ['vpc']);
  const peer = binding.host.links.get(m.peerName('vpc'));
  t.is(peer?.master, 'br0');
  t.true(peer?.up);
  t.is(rulesets.length, 1);
  t.regex(rulesets[0], /snat ip to 10\.77\.0\.2/);
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'state', 'networks', 'vpc.json'), 'utf8'));
  t.is(saved.innerSubnet, '100.96.0.0/22');
  t.deepEqual(
    m.list().map((r) => r.name),
    ['vpc'],
  );
  await m.stop();
  t.deepEqual(netnsFiles(), []);
  t.false(binding.host.links.has(m.peerName('vpc')));
  binding.sweep();
  t.is(binding.openNamespaces, 0);
});

test('bad input and name conflicts are refused with a reason', async (t) => {
  const { make } = setup();
  const m = make();
  await m.start();
  await m.create('vpc', spec);
  const cases: Array<[string, unknown, ErrorCode, RegExp]> = [
    ['vpc', spec, 'CONFLICT', /already exists/],
    ['other', spec, 'CONFLICT', /already used by network vpc/],
    ['other', { ...spec, address: '10.77.0.3/24', attach: { bridge: 'nobr' } }, 'BAD_REQUEST', /no such interface/],
    ['other', { ...spec, address: '10.77.0.3/24', attach: { bridge: 'eth9' } }, 'BAD_REQUEST', /not a bridge/],
    ['other', { ...spec, address: '10.77.0.3/24', attach: { bridge: 'br0', netns: 'hearth-unit-missing' } }, 'BAD_REQUEST', /no such network namespace/],
    ['Bad_Name', spec, 'BAD_REQUEST', /invalid network name/],
  ];
  for (const [name, s, code, re] of cases) {
    const e = await t.throwsAsync(m.create(name, s as never), { instanceOf: HearthError });
    t.is(e?.code, code, name);
    t.regex(e?.message ?? '', re);
  }
  // One wording for "not found" everywhere (as the registry's: no function named "x").
  for (const e of [
    await t.throwsAsync(m.delete('nope'), { instanceOf: HearthError }),
    await t.throwsAsync(m.prepareInstanceNetns('nope'), { instanceOf: HearthError }),
  ]) {
    t.is(e?.code, 'NETWORK_NOT_FOUND');
    t.is(e?.message, 'no network named "nope"');
  }
  await m.stop();
});

for (const [what, inject] of [
  ['nft fails', 'nft'],
  ['adding the outer address fails', 'addAddress'],
  ['the outer veth cannot be made', 'createVeth'],
] as const) {
  test(`nothing is left when ${what}`, async (t) => {
    let nftFails = inject === 'nft';
    const env = setup({
      nft: async () => {
        if (nftFails) {
          nftFails = false;
          throw new Error('nft: syntax error');
        }
      },
    });
    const m = env.make();
    await m.start();
    if (inject !== 'nft') env.binding.failNext = { method: inject, code: 'EPERM' };
    const e = await t.throwsAsync(m.create('vpc', spec), { instanceOf: HearthError });
    t.is(e?.code, 'INTERNAL');
    t.deepEqual(env.netnsFiles(), []);
    t.deepEqual([...env.binding.host.links.keys()].sort(), ['br0', 'eth9', 'lo']);
    t.deepEqual(env.binding.mounts.size, 0);
    env.binding.sweep();
    t.is(env.binding.openNamespaces, 0);
    t.false(fs.existsSync(path.join(env.dir, 'state', 'networks', 'vpc.json')));
    t.deepEqual(m.list(), []);
    // The name is free again.
    await m.create('vpc', spec);
    await m.stop();
  });
}

test('instance namespaces: /32 from the inner subnet, counted, released, delete waits for them', async (t) => {
  const { binding, make } = setup();
  const m = make();
  await m.start();
  await m.create('vpc', spec);
  const a = await m.prepareInstanceNetns('vpc');
  const b = await m.prepareInstanceNetns('vpc');
  t.is(a.address, '100.96.0.2/32');
  t.is(b.address, '100.96.0.3/32');
  t.is(m.get('vpc')?.instances, 2);
  t.deepEqual(binding.ns(a.netnsFd).addresses, [{ link: 'eth0', address: '100.96.0.2', prefixLen: 32 }]);
  t.is((await t.throwsAsync(m.delete('vpc'), { instanceOf: HearthError }))?.code, 'CONFLICT');
  await a.release();
  await a.release();
  t.is(m.get('vpc')?.instances, 1);
  await m.delete('vpc', { force: true });
  t.is(m.get('vpc'), undefined);
  binding.sweep();
  t.is(binding.openNamespaces, 0);
  await m.stop();
});

test('a small inner subnet runs out with UNAVAILABLE and recovers on release', async (t) => {
  const { make } = setup({ innerPool: { pool: '100.96.0.0/12', subnetLen: 29 } });
  const m = make();
  await m.start();
  await m.create('vpc', spec);
  const leases = [];
  for (let i = 0; i < 5; i++) leases.push(await m.prepareInstanceNetns('vpc'));
  t.is((await t.throwsAsync(m.prepareInstanceNetns('vpc'), { instanceOf: HearthError }))?.code, 'UNAVAILABLE');
  await leases[0].release();
  const again = await m.prepareInstanceNetns('vpc');
  t.is(again.address, leases[0].address);
  await m.stop();
});

test('inner subnets avoid host addresses and each other; definitions survive a restart', async (t) => {
  const { binding, make, netnsFiles } = setup();
  binding.host.addresses.push({ link: 'br0', address: '100.96.1.1', prefixLen: 24 });
  const m = make();
  await m.start();
  const one = await m.create('one', spec);
  const two = await m.create('two', { ...spec, address: '10.77.0.3/24' });
  t.is(one.innerSubnet, '100.96.4.0/22');
  t.is(two.innerSubnet, '100.96.8.0/22');
  await m.stop();
  t.deepEqual(netnsFiles(), []);

  const again = make();
  await again.start();
  t.deepEqual(
    again.list().map((r) => [r.name, r.state, r.innerSubnet]),
    [
      ['one', 'ready', '100.96.4.0/22'],
      ['two', 'ready', '100.96.8.0/22'],
    ],
  );
  t.deepEqual(netnsFiles(), ['one', 'two']);
  await again.delete('one');
  await again.stop();
  const third = make();
  await third.start();
  t.deepEqual(
    third.list().map((r) => r.name),
    ['two'],
  );
  await third.stop();
});

test('a network whose bridge vanished comes back failed, and can still be deleted', async (t) => {
  const { binding, make } = setup();
  const m = make();
  await m.start();
  await m.create('vpc', spec);
  await m.stop();
  binding.host.links.delete('br0');
  const again = make();
  await again.start();
  const rec = again.get('vpc');
  t.is(rec?.state, 'failed');
  t.regex(rec?.error ?? '', /no such interface/);
  t.is((await t.throwsAsync(again.prepareInstanceNetns('vpc'), { instanceOf: HearthError }))?.code, 'UNAVAILABLE');
  await again.delete('vpc');
  t.deepEqual(again.list(), []);
  await again.stop();
});

test("a crashed daemon's intact gateway is adopted; one with instance ports left is rebuilt", async (t) => {
  const { binding, make, rulesets } = setup();
  const crashed = make();
  await crashed.start();
  await crashed.create('vpc', spec);
  await crashed.create('busy', { ...spec, address: '10.77.0.3/24' });
  await crashed.prepareInstanceNetns('busy'); // its holder outlives the "crash"
  const vpcPeer = binding.host.links.get(crashed.peerName('vpc'))!.index;
  const busyPeer = binding.host.links.get(crashed.peerName('busy'))!.index;
  // No stop(): the old manager just disappears, its namespaces stay mounted.
  const next = make();
  await next.start();
  t.deepEqual(
    next.list().map((r) => [r.name, r.state]),
    [
      ['busy', 'ready'],
      ['vpc', 'ready'],
    ],
  );
  t.is(binding.host.links.get(crashed.peerName('vpc'))!.index, vpcPeer, 'intact gateway kept');
  t.not(binding.host.links.get(crashed.peerName('busy'))!.index, busyPeer, 'gateway with instance ports rebuilt');
  t.is(rulesets.length, 4); // 2 builds, 1 re-applied, 1 rebuilt
  const inst = await next.prepareInstanceNetns('vpc');
  t.is(inst.address, '100.96.0.2/32');
  await next.stop();
  t.false(binding.host.links.has(crashed.peerName('vpc')));
});

test('a failed instance connection gives its address back', async (t) => {
  const { binding, make } = setup({ innerPool: { pool: '100.96.0.0/12', subnetLen: 29 } });
  const m = make();
  await m.start();
  await m.create('vpc', spec);
  binding.failNext = { method: 'connectInstanceAsync', code: 'ENOMEM' };
  const e = await t.throwsAsync(m.prepareInstanceNetns('vpc'), { instanceOf: HearthError });
  t.is(e?.code, 'INTERNAL');
  t.is(m.get('vpc')?.instances, 0);
  // All 5 addresses of the /29 are still there.
  const got = [];
  for (let i = 0; i < 5; i++) got.push((await m.prepareInstanceNetns('vpc')).address);
  t.deepEqual(got.sort(), ['100.96.0.2/32', '100.96.0.3/32', '100.96.0.4/32', '100.96.0.5/32', '100.96.0.6/32']);
  await m.stop();
});

test('two managers (two daemons) on one host: same network name, distinct outer peers, neither touches the other', async (t) => {
  const { binding, dir } = setup();
  const make = (run: string) =>
    new NetworkManager({ stateDir: path.join(dir, `state-${run}`), runDir: path.join(dir, run), binding, nft: async () => undefined });
  const a = make('run-a');
  const b = make('run-b');
  await a.start();
  await a.create('vpc', spec);
  await b.start(); // its start-up cleanup looks only under its own run dir
  await b.create('vpc', { ...spec, address: '10.77.0.3/24' });
  t.not(a.peerName('vpc'), b.peerName('vpc'));
  t.true(a.peerName('vpc').length <= 15);
  t.true(binding.host.links.has(a.peerName('vpc')));
  t.true(binding.host.links.has(b.peerName('vpc')));
  await b.stop();
  t.true(binding.host.links.has(a.peerName('vpc')), "the other daemon's gateway stays");
  t.is(a.get('vpc')?.state, 'ready');
  await a.stop();
  t.false(binding.host.links.has(a.peerName('vpc')));
});

test('many hosts: a network created on one host is listed on the other at once and gets its gateway there at first use, with that host’s address', async (t) => {
  const { binding, dir } = setup();
  const bus = new MemoryNetworkBus();
  const rulesets: Record<string, string[]> = { a: [], b: [] };
  const make = (host: 'a' | 'b', shared = new MemoryNetworkDefinitions(bus)) => ({
    shared,
    m: new NetworkManager({
      stateDir: path.join(dir, `state-${host}`),
      runDir: path.join(dir, `run-${host}`),
      binding,
      nft: async (_p, text) => void rulesets[host].push(text),
      shared,
      hostId: host,
    }),
  });
  const a = make('a');
  const b = make('b');
  await a.m.start();
  await b.m.start();
  const cspec = { ...spec, hostAddresses: { b: '10.77.0.3/24' } };
  await a.m.create('vpc', cspec);
  await b.shared.idle();
  t.like(b.m.get('vpc'), { name: 'vpc', state: 'pending', instances: 0 });
  t.false(binding.host.links.has(b.m.peerName('vpc')), 'no gateway on b before a function needs one');
  t.is((await b.m.create('vpc', spec).catch((e: HearthError) => e.code)) as ErrorCode, 'CONFLICT');
  const inst = await b.m.prepareInstanceNetns('vpc');
  t.like(b.m.get('vpc'), { state: 'ready', instances: 1 });
  t.regex(rulesets.b.at(-1) ?? '', /snat ip to 10\.77\.0\.3/, "b's gateway leaves with b's own address");
  t.regex(rulesets.a.at(-1) ?? '', /snat ip to 10\.77\.0\.2/);
  t.true(fs.existsSync(path.join(dir, 'state-b', 'networks', 'vpc.json')), 'b caches the definition and its inner subnet');

  // b restarts: its cached gateway is rebuilt, the definition still comes from the cluster.
  await inst.release();
  await b.m.stop();
  const b2 = make('b');
  await b2.m.start();
  t.is(b2.m.get('vpc')?.state, 'ready');

  // A delete on a is heard on b: b's gateway goes, its cache too.
  await a.m.delete('vpc');
  await b2.shared.idle();
  t.is(b2.m.get('vpc'), undefined);
  t.false(binding.host.links.has(b2.m.peerName('vpc')));
  t.false(fs.existsSync(path.join(dir, 'state-b', 'networks', 'vpc.json')));

  // A network deleted in the cluster while b was down is gone from b when it starts again.
  await a.m.create('gone', spec);
  const b3shared = new MemoryNetworkDefinitions(bus);
  await b2.m.stop();
  await a.m.delete('gone');
  const b3 = make('b', b3shared);
  await b3.m.start();
  t.deepEqual(b3.m.list(), []);
  // The broker away: creates are refused and change nothing.
  b3shared.reachable = false;
  t.is((await b3.m.create('late', spec).catch((e: HearthError) => e.code)) as ErrorCode, 'UNAVAILABLE');
  t.is(b3.m.get('late'), undefined);
  t.false(fs.existsSync(path.join(dir, 'state-b', 'networks', 'late.json')));
  t.false(binding.host.links.has(b3.m.peerName('late')));
  await b3.m.stop();
  await a.m.stop();
});

test('many hosts: a cluster network whose bridge is missing on this host fails here at first use, with the reason, and is retried', async (t) => {
  const { binding, dir } = setup();
  const bus = new MemoryNetworkBus();
  const make = (host: string) =>
    new NetworkManager({
      stateDir: path.join(dir, `s-${host}`),
      runDir: path.join(dir, `r-${host}`),
      binding,
      nft: async () => undefined,
      shared: new MemoryNetworkDefinitions(bus),
      hostId: host,
    });
  const a = make('a');
  const b = make('b');
  await a.start();
  await b.start();
  binding.host.add('br7', 'bridge');
  await a.create('far', { ...spec, attach: { bridge: 'br7' }, hostAddresses: { b: '10.77.0.3/24' } });
  binding.host.links.delete('br7');
  await new Promise((r) => setTimeout(r, 10));
  const e = await t.throwsAsync(b.prepareInstanceNetns('far'));
  t.is((e as HearthError).code, 'UNAVAILABLE');
  t.like(b.get('far'), { state: 'failed' });
  t.regex(b.get('far')?.error ?? '', /br7/);
  binding.host.add('br7', 'bridge');
  const inst = await b.prepareInstanceNetns('far');
  t.is(b.get('far')?.state, 'ready');
  await inst.release();
  await b.stop();
  await a.stop();
});
