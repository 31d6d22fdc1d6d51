/**
 * What making an instance's cgroup takes, as a plan of plain file steps (directories, limit files,
 * the files a process joins it through), and the two ways to run it: synchronously through a
 * `CgroupFs`, or off the event loop in one job of the addon's libuv pool (`cgroupCreateAsync`),
 * so that the daemon's loop never waits for the cgroup file system while an instance is made.
 *
 * The plan is for a cgroup that does not exist yet: its limits start unlimited, so on v1 the
 * memory limit can always be written before the memory+swap limit (memory.limit_in_bytes ≤
 * memory.memsw.limit_in_bytes holds after each write). Changing the limits of an existing cgroup is
 * `Cgroup.setLimits`.
 */
import path from 'node:path';
import { missingDependency } from '../errors.js';
import type { CgroupLayout, CgroupLimits } from './cgroups.js';

/** One write of `value` to a file; `skip`: ENOENT (a file the kernel may lack) or any error is ignored. */
export interface CgroupWrite {
  path: string;
  value: string;
  skip?: 'ENOENT' | 'any';
}

/** mkdir each of `mkdirs`, then each write in order, then open each of `open` for writing. */
export interface CgroupPlan {
  mkdirs: string[];
  writes: CgroupWrite[];
  open: string[];
}

/**
 * The plan for a new cgroup: `dirs` in every hierarchy (memory first on v1), `dirOf(controller)`
 * the directory of one controller (undefined when its hierarchy is not mounted), the limits, and
 * the join files to open (none unless asked).
 */
export function createPlan(
  layout: CgroupLayout,
  dirs: string[],
  dirOf: (controller: 'memory' | 'pids' | 'cpu') => string | undefined,
  limits: CgroupLimits,
  periodUs: number,
  open: string[] = [],
): CgroupPlan {
  const writes: CgroupWrite[] = [];
  const w = (dir: string, file: string, value: string, skip?: 'ENOENT' | 'any'): void =>
    void writes.push({ path: path.join(dir, file), value, ...(skip ? { skip } : {}) });
  const mem = dirOf('memory');
  const bytes = limits.memoryMb > 0 ? String(Math.floor(limits.memoryMb * 1024 * 1024)) : undefined;
  if (mem !== undefined && layout.version === 2) {
    w(mem, 'memory.oom.group', '1', 'any'); // older kernels: the OOM killer picks single processes
    w(mem, 'memory.max', bytes ?? 'max');
    w(mem, 'memory.swap.max', '0', 'ENOENT'); // no swap accounting: nothing to limit
  } else if (mem !== undefined) {
    w(mem, 'memory.limit_in_bytes', bytes ?? '-1');
    w(mem, 'memory.memsw.limit_in_bytes', bytes ?? '-1', 'ENOENT');
  }
  const pids = dirOf('pids');
  if (pids !== undefined) w(pids, 'pids.max', limits.pids > 0 ? String(Math.floor(limits.pids)) : 'max');
  const cpu = dirOf('cpu');
  if (cpu !== undefined) {
    const quota = limits.cpuPercent > 0 ? Math.max(1000, Math.floor((periodUs * limits.cpuPercent) / 100)) : undefined;
    if (layout.version === 2) {
      w(cpu, 'cpu.max', `${quota ?? 'max'} ${periodUs}`);
    } else {
      w(cpu, 'cpu.cfs_period_us', String(periodUs));
      w(cpu, 'cpu.cfs_quota_us', quota === undefined ? '-1' : String(quota));
    }
  }
  return { mkdirs: dirs, writes, open };
}

/**
 * A failed write of a limit file that does not exist, in a cgroup directory that does (or did: the
 * async job removes what it made): the controller is not enabled for Hearth. Other errors unchanged.
 */
export function limitsError(layout: CgroupLayout, e: unknown, dirExisted: boolean): unknown {
  const file = (e as NodeJS.ErrnoException).path;
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || file === undefined || !dirExisted) return e;
  const controller = path.basename(file).split('.')[0];
  if (!['memory', 'pids', 'cpu'].includes(controller)) return e;
  const parent = path.dirname(path.dirname(file));
  const install =
    layout.version === 2
      ? `enable it for Hearth's cgroups (echo +${controller} > ${path.join(parent, 'cgroup.subtree_control')}, and in every cgroup above it)`
      : `mount the cgroup v1 ${controller} hierarchy under ${layout.root}`;
  return missingDependency('instance limits', `the cgroup ${controller} controller (${file} does not exist)`, install, e);
}
