/**
 * What PID 1 as a reaper costs per instance start: spawn -> the shim's `ready`, with the reaper
 * (hearth-init for Node, the zygote's reap_until fork for Python: the default) and without it
 * (`init: false`, the runtime as PID 1), interleaved in the same run on one SandboxDriver; wall time
 * and the CPU time of the instance's processes at `ready` (less noisy on a loaded machine). Root only.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-init.js [--runs 60] [--json FILE]
 *
 * Everything it creates (instances, the cgroup `hearth-bench-init-<rand>`, the state dir) is
 * removed at the end, also on SIGINT/SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceConnection } from '../src/runtimes/instance-connection.js';
import { SandboxDriver, type InstanceLimits } from '../src/sandbox/sandbox-driver.js';
import { percentile } from '../src/stats/percentile.js';
import { COUNT, numberArg, readArgs, scriptArgs, VALUE } from './cli-args.js';
import { instanceCpuMs } from './bench/daemon-process.js';

const LIMITS: InstanceLimits = { memoryMb: 256, pids: 64, cpuPercent: 0, tmpMb: 16 };
const USAGE = 'usage: node dist/scripts/bench-init.js [--runs N] [--json FILE]';
const OPTIONS = { runs: VALUE, json: VALUE };

interface Variant {
  name: string;
  runtime: 'node' | 'python';
  init: boolean;
  ms: number[];
  cpuMs: number[];
}

async function main(): Promise<void> {
  const args = scriptArgs('bench-init', USAGE, OPTIONS, ({ values: v }: ReturnType<typeof readArgs<typeof OPTIONS>>) => ({
    runs: numberArg(v.runs, '--runs', 60, COUNT),
    json: v.json,
  }));
  const runs = args.runs;
  if (process.getuid?.() !== 0) throw new Error('bench-init needs root (it builds sandboxes)');
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-init-'));
  const cgroupName = `hearth-bench-init-${randomBytes(3).toString('hex')}`;
  const driver = new SandboxDriver({ stateDir, cgroupName, eagerZygote: true });
  const stop = async (): Promise<void> => {
    await driver.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
  const onSignal = (): void => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const variants: Variant[] = [];
  for (const runtime of ['node', 'python'] as const)
    for (const init of [false, true]) variants.push({ name: `${runtime} ${init ? 'reaper' : 'no reaper'}`, runtime, init, ms: [], cpuMs: [] });
  try {
    await driver.start();
    let seq = 0;
    for (let round = 0; round < runs + 2; round++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + round) % variants.length];
        const id = `bi${++seq}`;
        const t0 = process.hrtime.bigint();
        const proc = v.runtime === 'node' ? await driver.spawnNode(id, LIMITS, { init: v.init }) : await driver.spawnPython(id, LIMITS, { init: v.init });
        const conn = new InstanceConnection(proc.socket);
        try {
          await conn.ready();
          if (round >= 2) {
            // two rounds of warm-up first
            v.ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
            v.cpuMs.push(instanceCpuMs(cgroupName, id));
          }
        } finally {
          conn.close();
          proc.kill();
          await proc.exited;
        }
      }
    }
  } finally {
    await stop();
  }
  const rows = variants.map((v) => ({
    name: v.name,
    n: v.ms.length,
    median: percentile(v.ms, 0.5),
    p99: percentile(v.ms, 0.99),
    cpuMedian: percentile(v.cpuMs, 0.5),
    cpuP99: percentile(v.cpuMs, 0.99),
  }));
  console.log('| variant | runs | spawn -> ready ms median | p99 | instance CPU at ready ms median | p99 |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  const f = (x: number): string => x.toFixed(2);
  for (const r of rows) console.log(`| ${r.name} | ${r.n} | ${f(r.median)} | ${f(r.p99)} | ${f(r.cpuMedian)} | ${f(r.cpuP99)} |`);
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(rows, null, 2));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  console.error(USAGE);
  process.exit(1);
});
