/**
 * Suite "steps": where a generic start's time goes, measured below the daemon with Hearth's own
 * SandboxDriver and InstanceConnection (the pool's steps, one by one): cgroup limits, code mount,
 * the specialise message sent together with the first invocation (as the pool sends them) and its
 * reply (with the import time the shim reports), the first result after it, a second invoke.
 * Each sample is taken twice: alone, and with a spawn of the same runtime started just before,
 * as when a refill lands next to a start (the pool refilled there until commit 6a55375; it now
 * refills after the reply, but bursts of starts still overlap refills; a Node spawn runs the
 * native clone synchronously on the caller's event loop).
 */
import { join } from 'node:path';
import { SandboxDriver, type SandboxProcess } from '../../src/sandbox/sandbox-driver.js';
import { InstanceConnection } from '../../src/runtimes/instance-connection.js';
import { Cleanup, removeCgroups, removeDir } from './cleanup.js';
import type { Runtime } from './daemon-process.js';
import type { Fixtures } from './fixtures.js';
import { msSince, sleep, summarize, type Summary } from './stats.js';

export const STEP_NAMES = ['refillSpawnSync', 'setLimits', 'mountCode', 'specialized', 'shimImport', 'firstResult', 'secondInvoke', 'total'] as const;

export interface StepsPoint {
  runtime: Runtime;
  refill: boolean;
  steps: Record<string, Summary>;
}

export interface StepsResult {
  samples: number;
  idleMs: number;
  points: StepsPoint[];
}

export async function runSteps(work: string, fx: Fixtures, cleanup: Cleanup, o: { samples: number; log: (s: string) => void }): Promise<StepsResult> {
  const cgroupName = `hearth-bench-steps-${process.pid}`;
  const stateDir = join(work, 'steps-state');
  const driver = new SandboxDriver({ stateDir, cgroupName });
  cleanup.created.cgroups.push(cgroupName);
  const undo = cleanup.add('steps driver', async () => {
    await driver.stop();
    removeCgroups(cgroupName);
    removeDir(stateDir);
  });
  const idleMs = 50;
  const out: StepsResult = { samples: o.samples, idleMs, points: [] };
  const limits = { memoryMb: 256, pids: 64, cpuPercent: 100, tmpMb: 16 };
  let seq = 0;
  const spawn = (rt: Runtime): Promise<SandboxProcess> => (rt === 'node' ? driver.spawnNode(`sn${++seq}`, limits) : driver.spawnPython(`sp${++seq}`, limits));
  try {
    await driver.start();
    for (const rt of ['python', 'node'] as const) {
      const h = fx.hello[rt];
      const acc: Record<'alone' | 'refill', Record<string, number[]>> = { alone: {}, refill: {} };
      for (let i = 0; i < o.samples * 2; i++) {
        cleanup.check();
        const variant = i % 2 === 0 ? 'alone' : 'refill';
        const add = (k: string, v: number): void => void (acc[variant][k] ??= []).push(v);
        const p = await spawn(rt);
        const conn = new InstanceConnection(p.socket);
        let extra: Promise<SandboxProcess> | undefined;
        try {
          await conn.ready();
          await sleep(idleMs);
          const t0 = process.hrtime.bigint();
          if (variant === 'refill') {
            extra = spawn(rt);
            add('refillSpawnSync', msSince(t0));
          }
          let t = process.hrtime.bigint();
          p.setLimits({ memoryMb: 128 });
          add('setLimits', msSince(t));
          t = process.hrtime.bigint();
          p.mountCode(h.dir);
          add('mountCode', msSince(t));
          t = process.hrtime.bigint();
          const first = conn.specializeThenInvoke(
            { name: 'steps', handler: h.handler, memoryMb: 128, timeoutMs: 3000, env: {} },
            'i1',
            { name: 'bench' },
            3000,
          );
          const r = await first.specialized;
          add('specialized', msSince(t));
          add('shimImport', r.initMs);
          t = process.hrtime.bigint();
          await first.outcome;
          add('firstResult', msSince(t));
          add('total', msSince(t0));
          t = process.hrtime.bigint();
          await conn.invoke('i2', { name: 'bench' }, Date.now() + 3000);
          add('secondInvoke', msSince(t));
        } finally {
          conn.close();
          p.kill();
          await p.exited;
          const e = await extra?.catch(() => undefined);
          if (e) {
            e.kill();
            await e.exited;
          }
        }
      }
      for (const variant of ['alone', 'refill'] as const) {
        const steps = Object.fromEntries(Object.entries(acc[variant]).map(([k, v]) => [k, summarize(v)]));
        out.points.push({ runtime: rt, refill: variant === 'refill', steps });
        o.log(
          `steps ${rt} ${variant}: ${Object.entries(steps)
            .map(([k, s]) => `${k} ${s.median.toFixed(2)}`)
            .join(', ')}`,
        );
      }
    }
  } finally {
    await undo();
  }
  return out;
}
