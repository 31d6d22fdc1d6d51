/**
 * Suite 4: how start latency and daemon CPU grow with the number of deployed functions and of
 * live instances (Python hello functions; a fixed 1 h keep-alive keeps specialised instances).
 * At each step: the daemon's CPU while idle (% of one core over a window), warm and generic start
 * latency of a probe, and daemon CPU per warm invocation.
 */
import { readFileSync } from 'node:fs';
import type { Cleanup } from './cleanup.js';
import { DaemonProcess } from './daemon-process.js';
import type { Fixtures } from './fixtures.js';
import { sleep, summarize, type Summary } from './stats.js';

export interface ScalePoint {
  axis: 'functions' | 'instances';
  functions: number;
  liveInstances: number;
  idleCpuPercent: number;
  warm: Summary;
  generic: Summary;
  daemonCpuMsPerWarmInvocation: number;
  daemonRssMb: number;
}

export interface ScaleResult {
  deploysPerSecond: number;
  points: ScalePoint[];
}

export interface ScaleOptions {
  functions: number[];
  instances: number[];
  samples: number;
  idleSeconds: number;
  /** Warm invocations over which the daemon's CPU per invocation is measured. */
  cpuInvocations: number;
  log: (s: string) => void;
}

function rssMb(pid: number): number {
  try {
    const t = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+)/m.exec(t)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

export async function runScale(work: string, fx: Fixtures, cleanup: Cleanup, o: ScaleOptions): Promise<ScaleResult> {
  const h = fx.hello.python;
  const d = await DaemonProcess.start(work, { generic: { node: 0, python: 4 }, policy: 'fixed', keepAliveMs: 3_600_000, genericMemoryMb: 64 }, cleanup);
  const out: ScaleResult = { deploysPerSecond: 0, points: [] };
  let deployed = 0;
  let live: number;
  let seq = 0;
  let deployMs = 0;
  const deployUpTo = async (n: number): Promise<void> => {
    const t0 = Date.now();
    const from = deployed;
    while (deployed < n) {
      cleanup.check();
      await d.deploy(`s-${deployed}`, h.dir, 'python', h.handler, { memoryMb: 64 });
      deployed++;
    }
    deployMs += Date.now() - t0;
    if (deployed > from) out.deploysPerSecond = deployed / (deployMs / 1000);
  };
  const measure = async (axis: ScalePoint['axis']): Promise<void> => {
    cleanup.check();
    await d.waitGenericRefilled('python', 300, 60_000);
    await sleep(300);
    const c0 = d.cpuMs();
    const t0 = Date.now();
    await sleep(o.idleSeconds * 1000);
    const idleCpuPercent = ((d.cpuMs() - c0) / (Date.now() - t0)) * 100;
    const warm: number[] = [];
    for (let i = 0; i < o.samples; i++) warm.push((await d.invoke('s-0', { name: 'bench' })).ms);
    const c1 = d.cpuMs();
    for (let i = 0; i < o.cpuInvocations; i++) await d.invoke('s-0', { name: 'bench' });
    const cpuPerWarm = (d.cpuMs() - c1) / o.cpuInvocations;
    const generic: number[] = [];
    for (let i = 0; i < o.samples; i++) {
      const name = `sp-${++seq}`;
      await d.deploy(name, h.dir, 'python', h.handler, { memoryMb: 64 });
      await d.waitGenericRefilled('python', 150);
      const r = await d.invoke(name, { name: 'bench' });
      if (r.reply.start === 'generic') generic.push(r.ms);
      await d.remove(name);
    }
    const p: ScalePoint = {
      axis,
      functions: deployed,
      liveInstances: (await d.pool()).instances.length,
      idleCpuPercent,
      warm: summarize(warm),
      generic: summarize(generic),
      daemonCpuMsPerWarmInvocation: cpuPerWarm,
      daemonRssMb: rssMb(d.pid),
    };
    out.points.push(p);
    o.log(
      `scale ${axis}: ${p.functions} functions, ${p.liveInstances} instances: idle CPU ${idleCpuPercent.toFixed(1)}%, warm ${p.warm.median.toFixed(2)} ms, generic ${p.generic.median.toFixed(2)} ms`,
    );
  };
  try {
    await deployUpTo(1);
    await d.invoke('s-0', { name: 'bench' });
    live = 1;
    for (const n of o.functions) {
      await deployUpTo(n);
      await measure('functions');
    }
    for (const n of o.instances) {
      await deployUpTo(n);
      // One invocation each of s-live..s-(n-1): each leaves an idle specialised instance.
      while (live < n) {
        cleanup.check();
        await d.invoke(`s-${live}`, { name: 'bench' });
        live++;
      }
      await measure('instances');
    }
  } finally {
    await d.stop();
  }
  return out;
}
