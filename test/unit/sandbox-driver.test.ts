/**
 * The sandbox driver against the fake binding and the in-memory cgroup tree: what it asks the
 * addon for, how instances end (exactly once, cgroup removed), failures, crash recovery, stop.
 */
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HearthError } from '../../src/errors.js';
import { FakeBinding, systemError } from '../../src/sandbox/binding.js';
import { MemoryCgroupFs } from '../../src/sandbox/cgroups.js';
import { SandboxDriver, type InstanceLimits } from '../../src/sandbox/sandbox-driver.js';

const ROOT = '/fake/cgroup';
/** Every state dir setup() made: removed after the file's tests, also when one failed early. */
const stateDirs: string[] = [];
test.after.always(() => {
  for (const d of stateDirs) fs.rmSync(d, { recursive: true, force: true });
});
const LIMITS: InstanceLimits = { memoryMb: 128, pids: 32, cpuPercent: 50, tmpMb: 16 };

function setup(version: 1 | 2 = 1, extra: Partial<ConstructorParameters<typeof SandboxDriver>[0]> = {}) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-drv-'));
  stateDirs.push(stateDir);
  const native = new FakeBinding();
  const cgfs = new MemoryCgroupFs(ROOT, version);
  const driver = new SandboxDriver({
    stateDir,
    binding: native,
    cgroupRoot: ROOT,
    cgroupFs: cgfs,
    cgroupName: 'hearth-unit',
    nodeFlags: ['--max-semi-space-size=1'],
    openSocket: () => new net.Socket(),
    ...extra,
  });
  const cleanup = (): void => fs.rmSync(stateDir, { recursive: true, force: true });
  return { stateDir, native, cgfs, driver, cleanup };
}

test('spawnNode asks for a PID-namespace sandbox running the node shim with a clean environment', async (t) => {
  const { native, cgfs, driver, stateDir, cleanup } = setup();
  await driver.start();
  const inst = await driver.spawnNode('n1', LIMITS);
  const p = native.processes.get(inst.pid)!;
  t.deepEqual(p.opts.argv, ['/hearth/native/hearth-init', '/usr/bin/node', '--max-semi-space-size=1', '/hearth/runtimes/node/shim.js']);
  const cold = await driver.spawnNode('n2', LIMITS, { forRequest: true });
  t.deepEqual(native.processes.get(cold.pid)!.opts.argv, [
    '/hearth/native/hearth-init',
    '/usr/bin/node',
    '--max-semi-space-size=1',
    '/hearth/runtimes/node/shim.js',
  ]);
  cold.kill();
  await cold.exited;
  t.deepEqual(p.opts.env, []);
  t.true(p.opts.newPid);
  t.is(p.opts.uid, 65534);
  t.is(p.opts.gid, 65534);
  t.is(p.opts.tmpMb, 16);
  t.is(p.opts.rootDir, path.join(stateDir, 'rootfs'));
  t.deepEqual(
    p.opts.cgroupProcs,
    ['memory', 'pids', 'cpu'].map((h) => `${ROOT}/${h}/hearth-unit/n1/tasks`),
  );
  t.true(native.closed.includes(p.opts.socketFd), 'the child end is closed in the daemon');
  t.true(p.opts.binds.some((b) => b.dst === '/hearth/runtimes'));
  t.is(cgfs.read(`${ROOT}/memory/hearth-unit/n1/memory.limit_in_bytes`), String(128 * 1024 * 1024));
  inst.kill();
  await inst.exited;
  await driver.stop();
  cleanup();
});

test('netnsFd is passed to spawn as is (never closed); without it no netnsFd is asked for', async (t) => {
  const { native, driver, cleanup } = setup();
  await driver.start();
  // real open fds: the driver checks that a netnsFd is open
  const fdA = fs.openSync('/dev/null', 'r');
  const fdB = fs.openSync('/dev/null', 'r');
  const joined = await driver.spawnNode('n1', LIMITS, { netnsFd: fdA });
  const prog = await driver.spawnProgram('p1', LIMITS, ['/usr/bin/true'], { netnsFd: fdB });
  const plain = await driver.spawnNode('n2', LIMITS);
  const empty = await driver.spawnNode('n3', LIMITS, {});
  t.is(native.processes.get(joined.pid)!.opts.netnsFd, fdA);
  t.is(native.processes.get(prog.pid)!.opts.netnsFd, fdB);
  t.false('netnsFd' in native.processes.get(plain.pid)!.opts);
  t.false('netnsFd' in native.processes.get(empty.pid)!.opts);
  for (const inst of [joined, prog, plain, empty]) {
    inst.kill();
    await inst.exited;
  }
  t.false(native.closed.includes(fdA) || native.closed.includes(fdB), 'the caller owns the netns fd');
  t.notThrows(() => fs.fstatSync(fdA));
  fs.closeSync(fdA);
  fs.closeSync(fdB);
  await driver.stop();
  cleanup();
});

test('a netnsFd that is negative or not open is refused before anything is made', async (t) => {
  const { native, cgfs, driver, cleanup } = setup();
  await driver.start();
  const closed = 1_000_000; // above any fd this process has open
  const bad = await t.throwsAsync<HearthError>(driver.spawnNode('n1', LIMITS, { netnsFd: -1 }));
  t.is(bad.code, 'INTERNAL');
  const gone = await t.throwsAsync<HearthError>(driver.spawnNode('n1', LIMITS, { netnsFd: closed }));
  t.is(gone.code, 'UNAVAILABLE');
  t.is((gone.cause as NodeJS.ErrnoException).code, 'EBADF');
  const py = await t.throwsAsync<HearthError>(driver.spawnPython('p1', LIMITS, { netnsFd: closed }));
  t.is(py.code, 'UNAVAILABLE');
  t.is(native.processes.size, 0, 'no process (and no zygote) was started');
  t.false(cgfs.exists(`${ROOT}/memory/hearth-unit/n1`));
  t.false(cgfs.exists(`${ROOT}/memory/hearth-unit/p1`));
  await driver.stop();
  cleanup();
});

test('exited resolves once after the process is reaped, then the cgroup is gone', async (t) => {
  const { native, cgfs, driver, cleanup } = setup();
  await driver.start();
  const inst = await driver.spawnNode('n1', LIMITS);
  native.exit(inst.pid, { code: 3, signal: null });
  inst.kill(); // a kill after the exit is harmless
  const exit = await inst.exited;
  t.deepEqual(exit, { code: 3, signal: null, oomKilled: false });
  t.false(cgfs.exists(`${ROOT}/memory/hearth-unit/n1`));
  t.false(cgfs.exists(`${ROOT}/pids/hearth-unit/n1`));
  t.true(native.processes.get(inst.pid)!.reaped);
  t.deepEqual(driver.liveIds(), []);
  // the id can be used again
  const again = await driver.spawnNode('n1', LIMITS);
  again.kill();
  t.is((await again.exited).signal, 9);
  await driver.stop();
  cleanup();
});

test('an instance killed by the OOM killer reports oomKilled', async (t) => {
  const { native, cgfs, driver, cleanup } = setup(2);
  await driver.start();
  const inst = await driver.spawnNode('n1', LIMITS);
  cgfs.files.set(`${ROOT}/hearth-unit/n1/memory.events`, 'oom 1\noom_kill 1\n');
  native.exit(inst.pid, { code: null, signal: 9 });
  inst.kill();
  t.deepEqual(await inst.exited, { code: null, signal: 9, oomKilled: true });
  await driver.stop();
  cleanup();
});

test('a failed spawn throws UNAVAILABLE with the native error as cause and leaves no cgroup', async (t) => {
  const { native, cgfs, driver, cleanup } = setup();
  await driver.start();
  native.failSpawn = Object.assign(systemError('ENOENT', 2, 'spawn'), { step: 'open_tree' });
  const err = await t.throwsAsync<HearthError>(driver.spawnNode('n1', LIMITS));
  t.is(err.code, 'UNAVAILABLE');
  t.is((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
  t.false(cgfs.exists(`${ROOT}/memory/hearth-unit/n1`));
  t.is(native.closed.length, 2, 'both socket ends closed');
  await driver.stop();
  cleanup();
});

test('duplicate and malformed ids are refused', async (t) => {
  const { driver, cleanup } = setup();
  await driver.start();
  const inst = await driver.spawnNode('n1', LIMITS);
  t.is((await t.throwsAsync<HearthError>(driver.spawnNode('n1', LIMITS))).code, 'CONFLICT');
  await t.throwsAsync(driver.spawnNode('../x', LIMITS));
  await t.throwsAsync(driver.spawnNode('zygote', LIMITS));
  inst.kill();
  await inst.exited;
  await driver.stop();
  cleanup();
});

test('mountCode targets /code of the instance through its pidfd; failures are INTERNAL', async (t) => {
  const { native, driver, cleanup } = setup();
  await driver.start();
  const inst = await driver.spawnNode('n1', LIMITS);
  inst.mountCode('/srv/code/abc');
  t.deepEqual(native.processes.get(inst.pid)!.mounts, [{ srcDir: '/srv/code/abc', target: '/code' }]);
  native.mountCode = () => {
    throw systemError('ENOENT', 2, 'open_tree');
  };
  const err = t.throws<HearthError>(() => inst.mountCode('/missing'));
  t.is(err.code, 'INTERNAL');
  t.is((err.cause as NodeJS.ErrnoException).syscall, 'open_tree');
  inst.kill();
  await inst.exited;
  await driver.stop();
  cleanup();
});

test('setLimits re-applies cgroup limits', async (t) => {
  const { cgfs, driver, cleanup } = setup(2);
  await driver.start();
  const inst = await driver.spawnNode('n1', LIMITS);
  inst.setLimits({ memoryMb: 512, cpuPercent: 200 });
  t.is(cgfs.read(`${ROOT}/hearth-unit/n1/memory.max`), String(512 * 1024 * 1024));
  t.is(cgfs.read(`${ROOT}/hearth-unit/n1/cpu.max`), '200000 100000');
  inst.kill();
  await inst.exited;
  await driver.stop();
  cleanup();
});

test('start removes cgroups a crashed run left; stop kills instances and removes the parent', async (t) => {
  const { native, cgfs, driver, cleanup } = setup();
  for (const h of ['memory', 'pids', 'cpu']) {
    cgfs.mkdir(`${ROOT}/${h}/hearth-unit`);
    cgfs.mkdir(`${ROOT}/${h}/hearth-unit/old-1`);
  }
  await driver.start();
  t.false(cgfs.exists(`${ROOT}/memory/hearth-unit/old-1`));
  const a = await driver.spawnNode('a', LIMITS);
  const b = await driver.spawnNode('b', LIMITS);
  await driver.stop();
  t.deepEqual(native.processes.get(a.pid)!.signals, [9]);
  t.deepEqual(native.processes.get(b.pid)!.signals, [9]);
  for (const h of ['memory', 'pids', 'cpu']) t.false(cgfs.exists(`${ROOT}/${h}/hearth-unit`));
  await t.throwsAsync(driver.spawnNode('c', LIMITS), { instanceOf: HearthError });
  cleanup();
});

test('stop works after a failed start', async (t) => {
  const { driver, cgfs, cleanup } = setup();
  cgfs.dirs.delete(`${ROOT}/memory`);
  cgfs.files.delete(`${ROOT}/memory/cgroup.procs`);
  const err = await t.throwsAsync<HearthError>(driver.start());
  t.is(err.code, 'MISSING_DEPENDENCY');
  await t.notThrowsAsync(driver.stop());
  cleanup();
});

test('uid 0 is refused at construction', (t) => {
  const err = t.throws<HearthError>(() => new SandboxDriver({ stateDir: '/x', uid: 0 }));
  t.is(err.code, 'CONFIG');
});

test('without nodeFlags, a generic Node instance compiles eagerly (--no-lazy) and a cold start does not', async (t) => {
  const { native, driver, cleanup } = setup(1, { nodeFlags: undefined });
  await driver.start();
  const generic = await driver.spawnNode('g1', LIMITS);
  const cold = await driver.spawnNode('c1', LIMITS, { forRequest: true });
  t.deepEqual(native.processes.get(generic.pid)!.opts.argv, ['/hearth/native/hearth-init', '/usr/bin/node', '--no-lazy', '/hearth/runtimes/node/shim.js']);
  t.deepEqual(native.processes.get(cold.pid)!.opts.argv, ['/hearth/native/hearth-init', '/usr/bin/node', '/hearth/runtimes/node/shim.js']);
  generic.kill();
  cold.kill();
  await Promise.all([generic.exited, cold.exited]);
  await driver.stop();
  cleanup();
});
