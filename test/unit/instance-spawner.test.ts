/**
 * InstanceSpawner with a fake sandbox and fake networks: an instance on a network starts in a
 * prepared namespace whose lease ends with the process (or with a failed spawn); without networks
 * on this host such a spawn is UNAVAILABLE, and instances without a network still start.
 */
import test from 'ava';
import type net from 'node:net';
import { HearthError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { InstanceSpawner, type InstanceSandbox } from '../../src/net/instance-spawner.js';
import type { SandboxExit as ExitInfo, SandboxProcess } from '../../src/sandbox/types.js';
import type { InstanceSpawnOptions } from '../../src/sandbox/sandbox-driver.js';

const limits = { memoryMb: 128, pids: 64, cpuPercent: 100, tmpMb: 16 };

function fakes(opts: { failSpawn?: boolean } = {}) {
  const spawned: { runtime: string; id: string; opts: InstanceSpawnOptions | undefined; exit: (e: ExitInfo) => void }[] = [];
  const spawn =
    (runtime: string) =>
    async (id: string, _l: unknown, o?: InstanceSpawnOptions): Promise<SandboxProcess> => {
      if (opts.failSpawn) throw new Error('spawn failed');
      let exit!: (e: ExitInfo) => void;
      const exited = new Promise<ExitInfo>((r) => (exit = r));
      spawned.push({ runtime, id, opts: o, exit });
      return { id, pid: 1, socket: undefined as unknown as net.Socket, exited, kill() {}, mountCode() {}, setLimits() {}, setIdentity: () => false };
    };
  const sandbox: InstanceSandbox = { spawnNode: spawn('node'), spawnPython: spawn('python'), spawnProvided: spawn('provided') };
  const leases: { network: string; released: number }[] = [];
  const networks = {
    prepareInstanceNetns: async (network: string) => {
      const lease = { network, released: 0 };
      leases.push(lease);
      return { netnsFd: 40 + leases.length, address: '100.96.0.2/32', release: async () => void lease.released++ };
    },
  };
  return { sandbox, networks, spawned, leases };
}

const log = createLogger('silent');
const settle = () => new Promise((r) => setImmediate(r));

test('without a network: the runtime starts as is, no namespace is prepared', async (t) => {
  const f = fakes();
  const s = new InstanceSpawner({ sandbox: f.sandbox, networks: f.networks, log });
  await s.spawn('python', 'i1', limits, { forRequest: true });
  t.deepEqual(
    f.spawned.map((x) => [x.runtime, x.id, x.opts]),
    [['python', 'i1', { forRequest: true }]],
  );
  t.deepEqual(f.leases, []);
});

test('on a network: starts in the prepared namespace; the lease ends when the process is gone', async (t) => {
  const f = fakes();
  const s = new InstanceSpawner({ sandbox: f.sandbox, networks: f.networks, log });
  await s.spawn('node', 'i2', limits, { network: 'vpc' });
  t.deepEqual(f.spawned[0].opts, { forRequest: false, netnsFd: 41 });
  t.deepEqual(f.leases, [{ network: 'vpc', released: 0 }]);
  f.spawned[0].exit({ code: 0, signal: null, oomKilled: false });
  await settle();
  t.is(f.leases[0].released, 1);
});

test('a failed spawn releases the lease and passes the error on', async (t) => {
  const f = fakes({ failSpawn: true });
  const s = new InstanceSpawner({ sandbox: f.sandbox, networks: f.networks, log });
  await t.throwsAsync(s.spawn('node', 'i3', limits, { network: 'vpc' }), { message: 'spawn failed' });
  t.is(f.leases[0].released, 1);
});

test('networks disabled: a network spawn is UNAVAILABLE naming why; others still start', async (t) => {
  const f = fakes();
  const s = new InstanceSpawner({ sandbox: f.sandbox, networks: f.networks, networksDisabled: 'nft: not found', log });
  const err = await t.throwsAsync(s.spawn('node', 'i4', limits, { network: 'vpc' }), { instanceOf: HearthError });
  t.is(err.code, 'UNAVAILABLE');
  t.regex(err.message, /private networks are unavailable: nft: not found/);
  t.deepEqual(f.leases, []);
  await s.spawn('node', 'i5', limits);
  t.is(f.spawned.length, 1);
});
