/**
 * cgroups for instances, v1 or v2, chosen by detection:
 * - pure v2 when `<root>/cgroup.controllers` exists (one hierarchy, files memory.max, pids.max, cpu.max);
 * - otherwise v1 with one hierarchy per controller at `<root>/memory`, `<root>/pids`, `<root>/cpu`
 *   (a hybrid v2 mount at `<root>/unified` carries no controllers and is ignored).
 *
 * Layout: `<hierarchy>/<parentName>/<instance id>`. The parent holds only one daemon's cgroups (the
 * daemon names it after its state dir: config.ts daemonName), so crash recovery is "remove every
 * child of the parent", and several daemons on one host never touch each other's. All file access goes through a
 * `CgroupFs` so unit tests run against an in-memory tree (`MemoryCgroupFs`).
 *
 * Not concurrent-safe per cgroup: one owner (the sandbox driver) creates, limits and removes each one.
 */
import path from 'node:path';
import { HearthError, missingDependency } from '../errors.js';

import { realCgroupFs, runPlanSync, type CgroupFs } from './cgroup-fs.js';
import { createPlan, limitsError, type CgroupPlan } from './cgroup-plan.js';

export { MemoryCgroupFs, realCgroupFs, type CgroupFs } from './cgroup-fs.js';

export interface CgroupLimits {
  memoryMb: number;
  pids: number;
  /** Percent of one CPU (100 = one full core); 0 = unlimited. */
  cpuPercent: number;
}

export interface CgroupLayout {
  version: 1 | 2;
  root: string;
  /** v1: controller name -> hierarchy dir; v2: { unified: root }. */
  hierarchies: Record<string, string>;
}

const V1_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;

/** Detect the cgroup layout under root (default /sys/fs/cgroup). Throws CONFIG if neither works. */
export function detectCgroups(root = '/sys/fs/cgroup', cfs: CgroupFs = realCgroupFs): CgroupLayout {
  if (cfs.exists(path.join(root, 'cgroup.controllers'))) {
    return { version: 2, root, hierarchies: { unified: root } };
  }
  const hierarchies: Record<string, string> = {};
  for (const c of V1_CONTROLLERS) {
    const dir = path.join(root, c);
    if (cfs.exists(path.join(dir, 'cgroup.procs'))) hierarchies[c] = dir;
  }
  if (!hierarchies['memory'] || !hierarchies['pids']) {
    throw missingDependency(
      'instances',
      `cgroups (none usable under ${root}: cgroup v2, or the v1 memory and pids controllers)`,
      'mount cgroup2 at /sys/fs/cgroup, or boot with cgroup_enable=memory',
    );
  }
  return { version: 1, root, hierarchies };
}

const ID_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function checkName(what: string, name: string): void {
  if (!ID_RE.test(name)) throw new HearthError('INTERNAL', `invalid cgroup ${what}: ${JSON.stringify(name)}`);
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface CgroupTreeOptions {
  /** cgroup mount root (tests: a fake root). Default /sys/fs/cgroup. */
  root?: string;
  /** Name of Hearth's parent cgroup in each hierarchy. Default `hearth`. */
  parentName?: string;
  fs?: CgroupFs;
  /** Sends SIGKILL to a host pid; ESRCH must be ignored. Default process.kill. */
  kill?: (pid: number) => void;
  /** CFS period in microseconds. Default 100000. */
  cpuPeriodUs?: number;
}

function defaultKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if (errCode(e) !== 'ESRCH') throw e;
  }
}

/** Hearth's parent cgroup and the factory of instance cgroups. */
export class CgroupTree {
  readonly root: string;
  readonly parentName: string;
  private readonly cfs: CgroupFs;
  private readonly killPid: (pid: number) => void;
  private readonly periodUs: number;
  private layoutValue: CgroupLayout | undefined;

  constructor(opts: CgroupTreeOptions = {}) {
    this.root = opts.root ?? '/sys/fs/cgroup';
    this.parentName = opts.parentName ?? 'hearth';
    checkName('parent name', this.parentName);
    this.cfs = opts.fs ?? realCgroupFs;
    this.killPid = opts.kill ?? defaultKill;
    this.periodUs = opts.cpuPeriodUs ?? 100_000;
  }

  get layout(): CgroupLayout {
    if (!this.layoutValue) throw new HearthError('INTERNAL', 'cgroups not started');
    return this.layoutValue;
  }

  /** Detect the layout and create the parent cgroup (idempotent). */
  start(): CgroupLayout {
    const layout = detectCgroups(this.root, this.cfs);
    this.layoutValue = layout;
    for (const dir of this.parentDirs()) {
      try {
        this.cfs.mkdir(dir);
      } catch (e) {
        if (errCode(e) !== 'EEXIST') throw e;
      }
    }
    if (layout.version === 2) {
      // Delegate the controllers down to the parent and to its children (best effort at the root,
      // which a systemd host has usually enabled already).
      this.enableControllers(path.join(this.root, 'cgroup.subtree_control'));
      this.enableControllers(path.join(this.root, this.parentName, 'cgroup.subtree_control'));
    }
    return layout;
  }

  private enableControllers(file: string): void {
    for (const c of ['memory', 'pids', 'cpu']) {
      try {
        this.cfs.write(file, `+${c}`);
      } catch {
        // a controller the kernel lacks, or one already enabled higher up; limits report it when used
      }
    }
  }

  /** The parent's directory in every hierarchy in use. */
  parentDirs(): string[] {
    return Object.values(this.layout.hierarchies).map((h) => path.join(h, this.parentName));
  }

  /** A handle on an instance cgroup, without creating it. */
  handle(id: string): Cgroup {
    checkName('id', id);
    return new Cgroup(id, this.layout, this.parentName, this.cfs, this.killPid, this.periodUs);
  }

  /** Create the cgroup of one instance with its limits. Throws if it already exists. */
  create(id: string, limits: CgroupLimits): Cgroup {
    const cg = this.handle(id);
    try {
      runPlanSync(this.cfs, cg.createPlan(limits, false));
    } catch (e) {
      throw limitsError(this.layout, e, !cg.dirs().includes((e as NodeJS.ErrnoException).path ?? ''));
    }
    return cg;
  }

  /**
   * create() off the event loop (CgroupFs.createAsync: the addon's libuv pool), also opening the
   * join files when `openJoin` (their fds are the caller's to close). Rejects as create() throws.
   */
  async createAsync(id: string, limits: CgroupLimits, openJoin = false): Promise<{ cgroup: Cgroup; fds: number[] }> {
    const cg = this.handle(id);
    try {
      return { cgroup: cg, fds: await this.cfs.createAsync(cg.createPlan(limits, openJoin)) };
    } catch (e) {
      throw limitsError(this.layout, e, !cg.dirs().includes((e as NodeJS.ErrnoException).path ?? ''));
    }
  }

  /** Ids of the child cgroups that exist under the parent (in any hierarchy). */
  children(): string[] {
    const ids = new Set<string>();
    for (const dir of this.parentDirs()) {
      if (!this.cfs.exists(dir)) continue;
      for (const name of this.cfs.listDirs(dir)) ids.add(name);
    }
    return [...ids].sort();
  }

  /** Crash recovery: kill the processes of every child cgroup and remove them all. Returns the ids removed. */
  async cleanupAll(): Promise<string[]> {
    const ids = this.children().filter((id) => ID_RE.test(id));
    for (const id of ids) await this.handle(id).remove();
    return ids;
  }

  /** Remove every child and then the parent itself (daemon stop). */
  async removeAll(): Promise<void> {
    if (!this.layoutValue) return;
    await this.cleanupAll();
    for (const dir of this.parentDirs()) {
      try {
        this.cfs.rmdir(dir);
      } catch (e) {
        if (errCode(e) !== 'ENOENT') throw e;
      }
    }
  }
}

/** One instance's cgroup (a directory per hierarchy in v1, one in v2). */
export class Cgroup {
  constructor(
    readonly id: string,
    private readonly layout: CgroupLayout,
    private readonly parentName: string,
    private readonly cfs: CgroupFs,
    private readonly killPid: (pid: number) => void,
    private readonly periodUs: number,
  ) {}

  /** The directories of this cgroup, one per hierarchy (memory first in v1). */
  dirs(): string[] {
    return Object.values(this.layout.hierarchies).map((h) => path.join(h, this.parentName, this.id));
  }

  private dir(controller: 'memory' | 'pids' | 'cpu'): string | undefined {
    const h = this.layout.version === 2 ? this.layout.hierarchies['unified'] : this.layout.hierarchies[controller];
    return h === undefined ? undefined : path.join(h, this.parentName, this.id);
  }

  /** The cgroup.procs files (one per hierarchy): read them for the member pids. */
  procsPaths(): string[] {
    return this.dirs().map((d) => path.join(d, 'cgroup.procs'));
  }

  /**
   * The files a single-threaded process writes "0" to, to join this cgroup: `tasks` on v1,
   * `cgroup.procs` on v2. On v1 "0" in `tasks` moves only the calling thread (the whole process,
   * as it has one) without the global threadgroup lock whose RCU grace period costs ~5 ms per
   * write with cgroup.procs.
   */
  joinPaths(): string[] {
    return this.dirs().map((d) => path.join(d, this.layout.version === 1 ? 'tasks' : 'cgroup.procs'));
  }

  /**
   * Apply the given limits; unspecified ones stay as they are. MISSING_DEPENDENCY when the
   * cgroup exists but a controller's file does not (the controller is not enabled for Hearth).
   */
  setLimits(limits: Partial<CgroupLimits>): void {
    try {
      if (limits.memoryMb !== undefined) this.setMemory(limits.memoryMb);
      if (limits.pids !== undefined) {
        const d = this.dir('pids');
        if (d) this.cfs.write(path.join(d, 'pids.max'), limits.pids > 0 ? String(Math.floor(limits.pids)) : 'max');
      }
      if (limits.cpuPercent !== undefined) this.setCpu(limits.cpuPercent);
    } catch (e) {
      const file = (e as NodeJS.ErrnoException).path;
      throw limitsError(this.layout, e, file !== undefined && this.cfs.exists(path.dirname(file)));
    }
  }

  /** The steps that make this cgroup with `limits` (cgroup-plan.ts), opening its join files if asked. */
  createPlan(limits: CgroupLimits, openJoin: boolean): CgroupPlan {
    return createPlan(this.layout, this.dirs(), (c) => this.dir(c), limits, this.periodUs, openJoin ? this.joinPaths() : []);
  }

  private setMemory(mb: number): void {
    const d = this.dir('memory');
    if (!d) return;
    const bytes = mb > 0 ? String(Math.floor(mb * 1024 * 1024)) : undefined;
    if (this.layout.version === 2) {
      this.cfs.write(path.join(d, 'memory.max'), bytes ?? 'max');
      try {
        this.cfs.write(path.join(d, 'memory.swap.max'), '0');
      } catch (e) {
        if (errCode(e) !== 'ENOENT') throw e; // no swap accounting: nothing to limit
      }
      return;
    }
    const limit = path.join(d, 'memory.limit_in_bytes');
    const memsw = path.join(d, 'memory.memsw.limit_in_bytes');
    const value = bytes ?? '-1';
    if (!this.cfs.exists(memsw)) {
      this.cfs.write(limit, value);
      return;
    }
    // memory.limit_in_bytes <= memory.memsw.limit_in_bytes at all times: the order depends on the direction.
    try {
      this.cfs.write(limit, value);
      this.cfs.write(memsw, value);
    } catch (e) {
      if (errCode(e) !== 'EINVAL') throw e;
      this.cfs.write(memsw, value);
      this.cfs.write(limit, value);
    }
  }

  private setCpu(percent: number): void {
    const d = this.dir('cpu');
    if (!d) return;
    const quota = percent > 0 ? Math.max(1000, Math.floor((this.periodUs * percent) / 100)) : undefined;
    if (this.layout.version === 2) {
      this.cfs.write(path.join(d, 'cpu.max'), `${quota ?? 'max'} ${this.periodUs}`);
      return;
    }
    this.cfs.write(path.join(d, 'cpu.cfs_period_us'), String(this.periodUs));
    this.cfs.write(path.join(d, 'cpu.cfs_quota_us'), quota === undefined ? '-1' : String(quota));
  }

  /** True once the kernel's OOM killer has killed a process of this cgroup. */
  oomKilled(): boolean {
    const d = this.dir('memory');
    if (!d) return false;
    const file = this.layout.version === 2 ? 'memory.events' : 'memory.oom_control';
    let text: string;
    try {
      text = this.cfs.read(path.join(d, file));
    } catch {
      return false;
    }
    const m = /^oom_kill (\d+)$/m.exec(text);
    return m !== null && Number(m[1]) > 0;
  }

  /** Host pids of the processes in this cgroup (union over hierarchies). */
  pids(): number[] {
    const out = new Set<number>();
    for (const p of this.procsPaths()) {
      let text: string;
      try {
        text = this.cfs.read(p);
      } catch (e) {
        if (errCode(e) === 'ENOENT') continue;
        throw e;
      }
      for (const line of text.split('\n')) {
        const n = Number(line.trim());
        if (line.trim() !== '' && Number.isInteger(n) && n > 0) out.add(n);
      }
    }
    return [...out];
  }

  /** SIGKILL every process in the cgroup (cgroup.kill on v2 when the kernel has it). */
  killAll(): void {
    if (this.layout.version === 2) {
      const killFile = path.join(this.dirs()[0], 'cgroup.kill');
      if (this.cfs.exists(killFile)) {
        try {
          this.cfs.write(killFile, '1');
          return;
        } catch (e) {
          if (errCode(e) === 'ENOENT') return;
        }
      }
    }
    for (const pid of this.pids()) this.killPid(pid);
  }

  /** Kill what is left and remove the cgroup in every hierarchy, retrying briefly while it drains. */
  async remove(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let delay = 2;
    for (;;) {
      let busy: unknown;
      for (const dir of this.dirs()) {
        if (!this.cfs.exists(dir)) continue;
        try {
          this.cfs.rmdir(dir);
        } catch (e) {
          if (errCode(e) === 'ENOENT') continue;
          busy = e;
        }
      }
      if (busy === undefined) return;
      if (Date.now() >= deadline) {
        throw new HearthError('INTERNAL', `cannot remove cgroup ${this.id}: ${(busy as Error).message}`, { cause: busy });
      }
      this.killAll();
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }
}
