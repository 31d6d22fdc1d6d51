/** The shape of results.json and the machine description written with it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { DensityResult } from './density.js';
import type { Headline } from './headline.js';
import type { ReplayResult } from './replay.js';
import type { ScaleResult } from './scale.js';
import type { StartLatencyResult } from './start-latency.js';
import type { StepsResult } from './steps.js';
import type { ThroughputResult } from './throughput.js';

export const SUITES = ['start', 'steps', 'throughput', 'density', 'scale', 'replay'] as const;
export type Suite = (typeof SUITES)[number];
export type Mode = 'smoke' | 'quick' | 'full';

export interface MachineInfo {
  cpu: string;
  cores: number;
  kernel: string;
  memoryMb: number;
  os: string;
  node: string;
  python: string;
  bwrap: string;
  crun: string;
  cgroups: string;
}

export interface BenchResults {
  version: 1;
  mode: Mode;
  command: string;
  startedAt: string;
  finishedAt: string;
  /** The key figures under stable keys (headline.ts); absent in results written before it existed. */
  headline?: Headline;
  machine: MachineInfo;
  fixtures?: { bigdep: Record<'node' | 'python', { bytes: number; files: number }> };
  suites: {
    start?: StartLatencyResult;
    steps?: StepsResult;
    throughput?: ThroughputResult;
    density?: DensityResult;
    scale?: ScaleResult;
    replay?: ReplayResult;
  };
  /** Cgroup names and directories the run created (all removed at its end). */
  created?: { cgroups: string[]; dirs: string[] };
  /** Suites that failed: their error. */
  errors: Record<string, string>;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')[0]
      .trim();
  } catch {
    return 'not installed';
  }
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const mem = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  let os = 'unknown';
  try {
    os = /^PRETTY_NAME="?([^"\n]+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* keep */
  }
  let cgroups = 'v1';
  try {
    readFileSync('/sys/fs/cgroup/cgroup.controllers');
    cgroups = 'v2';
  } catch {
    try {
      readFileSync('/sys/fs/cgroup/unified/cgroup.controllers');
      cgroups = 'v1 + hybrid v2 (/sys/fs/cgroup/unified)';
    } catch {
      /* v1 only */
    }
  }
  return {
    cpu: model,
    cores,
    kernel: release(),
    memoryMb: Math.round(mem / 1024),
    os,
    node: process.version,
    python: firstLine('/usr/bin/python3', ['--version']),
    bwrap: firstLine('/usr/bin/bwrap', ['--version']),
    crun: firstLine('/usr/bin/crun', ['--version']),
    cgroups,
  };
}
