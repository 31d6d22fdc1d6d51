/**
 * What the user namespace per function costs (docs/sandbox.md, Identity): for Node and Python, with
 * and without `userns`, interleaved in the same run on two SandboxDrivers (same machine, same load):
 * - new instance: spawn -> the shim's `ready` (the entry's unshare(CLONE_NEWUSER) is in here);
 * - generic start: what handing a ready generic instance to a function costs before its first
 *   invocation: mountCode, setIdentity (the daemon writes setgroups, uid_map, gid_map; userns
 *   only), `specialize` -> `specialized` (the shim's setresgid/setresuid(0) and capability drop,
 *   then the import of a small handler).
 * Plus the CPU time of the instance's processes at `ready` (steadier than wall time on a loaded machine).
 * Root only.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-userns.js [--runs 60] [--json FILE]
 *
 * Everything it creates (instances, the cgroups `hearth-bench-userns-*`, the state dirs) is removed
 * at the end, also on SIGINT/SIGTERM.
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
const USAGE = 'usage: node dist/scripts/bench-userns.js [--runs N] [--json FILE]';
const OPTIONS = { runs: VALUE, json: VALUE };
/** The pool id and the one function id the userns variant maps root to (unused on the host: checked). */
const POOL_ID = 399_000;
const FN_ID = 399_001;
const CODE = path.resolve(__dirname, '..', '..', 'test', 'integration', 'fixtures', 'identity');

interface Variant {
  name: string;
  runtime: 'node' | 'python';
  userns: boolean;
  spawnMs: number[];
  cpuMs: number[];
  specialiseMs: number[];
  /** setIdentity alone (the daemon's three /proc writes). */
  mapMs: number[];
  /** The shim's own `initMs` (from the specialise message to the handler loaded: the uid switch is in it). */
  initMs: number[];
}

function idsInUse(lo: number, hi: number): string | undefined {
  for (const file of ['/etc/passwd', '/etc/group']) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const id = Number(line.split(':')[2]);
      if (id >= lo && id <= hi) return `${file} has id ${id}`;
    }
  }
  return undefined;
}

async function main(): Promise<void> {
  const args = scriptArgs('bench-userns', USAGE, OPTIONS, ({ values: v }: ReturnType<typeof readArgs<typeof OPTIONS>>) => ({
    runs: numberArg(v.runs, '--runs', 60, COUNT),
    json: v.json,
  }));
  if (process.getuid?.() !== 0) throw new Error('bench-userns needs root (it builds sandboxes)');
  const used = idsInUse(POOL_ID, FN_ID);
  if (used) throw new Error(`bench-userns maps ids ${POOL_ID}-${FN_ID}, but ${used}`);
  const dirs: string[] = [];
  const drivers = new Map<boolean, SandboxDriver>();
  const cgroups = new Map<boolean, string>();
  for (const userns of [false, true]) {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-userns-'));
    dirs.push(stateDir);
    const cgroupName = `hearth-bench-userns-${randomBytes(3).toString('hex')}`;
    cgroups.set(userns, cgroupName);
    drivers.set(userns, new SandboxDriver({ stateDir, cgroupName, eagerZygote: true, userns, ...(userns ? { uid: POOL_ID, gid: POOL_ID } : {}) }));
  }
  const stop = async (): Promise<void> => {
    for (const d of drivers.values()) await d.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  };
  const onSignal = (): void => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const variants: Variant[] = [];
  for (const runtime of ['node', 'python'] as const)
    for (const userns of [false, true])
      variants.push({
        name: `${runtime} ${userns ? 'userns' : 'no userns'}`,
        runtime,
        userns,
        spawnMs: [],
        cpuMs: [],
        specialiseMs: [],
        mapMs: [],
        initMs: [],
      });
  try {
    for (const d of drivers.values()) await d.start();
    let seq = 0;
    for (let round = 0; round < args.runs + 2; round++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + round) % variants.length];
        const driver = drivers.get(v.userns)!;
        const id = `bu${++seq}`;
        const t0 = process.hrtime.bigint();
        const proc = v.runtime === 'node' ? await driver.spawnNode(id, LIMITS) : await driver.spawnPython(id, LIMITS);
        const conn = new InstanceConnection(proc.socket);
        try {
          await conn.ready();
          const t1 = process.hrtime.bigint();
          const cpu = instanceCpuMs(cgroups.get(v.userns)!, id);
          proc.mountCode(CODE);
          const tm = process.hrtime.bigint();
          const mapped = proc.setIdentity(FN_ID, FN_ID);
          const mapMs = Number(process.hrtime.bigint() - tm) / 1e6;
          if (mapped !== v.userns) throw new Error(`${v.name}: setIdentity returned ${mapped}`);
          const handler = v.runtime === 'node' ? 'index.identity' : 'app.identity';
          const { initMs } = await conn.specialize({ name: 'bench', handler, memoryMb: 256, timeoutMs: 10_000, env: {}, ...(mapped ? { userns: true } : {}) });
          const t2 = process.hrtime.bigint();
          if (round >= 2) {
            // two rounds of warm-up first
            v.spawnMs.push(Number(t1 - t0) / 1e6);
            v.cpuMs.push(cpu);
            v.mapMs.push(mapMs);
            v.initMs.push(initMs);
            v.specialiseMs.push(Number(t2 - t1) / 1e6);
          }
          if (round === 2) {
            // once per variant: the handler runs as whom it should
            const out = await conn.invoke('check', {}, Date.now() + 10_000);
            const uid = (out as { result?: { uidMap?: string } }).result?.uidMap?.trim().split(/\s+/)[1];
            if (v.userns && uid !== String(FN_ID)) throw new Error(`${v.name}: handler not mapped to ${FN_ID}: ${JSON.stringify(out)}`);
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
    n: v.spawnMs.length,
    spawnMedian: percentile(v.spawnMs, 0.5),
    spawnP99: percentile(v.spawnMs, 0.99),
    cpuMedian: percentile(v.cpuMs, 0.5),
    cpuP99: percentile(v.cpuMs, 0.99),
    specialiseMedian: percentile(v.specialiseMs, 0.5),
    specialiseP99: percentile(v.specialiseMs, 0.99),
    mapMedian: percentile(v.mapMs, 0.5),
    initMedian: percentile(v.initMs, 0.5),
  }));
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    '| variant | runs | new instance: spawn -> ready ms median | p99 | instance CPU at ready ms median | p99 | generic start: mount + map + specialise ms median | p99 | of which map ms median | shim initMs median |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const f = (x: number): string => x.toFixed(2);
  for (const r of rows)
    console.log(
      `| ${r.name} | ${r.n} | ${f(r.spawnMedian)} | ${f(r.spawnP99)} | ${f(r.cpuMedian)} | ${f(r.cpuP99)} | ${f(r.specialiseMedian)} | ${f(r.specialiseP99)} | ${r.mapMedian.toFixed(3)} | ${f(r.initMedian)} |`,
    );
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(rows, null, 2));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  console.error(USAGE);
  process.exit(1);
});
