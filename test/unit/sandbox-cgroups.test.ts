/**
 * cgroups v1 and v2 against the in-memory cgroup filesystem: detection, limits written in each
 * version's files, OOM detection, killing and removal, crash recovery.
 */
import test from 'ava';
import { CgroupTree, detectCgroups, MemoryCgroupFs } from '../../src/sandbox/cgroups.js';
import { HearthError } from '../../src/errors.js';
import { httpStatusOf } from '../../src/control/http-status.js';

const ROOT = '/fake/cgroup';

function tree(version: 1 | 2, killed: number[] = []): { fs: MemoryCgroupFs; tree: CgroupTree } {
  const fs = new MemoryCgroupFs(ROOT, version);
  const t = new CgroupTree({
    root: ROOT,
    parentName: 'hearth-test',
    fs,
    kill: (pid) => {
      killed.push(pid);
      // the process dies: it leaves every hierarchy
      for (const [p, v] of fs.files)
        if (p.endsWith('cgroup.procs'))
          fs.files.set(
            p,
            v
              .split('\n')
              .filter((l) => l.trim() !== String(pid))
              .join('\n'),
          );
    },
  });
  return { fs, tree: t };
}

test('detects v2 by cgroup.controllers, else v1 by controller hierarchies', (t) => {
  t.is(detectCgroups(ROOT, new MemoryCgroupFs(ROOT, 2)).version, 2);
  const v1 = detectCgroups(ROOT, new MemoryCgroupFs(ROOT, 1));
  t.is(v1.version, 1);
  t.deepEqual(Object.keys(v1.hierarchies).sort(), ['cpu', 'memory', 'pids']);
  const empty = new MemoryCgroupFs(ROOT, 1);
  empty.dirs.delete(`${ROOT}/memory`);
  empty.files.delete(`${ROOT}/memory/cgroup.procs`);
  const err = t.throws<HearthError>(() => detectCgroups(ROOT, empty));
  t.is(err.code, 'MISSING_DEPENDENCY');
});

const cases: { version: 1 | 2; files: Record<string, string> }[] = [
  {
    version: 1,
    files: {
      'memory/hearth-test/i1/memory.limit_in_bytes': String(64 * 1024 * 1024),
      'memory/hearth-test/i1/memory.memsw.limit_in_bytes': String(64 * 1024 * 1024),
      'pids/hearth-test/i1/pids.max': '20',
      'cpu/hearth-test/i1/cpu.cfs_quota_us': '50000',
      'cpu/hearth-test/i1/cpu.cfs_period_us': '100000',
    },
  },
  {
    version: 2,
    files: {
      'hearth-test/i1/memory.max': String(64 * 1024 * 1024),
      'hearth-test/i1/memory.swap.max': '0',
      'hearth-test/i1/pids.max': '20',
      'hearth-test/i1/cpu.max': '50000 100000',
    },
  },
];

for (const c of cases) {
  test(`v${c.version}: create writes memory, pids and cpu limits`, (t) => {
    const { fs, tree: tr } = tree(c.version);
    tr.start();
    const cg = tr.create('i1', { memoryMb: 64, pids: 20, cpuPercent: 50 });
    for (const [rel, want] of Object.entries(c.files)) t.is(fs.read(`${ROOT}/${rel}`), want, rel);
    t.deepEqual(
      cg.joinPaths(),
      c.version === 1 ? ['memory', 'pids', 'cpu'].map((h) => `${ROOT}/${h}/hearth-test/i1/tasks`) : [`${ROOT}/hearth-test/i1/cgroup.procs`],
    );
    t.is(cg.procsPaths().length, c.version === 1 ? 3 : 1);
  });

  test(`v${c.version}: createAsync writes the same limits and opens the join files when asked`, async (t) => {
    const { fs, tree: tr } = tree(c.version);
    tr.start();
    const { cgroup, fds } = await tr.createAsync('i1', { memoryMb: 64, pids: 20, cpuPercent: 50 }, true);
    for (const [rel, want] of Object.entries(c.files)) t.is(fs.read(`${ROOT}/${rel}`), want, rel);
    t.is(fds.length, cgroup.joinPaths().length);
    t.deepEqual((await tr.createAsync('i2', { memoryMb: 64, pids: 20, cpuPercent: 50 })).fds, []);
    await t.throwsAsync(tr.createAsync('i1', { memoryMb: 64, pids: 20, cpuPercent: 50 }), { message: /EEXIST/ });
    t.deepEqual(tr.children(), ['i1', 'i2']);
  });

  test(`v${c.version}: setLimits raises and lowers memory, 0 means unlimited`, (t) => {
    const { fs, tree: tr } = tree(c.version);
    tr.start();
    const cg = tr.create('i1', { memoryMb: 64, pids: 20, cpuPercent: 50 });
    cg.setLimits({ memoryMb: 256 });
    const memFile = c.version === 1 ? `${ROOT}/memory/hearth-test/i1/memory.limit_in_bytes` : `${ROOT}/hearth-test/i1/memory.max`;
    t.is(fs.read(memFile), String(256 * 1024 * 1024));
    cg.setLimits({ cpuPercent: 0, pids: 0 });
    const cpuFile = c.version === 1 ? `${ROOT}/cpu/hearth-test/i1/cpu.cfs_quota_us` : `${ROOT}/hearth-test/i1/cpu.max`;
    t.is(fs.read(cpuFile), c.version === 1 ? '-1' : 'max 100000');
    const pidsFile = c.version === 1 ? `${ROOT}/pids/hearth-test/i1/pids.max` : `${ROOT}/hearth-test/i1/pids.max`;
    t.is(fs.read(pidsFile), 'max');
  });

  test(`v${c.version}: oomKilled reads the kernel's oom_kill counter`, (t) => {
    const { fs, tree: tr } = tree(c.version);
    tr.start();
    const cg = tr.create('i1', { memoryMb: 64, pids: 20, cpuPercent: 50 });
    t.false(cg.oomKilled());
    if (c.version === 1) fs.files.set(`${ROOT}/memory/hearth-test/i1/memory.oom_control`, 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    else fs.files.set(`${ROOT}/hearth-test/i1/memory.events`, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    t.true(cg.oomKilled());
  });

  test(`v${c.version}: remove kills what is left, then removes the cgroup`, async (t) => {
    const killed: number[] = [];
    const { fs, tree: tr } = tree(c.version, killed);
    tr.start();
    const cg = tr.create('i1', { memoryMb: 64, pids: 20, cpuPercent: 50 });
    for (const p of cg.procsPaths()) fs.files.set(p, '4242\n4243\n');
    t.deepEqual(cg.pids().sort(), [4242, 4243]);
    await cg.remove();
    for (const d of cg.dirs()) t.false(fs.exists(d));
    if (c.version === 1) t.deepEqual([...new Set(killed)].sort(), [4242, 4243]);
  });

  test(`v${c.version}: cleanupAll removes every leftover child; removeAll the parent too`, async (t) => {
    const { fs, tree: tr } = tree(c.version);
    tr.start();
    tr.create('a', { memoryMb: 64, pids: 20, cpuPercent: 0 });
    tr.create('b', { memoryMb: 64, pids: 20, cpuPercent: 0 });
    // a new daemon after a crash
    const again = new CgroupTree({ root: ROOT, parentName: 'hearth-test', fs, kill: () => {} });
    again.start();
    t.deepEqual(again.children(), ['a', 'b']);
    t.deepEqual(await again.cleanupAll(), ['a', 'b']);
    t.deepEqual(again.children(), []);
    await again.removeAll();
    for (const d of again.parentDirs()) t.false(fs.exists(d));
  });
}

test('create refuses a duplicate id and ids that are not plain names', (t) => {
  const { tree: tr } = tree(1);
  tr.start();
  tr.create('x', { memoryMb: 64, pids: 20, cpuPercent: 0 });
  t.throws(() => tr.create('x', { memoryMb: 64, pids: 20, cpuPercent: 0 }), { message: /EEXIST/ });
  for (const bad of ['../x', 'a/b', '', '.hidden']) t.throws(() => tr.create(bad, { memoryMb: 64, pids: 20, cpuPercent: 0 }));
});

test('v1: memsw is written in the order the kernel accepts when lowering and raising', (t) => {
  const { fs, tree: tr } = tree(1);
  tr.start();
  const cg = tr.create('i1', { memoryMb: 64, pids: 20, cpuPercent: 0 });
  const limit = `${ROOT}/memory/hearth-test/i1/memory.limit_in_bytes`;
  const memsw = `${ROOT}/memory/hearth-test/i1/memory.memsw.limit_in_bytes`;
  // emulate the kernel rule limit <= memsw
  const write = fs.write.bind(fs);
  fs.write = (p: string, data: string): void => {
    if (p === limit && Number(data) > Number(fs.read(memsw))) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    if (p === memsw && Number(data) < Number(fs.read(limit))) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    write(p, data);
  };
  cg.setLimits({ memoryMb: 512 });
  t.is(fs.read(limit), String(512 * 1024 * 1024));
  t.is(fs.read(memsw), String(512 * 1024 * 1024));
  cg.setLimits({ memoryMb: 32 });
  t.is(fs.read(limit), String(32 * 1024 * 1024));
  t.is(fs.read(memsw), String(32 * 1024 * 1024));
});

test('a cgroup controller not enabled for Hearth is a missing dependency (503) naming it; nothing is left', async (t) => {
  const { fs, tree: tr } = tree(2);
  tr.start();
  const mkdir = fs.mkdir.bind(fs);
  fs.mkdir = (p) => {
    mkdir(p);
    fs.files.delete(`${p}/cpu.max`); // what a child cgroup looks like when +cpu is not in the parent's subtree_control
  };
  const err = t.throws<HearthError>(() => tr.create('i1', { memoryMb: 64, pids: 16, cpuPercent: 50 }));
  t.is(err.code, 'MISSING_DEPENDENCY');
  t.is(httpStatusOf(err.code), 503);
  t.regex(err.message, /cgroup cpu controller/);
  t.regex(err.message, /echo \+cpu > \/fake\/cgroup\/hearth-test\/cgroup.subtree_control/);
  t.deepEqual(tr.children(), []);
});

test('createAsync: a controller not enabled for Hearth is a missing dependency too; nothing is left', async (t) => {
  const { fs, tree: tr } = tree(1);
  tr.start();
  const mkdir = fs.mkdir.bind(fs);
  fs.mkdir = (p) => {
    mkdir(p);
    fs.files.delete(`${p}/pids.max`);
  };
  const err = await t.throwsAsync<HearthError>(tr.createAsync('i1', { memoryMb: 64, pids: 16, cpuPercent: 50 }));
  t.is(err.code, 'MISSING_DEPENDENCY');
  t.regex(err.message, /cgroup pids controller/);
  t.regex(err.message, /mount the cgroup v1 pids hierarchy under \/fake\/cgroup/);
  t.deepEqual(tr.children(), []);
});

test('a cgroup whose parent is gone fails with its ENOENT from mkdir, not as a missing controller', async (t) => {
  const { fs, tree: tr } = tree(2);
  tr.start();
  fs.dirs.delete(`${ROOT}/hearth-test`);
  const err = await t.throwsAsync<NodeJS.ErrnoException>(tr.createAsync('i1', { memoryMb: 64, pids: 16, cpuPercent: 50 }));
  t.is(err.code, 'ENOENT');
  t.is(t.throws<NodeJS.ErrnoException>(() => tr.create('i1', { memoryMb: 64, pids: 16, cpuPercent: 50 })).code, 'ENOENT');
});

test('a limit write on a cgroup that is gone keeps its ENOENT (not a missing controller)', async (t) => {
  const { tree: tr } = tree(2);
  tr.start();
  const cg = tr.create('i2', { memoryMb: 64, pids: 16, cpuPercent: 50 });
  await cg.remove();
  const err = t.throws<NodeJS.ErrnoException>(() => cg.setLimits({ memoryMb: 128 }));
  t.is(err.code, 'ENOENT');
});
