/**
 * How long making a Node instance blocks the daemon's event loop: the addon's spawn made on the
 * JS thread (`spawn`, the clone's CLONE_VFORK sleep is the loop's) against the same spawn made on
 * the libuv pool (`spawnAsync`, what the driver uses), interleaved in one process, one
 * SandboxDriver each (the first given a binding whose spawnAsync is the synchronous spawn).
 * Per start: how long the spawnNode call itself holds the loop (its synchronous part: cgroup,
 * socketpair, the addon's argument work, and for the old path the clone until the child's execve);
 * the longest gap between two turns of the event loop from the call until the shim says `ready`
 * (a chain of setImmediate timestamps; on a loaded machine preemption of this process counts too);
 * and spawn -> ready. Root only.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-spawn-block.js [--runs 60] [--json FILE]
 *
 * Everything it creates (instances, the cgroups `hearth-bench-sb-<rand>-*`, the state dirs) is
 * removed at the end, also on SIGINT/SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceConnection } from '../src/runtimes/instance-connection.js';
import { binding, nativeDir, type NativeBinding } from '../src/sandbox/binding.js';
import { SandboxDriver, type InstanceLimits } from '../src/sandbox/sandbox-driver.js';
import { percentile } from '../src/stats/percentile.js';
import { COUNT, numberArg, readArgs, scriptArgs, VALUE } from './cli-args.js';

const LIMITS: InstanceLimits = { memoryMb: 256, pids: 64, cpuPercent: 0, tmpMb: 16 };
const USAGE = 'usage: node dist/scripts/bench-spawn-block.js [--runs N] [--json FILE]';
const OPTIONS = { runs: VALUE, json: VALUE };

/** Records the longest gap between consecutive event-loop turns until stopped. */
function loopGapMonitor(): { stop: () => number } {
  let last = process.hrtime.bigint();
  let max = 0n;
  let on = true;
  const turn = (): void => {
    const now = process.hrtime.bigint();
    if (now - last > max) max = now - last;
    last = now;
    if (on) setImmediate(turn);
  };
  setImmediate(turn);
  return {
    stop: () => {
      on = false;
      const now = process.hrtime.bigint();
      if (now - last > max) max = now - last;
      return Number(max) / 1e6;
    },
  };
}

interface Variant {
  name: 'spawn on the loop (before)' | 'spawnAsync (now)';
  driver: SandboxDriver;
  blockMs: number[];
  callMs: number[];
  readyMs: number[];
}

async function main(): Promise<void> {
  const args = scriptArgs('bench-spawn-block', USAGE, OPTIONS, ({ values: v }: ReturnType<typeof readArgs<typeof OPTIONS>>) => ({
    runs: numberArg(v.runs, '--runs', 60, COUNT),
    json: v.json,
  }));
  if (process.getuid?.() !== 0) throw new Error('bench-spawn-block needs root (it builds sandboxes)');
  const real = binding();
  const onLoop: NativeBinding = Object.assign(Object.create(real) as NativeBinding, {
    spawnAsync: (o: Parameters<NativeBinding['spawn']>[0]) => Promise.resolve(real.spawn(o)),
  });
  const tag = randomBytes(3).toString('hex');
  const dirs: string[] = [];
  const makeDriver = (name: string, b: NativeBinding): SandboxDriver => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `hearth-bench-sb-${name}-`));
    dirs.push(stateDir);
    return new SandboxDriver({ stateDir, cgroupName: `hearth-bench-sb-${tag}-${name}`, binding: b, nativeDir: nativeDir() });
  };
  const variants: Variant[] = [
    { name: 'spawn on the loop (before)', driver: makeDriver('sync', onLoop), blockMs: [], callMs: [], readyMs: [] },
    { name: 'spawnAsync (now)', driver: makeDriver('async', real), blockMs: [], callMs: [], readyMs: [] },
  ];
  const stop = async (): Promise<void> => {
    for (const v of variants) await v.driver.stop().catch(() => undefined);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
  const onSignal = (): void => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const v of variants) await v.driver.start();
    let seq = 0;
    for (let round = 0; round < args.runs + 2; round++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + round) % variants.length];
        await new Promise((r) => setTimeout(r, 20)); // the previous instance's teardown, off the measure
        const id = `sb${++seq}`;
        const gap = loopGapMonitor();
        const t0 = process.hrtime.bigint();
        const pending = v.driver.spawnNode(id, LIMITS);
        const callMs = Number(process.hrtime.bigint() - t0) / 1e6; // the call's synchronous part: the loop is held
        const proc = await pending;
        const conn = new InstanceConnection(proc.socket);
        try {
          await conn.ready();
          const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
          const blockMs = gap.stop();
          if (round >= 2) {
            v.blockMs.push(blockMs);
            v.callMs.push(callMs);
            v.readyMs.push(readyMs);
          }
        } finally {
          gap.stop();
          conn.close();
          proc.kill();
          await proc.exited;
        }
      }
    }
  } finally {
    await stop();
  }
  const f = (x: number): string => x.toFixed(2);
  const rows = variants.map((v) => ({
    variant: v.name,
    n: v.blockMs.length,
    callMedian: percentile(v.callMs, 0.5),
    callP99: percentile(v.callMs, 0.99),
    blockMedian: percentile(v.blockMs, 0.5),
    blockP99: percentile(v.blockMs, 0.99),
    readyMedian: percentile(v.readyMs, 0.5),
    readyP99: percentile(v.readyMs, 0.99),
  }));
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    '| variant | starts | spawnNode call holds the loop, median ms | p99 | longest loop gap until ready, median ms | p99 | spawn -> ready, median ms | p99 |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(
      `| ${r.variant} | ${r.n} | ${f(r.callMedian)} | ${f(r.callP99)} | ${f(r.blockMedian)} | ${f(r.blockP99)} | ${f(r.readyMedian)} | ${f(r.readyP99)} |`,
    );
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(rows, null, 2));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  console.error(USAGE);
  process.exit(1);
});
