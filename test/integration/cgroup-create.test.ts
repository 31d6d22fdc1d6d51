/**
 * The addon's cgroupCreateAsync (native/src/cgroup-create.cc) on plain directories, and
 * CgroupTree.createAsync on the host's real cgroups (root).
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { binding, nativeDirCandidates } from '../../src/sandbox/binding.js';
import { CgroupTree } from '../../src/sandbox/cgroups.js';

const built = nativeDirCandidates().some((d) => fs.existsSync(path.join(d, 'hearth.node')));
const it = built ? test.serial : test.skip;
const asRoot = built && process.getuid?.() === 0 ? test.serial : test.skip;

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-cgc-'));
}

it('cgroupCreateAsync: makes the directories, writes the files in order, opens the rest and hands back their fds', async (t) => {
  const root = tmp();
  try {
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    // A write never creates its file (cgroup files exist once the directory does): these two are made here.
    fs.writeFileSync(path.join(root, 'limit'), '');
    fs.writeFileSync(path.join(root, 'join'), '');
    const fds = await binding().cgroupCreateAsync({
      mkdirs: [a, b],
      writes: [
        { path: path.join(root, 'limit'), value: '123' },
        { path: path.join(root, 'absent'), value: 'x', skip: 'ENOENT' },
        { path: path.join(root, 'nodir', 'x'), value: 'x', skip: 'any' },
      ],
      open: [path.join(root, 'join')],
    });
    t.true(fs.statSync(a).isDirectory() && fs.statSync(b).isDirectory());
    t.is(fs.readFileSync(path.join(root, 'limit'), 'utf8'), '123');
    t.false(fs.existsSync(path.join(root, 'absent')));
    t.is(fds.length, 1);
    fs.writeSync(fds[0], 'joined');
    fs.closeSync(fds[0]);
    t.is(fs.readFileSync(path.join(root, 'join'), 'utf8'), 'joined');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

it('cgroupCreateAsync: a failed step rejects with its syscall and path, after removing the directories it made', async (t) => {
  const root = tmp();
  try {
    const a = path.join(root, 'a');
    const err = await t.throwsAsync<NodeJS.ErrnoException>(
      binding().cgroupCreateAsync({ mkdirs: [a], writes: [{ path: path.join(a, 'pids.max'), value: '5' }], open: [] }),
    );
    t.is(err.code, 'ENOENT');
    t.is(err.syscall, 'open');
    t.is(err.path, path.join(a, 'pids.max'));
    t.false(fs.existsSync(a), 'the directory it made is gone');
    const again = await t.throwsAsync<NodeJS.ErrnoException>(binding().cgroupCreateAsync({ mkdirs: [root], writes: [], open: [] }));
    t.is(again.code, 'EEXIST');
    t.is(again.syscall, 'mkdir');
    t.true(fs.existsSync(root), 'a directory it did not make stays');
    t.throws(() => binding().cgroupCreateAsync({ mkdirs: [1], writes: [], open: [] } as never), { code: 'ERR_INVALID_ARG_VALUE' });
    t.throws(() => binding().cgroupCreateAsync({ mkdirs: [], writes: [{ path: 'x', value: 'y', skip: 'EPERM' }], open: [] } as never), {
      message: /skip must be "ENOENT" or "any"/,
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

asRoot('CgroupTree.createAsync on the host: the same limits as create(), the join files open', async (t) => {
  const tree = new CgroupTree({ parentName: `hearth-test-${randomBytes(4).toString('hex')}` });
  const layout = tree.start();
  try {
    const limits = { memoryMb: 48, pids: 17, cpuPercent: 30 };
    const { cgroup, fds } = await tree.createAsync('async1', limits, true);
    const sync = tree.create('sync1', limits);
    t.is(fds.length, cgroup.joinPaths().length);
    for (const fd of fds) fs.closeSync(fd);
    const files = layout.version === 2 ? ['memory.max', 'pids.max', 'cpu.max'] : ['memory.limit_in_bytes', 'pids.max', 'cpu.cfs_quota_us', 'cpu.cfs_period_us'];
    const read = (dirs: string[], f: string): string | undefined => {
      for (const d of dirs) if (fs.existsSync(path.join(d, f))) return fs.readFileSync(path.join(d, f), 'utf8');
      return undefined;
    };
    for (const f of files) t.is(read(cgroup.dirs(), f), read(sync.dirs(), f), f);
    t.is(read(cgroup.dirs(), 'pids.max')?.trim(), '17');
  } finally {
    await tree.removeAll();
  }
});
