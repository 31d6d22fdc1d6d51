/**
 * Suite 3: memory per instance. PSS (proportional set size, from /proc/PID/smaps_rollup) summed
 * over the processes in each instance's cgroup, for idle generic instances and for instances
 * specialised with the hello handler (idle after one invocation), per runtime; the Python
 * zygote's own PSS; and how many idle instances fit in 4 GB.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import { DaemonProcess, type Runtime } from './daemon-process.js';
import type { Fixtures } from './fixtures.js';
import { summarize, type Summary } from './stats.js';

export interface MemoryOf {
  pssKb: number;
  rssKb: number;
  privateKb: number;
}

export interface DensityPoint {
  runtime: Runtime;
  state: 'generic' | 'specialised';
  instances: number;
  pssMb: Summary;
  rssMb: Summary;
  privateMb: Summary;
  /** floor(4096 / median PSS). */
  fitIn4GB: number;
}

export interface DensityResult {
  points: DensityPoint[];
  zygotePssMb: number | null;
}

/** PSS, RSS and private memory of one process, kB (zeros when it is gone). */
export function processMemory(pid: number): MemoryOf {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const f = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0);
    return { pssKb: f('Pss'), rssKb: f('Rss'), privateKb: f('Private_Clean') + f('Private_Dirty') };
  } catch {
    return { pssKb: 0, rssKb: 0, privateKb: 0 };
  }
}

/** The pids of a cgroup (v1 memory hierarchy, else v2), or [fallback]. */
export function cgroupPids(cgroupName: string, id: string, fallback?: number): number[] {
  for (const root of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup']) {
    try {
      const pids = readFileSync(join(root, cgroupName, id, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number);
      if (pids.length) return pids;
    } catch {
      /* next */
    }
  }
  return fallback ? [fallback] : [];
}

export function cgroupMemory(cgroupName: string, id: string, fallback?: number): MemoryOf {
  const sum: MemoryOf = { pssKb: 0, rssKb: 0, privateKb: 0 };
  for (const pid of cgroupPids(cgroupName, id, fallback)) {
    const m = processMemory(pid);
    sum.pssKb += m.pssKb;
    sum.rssKb += m.rssKb;
    sum.privateKb += m.privateKb;
  }
  return sum;
}

function point(runtime: Runtime, state: DensityPoint['state'], mems: MemoryOf[]): DensityPoint {
  const pss = summarize(mems.map((m) => m.pssKb / 1024));
  return {
    runtime,
    state,
    instances: mems.length,
    pssMb: pss,
    rssMb: summarize(mems.map((m) => m.rssKb / 1024)),
    privateMb: summarize(mems.map((m) => m.privateKb / 1024)),
    fitIn4GB: pss.median > 0 ? Math.floor(4096 / pss.median) : 0,
  };
}

export async function runDensity(work: string, fx: Fixtures, cleanup: Cleanup, o: { generic: number; log: (s: string) => void }): Promise<DensityResult> {
  const n = o.generic;
  const d = await DaemonProcess.start(work, { generic: { node: n, python: n }, policy: 'fixed' }, cleanup);
  const out: DensityResult = { points: [], zygotePssMb: null };
  try {
    for (const rt of ['python', 'node'] as const) await d.waitGenericRefilled(rt, 1000, 60_000);
    await new Promise((r) => setTimeout(r, 1000)); // let the runtimes settle
    const pool = await d.pool();
    for (const rt of ['python', 'node'] as const) {
      const mems = pool.instances.filter((i) => i.runtime === rt && i.state === 'generic').map((i) => cgroupMemory(d.cgroupName, i.id, i.pid));
      out.points.push(point(rt, 'generic', mems));
    }
    const zygote = cgroupPids(d.cgroupName, 'zygote');
    if (zygote.length) out.zygotePssMb = zygote.map((p) => processMemory(p).pssKb).reduce((a, b) => a + b, 0) / 1024;

    // Specialise: n hello functions per runtime, one invocation each; measured idle.
    for (const rt of ['python', 'node'] as const) {
      const h = fx.hello[rt];
      for (let i = 0; i < n; i++) {
        cleanup.check();
        await d.deploy(`dn-${rt}-${i}`, h.dir, rt, h.handler);
        await d.invoke(`dn-${rt}-${i}`, { name: 'bench' });
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
    const after = await d.pool();
    for (const rt of ['python', 'node'] as const) {
      const mems = after.instances
        .filter((i) => i.runtime === rt && i.state === 'idle' && i.function?.startsWith('dn-'))
        .map((i) => cgroupMemory(d.cgroupName, i.id, i.pid));
      out.points.push(point(rt, 'specialised', mems));
    }
    for (const p of out.points)
      o.log(`density ${p.runtime} ${p.state}: PSS median ${p.pssMb.median.toFixed(2)} MB over ${p.instances}; ${p.fitIn4GB} fit in 4 GB`);
    if (out.zygotePssMb !== null) o.log(`density: python zygote PSS ${out.zygotePssMb.toFixed(2)} MB`);
  } finally {
    await d.stop();
  }
  return out;
}

/** Sum of PSS over every instance cgroup of a daemon (MB); used by the replay. */
export function daemonInstancesPssMb(cgroupName: string): number {
  let kb = 0;
  for (const root of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup']) {
    let ids: string[];
    try {
      ids = readdirSync(join(root, cgroupName), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      continue;
    }
    for (const id of ids) kb += cgroupMemory(cgroupName, id).pssKb;
    return kb / 1024;
  }
  return 0;
}
