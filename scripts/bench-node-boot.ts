/**
 * Boot time of Hearth's sandboxed Node runtime with and without a V8 startup snapshot and with
 * cheap Node/V8 flags: every variant is a SandboxDriver whose `nodeFlags` differ, and every sample
 * is `spawnNode` -> the shim's `ready` frame, through InstanceConnection. Root only.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-node-boot.js [--runs 40] [--warm 5] [--invokes 200] [--only a,b] [--json FILE]
 *
 * Per variant it reports: spawn->ready wall time and the instance's CPU time at `ready` (summed
 * over its threads from /proc/PID/task/TID/schedstat; much less noisy than wall time on a shared
 * machine), the CPU an instance has used once its post-`ready` warm-up is over, the PSS and private
 * memory of an idle generic instance (/proc/PID/smaps_rollup), specialise + first invoke, and
 * warm invoke round trips (to catch flags that cut boot but slow the warm path).
 * Samples interleave variants (the order rotates each round), so load changes hit all alike.
 *
 * Snapshot blobs are built into a temporary directory bound read-only at /hearth/bench:
 *   snapshot       src/runtimes/node/snapshot-entry.js (what `npm run build:node-snapshot` builds)
 *   snapshot-full  also compiles shim.js into the snapshot (vm.compileFunction with the
 *                  experimental main-context import() loader): the most a snapshot can skip;
 *                  measured only, it is not a supported configuration.
 * Everything it creates (instances, cgroups `hearth-bench-<rand>-<i>`, temp dirs) is removed at
 * the end, also on SIGINT/SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceConnection } from '../src/runtimes/instance-connection.js';
import { SandboxDriver, type InstanceLimits } from '../src/sandbox/sandbox-driver.js';
import { percentile } from '../src/stats/percentile.js';
import { COUNT, numberArg, readArgs, scriptArgs, VALUE } from './cli-args.js';

const repoRoot = path.resolve(__dirname, '..', '..');
const LIMITS: InstanceLimits = { memoryMb: 256, pids: 64, cpuPercent: 0, tmpMb: 16 };
const BENCH_DIR_IN_SANDBOX = '/hearth/bench';

interface Variant {
  name: string;
  flags: string[];
  note: string;
}

const VARIANTS: Variant[] = [
  { name: 'plain', flags: [], note: 'node shim.js (cold starts)' },
  { name: 'no-lazy', flags: ['--no-lazy'], note: 'generic instances: shim and loaders compiled eagerly, function code lazily' },
  {
    name: 'snapshot',
    flags: ['--snapshot-blob', `${BENCH_DIR_IN_SANDBOX}/node-shim.blob`],
    note: 'built-ins the shim uses preloaded; shim run by the CJS loader',
  },
  {
    name: 'snapshot-full',
    flags: ['--snapshot-blob', `${BENCH_DIR_IN_SANDBOX}/node-shim-full.blob`],
    note: 'also the shim compiled into the snapshot (measurement only)',
  },
  { name: 'pool-size-1', flags: ['--v8-pool-size=1'], note: 'one V8 platform worker thread instead of 4' },
  { name: 'no-wasm-trap', flags: ['--disable-wasm-trap-handler'], note: '' },
  { name: 'pool-1+no-wasm-trap', flags: ['--v8-pool-size=1', '--disable-wasm-trap-handler'], note: '' },
  { name: 'semi-space-1', flags: ['--max-semi-space-size=1'], note: '1 MiB young generation semi-spaces' },
  { name: 'no-fetch', flags: ['--no-experimental-fetch'], note: '' },
  { name: 'jitless', flags: ['--jitless'], note: 'interpreter only' },
  { name: 'no-rehash', flags: ['--no-rehash-snapshot'], note: "UNSAFE: keeps the snapshot's fixed hash seed (HashDoS); reference only" },
];

interface Args {
  runs: number;
  warm: number;
  invokes: number;
  only: string[] | undefined;
  json: string | undefined;
}

const USAGE = 'usage: node dist/scripts/bench-node-boot.js [--runs N] [--warm N] [--invokes N] [--only VARIANT,...] [--json FILE]';
const OPTIONS = { runs: VALUE, warm: VALUE, invokes: VALUE, only: VALUE, json: VALUE };

function toArgs({ values: v }: ReturnType<typeof readArgs<typeof OPTIONS>>): Args {
  return {
    runs: numberArg(v.runs, '--runs', 40, COUNT),
    warm: numberArg(v.warm, '--warm', 5, COUNT),
    invokes: numberArg(v.invokes, '--invokes', 200, COUNT),
    only: v.only?.split(','),
    json: v.json,
  };
}

const pct = percentile;

/**
 * Spawns one instance of `driver`, runs `use` on it, and always ends it; a failure of `use` is
 * recorded in `s.failures` under `phase`, not thrown (the other samples go on).
 */
async function withInstance(
  driver: SandboxDriver,
  id: string,
  s: Samples,
  phase: string,
  use: (proc: Awaited<ReturnType<SandboxDriver['spawnNode']>>, conn: InstanceConnection) => Promise<void>,
): Promise<void> {
  const proc = await driver.spawnNode(id, LIMITS);
  const conn = new InstanceConnection(proc.socket);
  try {
    await use(proc, conn);
  } catch (e) {
    s.failures.push(`${phase}: ${(e as Error).message}`);
  } finally {
    conn.close();
    proc.kill();
    await proc.exited;
  }
}

function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The Node process of an instance: the child of its PID 1 (hearth-init), or the pid itself without one. */
function runtimePid(pid: number): number {
  const first = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
  return first ? Number(first) : pid;
}

/** CPU time (ms) used so far by every thread of an instance's Node process (schedstat: ns on CPU). */
function cpuMs(instancePid: number): number {
  const pid = runtimePid(instancePid);
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread ended
    }
  }
  return ns / 1e6;
}

/** PSS and private (clean + dirty) memory of a process, in MiB. */
function memory(instancePid: number): { pss: number; priv: number } {
  const pid = runtimePid(instancePid);
  const kb: Record<string, number> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) kb[m[1]] = Number(m[2]);
  }
  return { pss: (kb['Pss'] ?? NaN) / 1024, priv: ((kb['Private_Clean'] ?? 0) + (kb['Private_Dirty'] ?? 0)) / 1024 };
}

/** The snapshot-full entry: shim.js compiled into the heap under its sandbox path. */
function fullEntry(shimPath: string): string {
  return `'use strict';
for (const id of ['net', 'stream', 'fs', 'path', 'url', 'string_decoder']) require(id);
const vm = require('vm');
const SHIM = '/hearth/runtimes/node/shim.js';
const src = require('fs').readFileSync(${JSON.stringify(shimPath)}, 'utf8');
const fn = vm.compileFunction(src, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: SHIM, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
const module_ = { exports: {} };
fn.call(module_.exports, module_.exports, require, module_, SHIM, '/hearth/runtimes/node');
`;
}

function buildBlob(out: string, entry: string): void {
  const script = path.join(repoRoot, 'scripts', 'build-node-snapshot.js');
  const r = spawnSync(process.execPath, [script, '--out', out, '--entry', entry], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`snapshot build failed: ${r.stderr || r.stdout}`);
}

interface Samples {
  bootMs: number[];
  bootCpuMs: number[];
  warmCpuMs: number[];
  pssMb: number[];
  privMb: number[];
  firstMs: number[];
  invokeMs: number[];
  failures: string[];
}

const newSamples = (): Samples => ({ bootMs: [], bootCpuMs: [], warmCpuMs: [], pssMb: [], privMb: [], firstMs: [], invokeMs: [], failures: [] });

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench-node-boot needs root (it starts sandboxes)');
  const args = scriptArgs('bench-node-boot', USAGE, OPTIONS, toArgs);
  const variants = VARIANTS.filter((v) => !args.only || args.only.includes(v.name));
  if (variants.length === 0) throw new Error(`--only matched nothing; variants: ${VARIANTS.map((v) => v.name).join(', ')}`);

  const rand = randomBytes(3).toString('hex');
  const temp: string[] = [];
  const drivers: SandboxDriver[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      for (const d of drivers) await d.stop().catch((e: unknown) => process.stderr.write(`stop failed: ${String(e)}\n`));
      for (const dir of temp) fs.rmSync(dir, { recursive: true, force: true });
    })());
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(sig, () => void cleanup().finally(() => process.exit(code)));
  }

  try {
    const benchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-node-'));
    temp.push(benchDir);
    fs.chmodSync(benchDir, 0o755);
    const names = new Set(variants.map((v) => v.name));
    if (names.has('snapshot')) buildBlob(path.join(benchDir, 'node-shim.blob'), path.join(repoRoot, 'src', 'runtimes', 'node', 'snapshot-entry.js'));
    if (names.has('snapshot-full')) {
      const entry = path.join(benchDir, 'full-entry.js');
      fs.writeFileSync(entry, fullEntry(path.join(repoRoot, 'src', 'runtimes', 'node', 'shim.js')));
      buildBlob(path.join(benchDir, 'node-shim-full.blob'), entry);
    }
    const codeDir = path.join(benchDir, 'code');
    fs.mkdirSync(codeDir, { mode: 0o755 });
    fs.writeFileSync(path.join(codeDir, 'index.js'), 'exports.handler = async (event) => ({ n: event.n });\n', { mode: 0o644 });

    for (const [i, v] of variants.entries()) {
      const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-state-'));
      temp.push(stateDir);
      const d = new SandboxDriver({
        stateDir,
        cgroupName: `hearth-bench-${rand}-${i}`,
        nodeFlags: v.flags,
        extraBinds: [{ src: benchDir, dst: BENCH_DIR_IN_SANDBOX }],
      });
      drivers.push(d);
      await d.start();
    }

    const samples = variants.map(newSamples);
    let seq = 0;
    const order = (round: number): number[] => variants.map((_, i) => (i + round) % variants.length);

    // 1. Boot: spawnNode -> ready, interleaved.
    process.stderr.write(`boot: ${args.runs} rounds x ${variants.length} variants\n`);
    for (let round = 0; round < args.runs; round++) {
      for (const i of order(round)) {
        const s = samples[i];
        const t0 = process.hrtime.bigint();
        await withInstance(drivers[i], `b${++seq}`, s, 'boot', async (proc, conn) => {
          await conn.ready();
          s.bootMs.push(msSince(t0));
          s.bootCpuMs.push(cpuMs(proc.pid));
        });
      }
    }

    // 2. Idle generic instance (warm-up done): CPU, memory; then specialise, first and warm invokes.
    process.stderr.write(`warm: ${args.warm} instances x ${variants.length} variants, ${args.invokes} invokes each\n`);
    for (let round = 0; round < args.warm; round++) {
      for (const i of order(round)) {
        const s = samples[i];
        await withInstance(drivers[i], `w${++seq}`, s, 'warm', async (proc, conn) => {
          await conn.ready();
          await sleep(400);
          s.warmCpuMs.push(cpuMs(proc.pid));
          const mem = memory(proc.pid);
          s.pssMb.push(mem.pss);
          s.privMb.push(mem.priv);
          proc.mountCode(codeDir);
          const t0 = process.hrtime.bigint();
          await conn.specialize({ name: 'bench', handler: 'index.handler', memoryMb: 256, timeoutMs: 3000, env: {} });
          const first = await conn.invoke('i0', { n: 0 }, Date.now() + 3000);
          s.firstMs.push(msSince(t0));
          if (!first.ok || (first.result as { n?: number }).n !== 0) throw new Error(`bad first result ${JSON.stringify(first)}`);
          for (let k = 1; k <= args.invokes; k++) {
            const t = process.hrtime.bigint();
            const out = await conn.invoke(`i${k}`, { n: k }, Date.now() + 3000);
            s.invokeMs.push(msSince(t));
            if (!out.ok) throw new Error(`invoke failed: ${JSON.stringify(out.error)}`);
          }
        });
      }
    }

    const f = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
    const lines = [
      `Node ${process.version} (driver), /usr/bin/node in sandboxes; ${os.cpus().length} CPUs; load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} at the end`,
      `${args.runs} boots per variant (interleaved), ${args.warm} idle instances per variant, ${args.invokes} warm invokes each`,
      '',
      '| variant | flags | boot ms median | boot ms p90 | CPU at ready ms median | p90 | CPU once warm ms | PSS idle MiB | private MiB | specialise + 1st invoke ms | warm invoke ms median | p90 |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ];
    for (const [i, v] of variants.entries()) {
      const s = samples[i];
      lines.push(
        `| ${v.name} | ${v.flags.length ? `\`${v.flags.join(' ')}\`` : ''} | ${f(pct(s.bootMs, 0.5))} | ${f(pct(s.bootMs, 0.9))} | ${f(pct(s.bootCpuMs, 0.5))} | ${f(pct(s.bootCpuMs, 0.9))} | ${f(pct(s.warmCpuMs, 0.5))} | ${f(pct(s.pssMb, 0.5))} | ${f(pct(s.privMb, 0.5))} | ${f(pct(s.firstMs, 0.5), 2)} | ${f(pct(s.invokeMs, 0.5), 3)} | ${f(pct(s.invokeMs, 0.9), 3)} |`,
      );
    }
    lines.push('');
    for (const v of variants) if (v.note) lines.push(`- ${v.name}: ${v.note}`);
    for (const [i, v] of variants.entries()) {
      const fails = samples[i].failures;
      if (fails.length) lines.push('', `${v.name}: ${fails.length} failure(s), first: ${fails[0]}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    if (args.json) {
      fs.writeFileSync(args.json, JSON.stringify({ at: new Date().toISOString(), args, variants: variants.map((v, i) => ({ ...v, ...samples[i] })) }, null, 1));
    }
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-node-boot: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
