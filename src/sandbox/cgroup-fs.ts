/**
 * The file operations cgroups.ts needs: the real cgroup filesystem, and an in-memory tree (v1 or
 * v2) for unit tests of cgroups.ts and the sandbox driver.
 */
import fs from 'node:fs';
import path from 'node:path';
import { binding } from './binding.js';
import type { CgroupPlan } from './cgroup-plan.js';

/** The file operations cgroups need. Errors are Node-style (`code` ENOENT, EEXIST, EBUSY, ...). */
export interface CgroupFs {
  exists(p: string): boolean;
  mkdir(p: string): void;
  rmdir(p: string): void;
  read(p: string): string;
  write(p: string, data: string): void;
  /** Names of the sub-directories (child cgroups) of p. */
  listDirs(p: string): string[];
  /**
   * Runs a plan (cgroup-plan.ts) off the event loop: resolves with the fds of `plan.open`; on a
   * failure, undoes what it did and rejects with the Node-style error (`syscall`, `path`).
   */
  createAsync(plan: CgroupPlan): Promise<number[]>;
}

/**
 * Runs a plan's directories and writes through `cfs` synchronously (an error carries `syscall`
 * and `path`); removes the directories it made on a failure. No fds: `plan.open` must be empty.
 */
export function runPlanSync(cfs: Pick<CgroupFs, 'mkdir' | 'rmdir' | 'write'>, plan: CgroupPlan): void {
  const made: string[] = [];
  try {
    for (const dir of plan.mkdirs) {
      cfs.mkdir(dir);
      made.push(dir);
    }
    for (const w of plan.writes) {
      try {
        cfs.write(w.path, w.value);
      } catch (e) {
        if (w.skip === 'any' || (w.skip === 'ENOENT' && (e as NodeJS.ErrnoException).code === 'ENOENT')) continue;
        throw e;
      }
    }
  } catch (e) {
    for (const dir of made.reverse()) {
      try {
        cfs.rmdir(dir);
      } catch {
        // best effort: CgroupTree.cleanupAll() catches what is left
      }
    }
    throw e;
  }
}

export const realCgroupFs: CgroupFs = {
  exists: (p) => fs.existsSync(p),
  mkdir: (p) => fs.mkdirSync(p),
  rmdir: (p) => fs.rmdirSync(p),
  read: (p) => fs.readFileSync(p, 'utf8'),
  write: (p, data) => fs.writeFileSync(p, data),
  listDirs: (p) =>
    fs
      .readdirSync(p, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name),
  createAsync: (plan) => binding().cgroupCreateAsync(plan),
};

/**
 * In-memory cgroup filesystem for unit tests: a v1 or v2 tree whose directories have the usual
 * control files, where rmdir refuses a cgroup with processes or children (EBUSY) like the kernel.
 */
export class MemoryCgroupFs implements CgroupFs {
  readonly files = new Map<string, string>();
  readonly dirs = new Set<string>();

  constructor(
    readonly root: string,
    readonly version: 1 | 2,
  ) {
    this.dirs.add(root);
    if (version === 2) {
      this.files.set(path.join(root, 'cgroup.controllers'), 'cpu memory pids');
      this.populate(root);
    } else {
      for (const c of ['memory', 'pids', 'cpu']) {
        this.dirs.add(path.join(root, c));
        this.populate(path.join(root, c));
      }
    }
  }

  private populate(dir: string): void {
    const set = (name: string, value: string): void => void this.files.set(path.join(dir, name), value);
    set('cgroup.procs', '');
    if (this.version === 1) set('tasks', '');
    if (this.version === 2) {
      set('cgroup.subtree_control', '');
      set('memory.max', 'max');
      set('memory.swap.max', 'max');
      set('memory.events', 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n');
      set('pids.max', 'max');
      set('cpu.max', 'max 100000');
      set('cgroup.kill', '');
    } else if (dir.includes(`${path.sep}memory`)) {
      set('memory.limit_in_bytes', '9223372036854771712');
      set('memory.memsw.limit_in_bytes', '9223372036854771712');
      set('memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
    } else if (dir.includes(`${path.sep}pids`)) {
      set('pids.max', 'max');
    } else if (dir.includes(`${path.sep}cpu`)) {
      set('cpu.cfs_period_us', '100000');
      set('cpu.cfs_quota_us', '-1');
    }
  }

  private static err(code: string, p: string): NodeJS.ErrnoException {
    const e = new Error(`${code}: ${p}`) as NodeJS.ErrnoException;
    e.code = code;
    e.path = p;
    return e;
  }

  exists(p: string): boolean {
    return this.dirs.has(p) || this.files.has(p);
  }
  mkdir(p: string): void {
    if (this.exists(p)) throw MemoryCgroupFs.err('EEXIST', p);
    if (!this.dirs.has(path.dirname(p))) throw MemoryCgroupFs.err('ENOENT', p);
    this.dirs.add(p);
    this.populate(p);
  }
  rmdir(p: string): void {
    if (!this.dirs.has(p)) throw MemoryCgroupFs.err('ENOENT', p);
    if (this.listDirs(p).length > 0) throw MemoryCgroupFs.err('EBUSY', p);
    if ((this.files.get(path.join(p, 'cgroup.procs')) ?? '').trim() !== '') throw MemoryCgroupFs.err('EBUSY', p);
    this.dirs.delete(p);
    for (const f of [...this.files.keys()]) if (path.dirname(f) === p) this.files.delete(f);
  }
  read(p: string): string {
    const v = this.files.get(p);
    if (v === undefined) throw MemoryCgroupFs.err('ENOENT', p);
    return v;
  }
  write(p: string, data: string): void {
    if (!this.files.has(p)) throw MemoryCgroupFs.err('ENOENT', p);
    if (path.basename(p) === 'cgroup.kill') {
      this.files.set(path.join(path.dirname(p), 'cgroup.procs'), '');
      return;
    }
    this.files.set(p, data);
  }
  listDirs(p: string): string[] {
    return [...this.dirs].filter((d) => path.dirname(d) === p && d !== p).map((d) => path.basename(d));
  }
  /** The plan run in memory after a turn of the loop; `open` gives made-up fds for existing files. */
  async createAsync(plan: CgroupPlan): Promise<number[]> {
    await Promise.resolve();
    runPlanSync(this, plan);
    return plan.open.map((p, i) => {
      if (!this.files.has(p)) throw MemoryCgroupFs.err('ENOENT', p);
      return 1000 + i;
    });
  }
}
