/**
 * Diagnostic: does a sandboxed runtime answer slower than the same shim run bare, or is it only
 * where the scheduler puts the processes? Starts a no-op Python function three ways (forked from
 * Hearth's zygote in a sandbox; the standalone shim in a sandbox; the bare shim, no sandbox),
 * pins this process to CPU 0 and the three runtimes to CPU `--cpu` (taskset), and times warm
 * invoke round trips through InstanceConnection, interleaved in blocks of 50. Root only.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-placement.js [--cpu 0|1] [--blocks 20]
 *
 * Everything it starts is stopped, and its cgroup and directories removed, at the end.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceConnection } from '../src/runtimes/instance-connection.js';
import { SandboxDriver, type SandboxProcess } from '../src/sandbox/sandbox-driver.js';
import { BareShim } from './bench/alternatives.js';
import { Cleanup, removeCgroups, removeDir } from './bench/cleanup.js';
import { writeFixtures } from './bench/fixtures.js';
import { msSince, summarize } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

const USAGE = 'usage: node dist/scripts/bench-placement.js [--cpu CPU-LIST] [--blocks N]';
function pin(pid: number | undefined, cpu: string): void {
  if (pid === undefined) throw new Error('no pid to pin');
  const r = spawnSync('taskset', ['-pc', cpu, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset ${cpu} ${pid}: ${r.stderr}`);
}

async function main(): Promise<void> {
  const { cpu, blocks } = scriptArgs('bench-placement', USAGE, { cpu: VALUE, blocks: VALUE }, ({ values: v }) => ({
    cpu: v.cpu ?? '0', // a CPU list as taskset takes it
    blocks: numberArg(v.blocks, '--blocks', 20, COUNT),
  }));
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-placement-'));
  const cgroupName = `hearth-bench-placement-${process.pid}`;
  const driver = new SandboxDriver({ stateDir: path.join(work, 'state'), cgroupName });
  cleanup.add('placement driver', async () => {
    await driver.stop();
    removeCgroups(cgroupName);
    removeDir(work);
  });
  try {
    const fx = writeFixtures(path.join(work, 'fx'), { bigdepModules: 1 });
    const h = fx.noop.python;
    await driver.start();
    const limits = { memoryMb: 128, pids: 64, cpuPercent: 100, tmpMb: 16 };
    const sandboxed = async (p: SandboxProcess): Promise<{ p: SandboxProcess; c: InstanceConnection }> => {
      const c = new InstanceConnection(p.socket);
      await c.ready();
      p.mountCode(h.dir);
      await c.specialize({ name: 'placement', handler: h.handler, memoryMb: 128, timeoutMs: 3000, env: {} });
      return { p, c };
    };
    const zygote = await sandboxed(await driver.spawnPython('pz', limits));
    const standalone = await sandboxed(await driver.spawnProgram('ps', limits, ['/usr/bin/python3', '-I', '-S', '/hearth/runtimes/python/shim.py']));
    const bare = new BareShim(h, cleanup);
    await bare.start();
    pin(process.pid, '0');
    for (const pid of [zygote.p.pid, standalone.p.pid, bare.pid]) pin(pid, cpu);
    let n = 0;
    const viaConn = async (c: InstanceConnection): Promise<number> => {
      const t = process.hrtime.bigint();
      const o = await c.invoke(`i${++n}`, {}, Date.now() + 3000);
      if (!o.ok) throw new Error(o.error.message);
      return msSince(t);
    };
    const kinds: Record<string, () => Promise<number>> = {
      'zygote, sandboxed': () => viaConn(zygote.c),
      'standalone, sandboxed': () => viaConn(standalone.c),
      'bare shim': () => bare.invoke({}),
    };
    const names = Object.keys(kinds);
    const samples: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
    for (let i = 0; i < 1000; i++) for (const k of names) await kinds[k]();
    for (let b = 0; b < blocks; b++) {
      for (let j = 0; j < names.length; j++) {
        const k = names[(b + j) % names.length];
        for (let i = 0; i < 50; i++) samples[k].push(await kinds[k]());
      }
    }
    process.stdout.write(`this process on CPU 0, runtimes on CPU ${cpu}; ${blocks} blocks of 50 per runtime, warm invoke round trip (ms)\n\n`);
    process.stdout.write('| runtime | n | median | p99 |\n| --- | ---: | ---: | ---: |\n');
    for (const k of names) {
      const s = summarize(samples[k]);
      process.stdout.write(`| ${k} | ${s.n} | ${s.median.toFixed(4)} | ${s.p99.toFixed(4)} |\n`);
    }
    zygote.c.close();
    standalone.c.close();
    for (const x of [zygote.p, standalone.p]) {
      x.kill();
      await x.exited;
    }
    bare.stop();
  } finally {
    await cleanup.runAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-placement: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
