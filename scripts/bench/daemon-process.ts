/**
 * A Hearth daemon run as a child process (`node dist/src/cli/main.js daemon --config F`) on its own
 * socket, state dir and cgroup, and a client of its control socket in this process: the client
 * and the daemon are separate processes, as for a user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { packDirectory } from '../../src/cli/pack.js';
import type { ShimRuntime as Runtime } from '../../src/runtimes/types.js';
import { Cleanup, killPid, removeCgroups, removeDir } from './cleanup.js';
import { LOOP_PROBE_ENV, LoopProbeClient } from './loop-probe.js';
import { msSince, sleep } from './stats.js';

export const repoRoot = join(__dirname, '..', '..', '..');

/** The benchmarks measure the shim runtimes (node, python); the provided runtime has its own script. */
export type { ShimRuntime as Runtime } from '../../src/runtimes/types.js';

export interface DaemonSettings {
  generic: Record<Runtime, number>;
  policy?: 'fixed' | 'model';
  keepAliveMs?: number;
  memoryBudgetMb?: number;
  genericMemoryMb?: number;
  /** The daemon's replyPollUs (default: the daemon's own default). */
  replyPollUs?: number;
  logLevel?: string;
  /** The daemon's --metrics-listen (HOST:PORT); default none. */
  metricsListen?: string;
  /** Preload the bench-only event-loop probe (scripts/bench/loop-probe.ts; idle until a window opens). */
  loopProbe?: boolean;
  /** More config keys (e.g. `nats` and `hostId` for many hosts). */
  extra?: Record<string, unknown>;
}

export interface InvokeReply {
  result: unknown;
  error: { type: string; message: string } | null;
  start: 'warm' | 'generic' | 'cold';
  initMs: number;
  durationMs: number;
  instance: string;
}

export interface PoolView {
  instances: Array<{ id: string; runtime: Runtime; function: string | null; state: 'generic' | 'idle' | 'busy'; pid: number; createdAt: string }>;
}

export class DaemonProcess {
  readonly client: ControlClient;
  readonly startedAt = Date.now();
  private exited: Promise<number | null>;
  private undo: () => Promise<void>;
  private readonly packed = new Map<string, string>();

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly socket: string,
    readonly cgroupName: string,
    readonly settings: DaemonSettings,
    cleanup: Cleanup,
  ) {
    this.client = new ControlClient(socket);
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
    this.undo = cleanup.add(`daemon ${child.pid}`, () => this.kill());
  }

  /** Starts a daemon under `workDir` and waits until its socket answers. */
  static async start(workDir: string, settings: DaemonSettings, cleanup: Cleanup): Promise<DaemonProcess> {
    cleanup.check();
    const tag = randomBytes(3).toString('hex');
    const dir = join(workDir, `daemon-${tag}`);
    mkdirSync(dir, { recursive: true });
    const socket = join(dir, 'hearth.sock');
    const cgroupName = `hearth-bench-${tag}`;
    cleanup.created.cgroups.push(cgroupName);
    cleanup.created.dirs.push(dir);
    const cfg = {
      socket,
      stateDir: join(dir, 'state'),
      cgroupName,
      logLevel: settings.logLevel ?? 'warn',
      generic: settings.generic,
      policy: settings.policy ?? 'fixed',
      keepAliveMs: settings.keepAliveMs ?? 600_000,
      memoryBudgetMb: settings.memoryBudgetMb ?? 1_000_000,
      ...(settings.genericMemoryMb ? { genericMemoryMb: settings.genericMemoryMb } : {}),
      ...(settings.replyPollUs !== undefined ? { replyPollUs: settings.replyPollUs } : {}),
      ...(settings.metricsListen !== undefined ? { metricsListen: settings.metricsListen } : {}),
      ...(settings.extra ?? {}),
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
    const log = openSync(join(dir, 'daemon.log'), 'a');
    const probe = settings.loopProbe ? ['--require', join(__dirname, 'loop-probe.js')] : [];
    const child = spawn(process.execPath, [...probe, join(repoRoot, 'dist/src/cli/main.js'), 'daemon', '--config', join(dir, 'config.json')], {
      stdio: ['ignore', log, log],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...(settings.loopProbe ? { [LOOP_PROBE_ENV]: join(dir, 'loop-probe.sock') } : {}) },
    });
    closeSync(log);
    const d = new DaemonProcess(child, dir, socket, cgroupName, settings, cleanup);
    try {
      await d.waitHealthy(30_000);
    } catch (err) {
      await d.stop();
      throw err;
    }
    return d;
  }

  private probeClient: Promise<LoopProbeClient> | undefined;

  /** The daemon's loop probe (started with `loopProbe: true`), connected on first use. */
  loopProbe(): Promise<LoopProbeClient> {
    if (!this.settings.loopProbe) return Promise.reject(new Error('this daemon was started without the loop probe'));
    this.probeClient ??= LoopProbeClient.connect(join(this.dir, 'loop-probe.sock'));
    return this.probeClient;
  }

  get pid(): number {
    return this.child.pid!;
  }

  private async waitHealthy(ms: number): Promise<void> {
    const end = Date.now() + ms;
    let code: number | null | undefined;
    void this.exited.then((c) => (code = c));
    for (;;) {
      if (code !== undefined) throw new Error(`daemon exited with ${code}: ${this.logTail()}`);
      try {
        const r = await this.client.request('GET', '/v1/health');
        if (r.status === 200) return;
      } catch {
        /* not up yet */
      }
      if (Date.now() > end) throw new Error(`daemon did not answer within ${ms} ms: ${this.logTail()}`);
      await sleep(50);
    }
  }

  logTail(): string {
    try {
      return readFileSync(join(this.dir, 'daemon.log'), 'utf8').slice(-2000);
    } catch {
      return '';
    }
  }

  /** Deploys `codeDir` (packed once per directory) as `name`. */
  async deploy(name: string, codeDir: string, runtime: Runtime, handler: string, extra: Record<string, unknown> = {}): Promise<void> {
    let code = this.packed.get(codeDir);
    if (!code) {
      code = (await packDirectory(codeDir)).toString('base64');
      this.packed.set(codeDir, code);
    }
    await this.client.call('PUT', `/v1/functions/${name}`, { runtime, handler, code, ...extra });
  }

  async remove(name: string): Promise<void> {
    await this.client.call('DELETE', `/v1/functions/${name}`);
  }

  /** Deletes `name` and waits until its instances' processes are gone (reaped), polling every 5 ms. */
  async removeAndWait(name: string, timeoutMs = 10_000): Promise<void> {
    const pids = (await this.pool()).instances.filter((i) => i.function === name).map((i) => i.pid);
    await this.remove(name);
    const end = Date.now() + timeoutMs;
    while (pids.some((pid) => existsSync(`/proc/${pid}`))) {
      if (Date.now() > end) throw new Error(`instances of ${name} still alive after ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /** One synchronous invoke; `ms` is the client-side round trip. Throws if the function failed. */
  async invoke(name: string, event: unknown = {}): Promise<{ ms: number; reply: InvokeReply }> {
    const t0 = process.hrtime.bigint();
    const reply = await this.client.call<InvokeReply>('POST', `/v1/functions/${name}/invoke`, event);
    const ms = msSince(t0);
    if (reply.error) throw new Error(`${name}: ${reply.error.type}: ${reply.error.message}`);
    return { ms, reply };
  }

  pool(): Promise<PoolView> {
    return this.client.call<PoolView>('GET', '/v1/pool');
  }

  /** Generic instances of `runtime`, and how many of them were created at least `minAgeMs` ago. */
  async genericCount(runtime: Runtime, minAgeMs = 0): Promise<number> {
    const now = Date.now();
    return (await this.pool()).instances.filter((i) => i.runtime === runtime && i.state === 'generic' && now - Date.parse(i.createdAt) >= minAgeMs).length;
  }

  private maxGeneric: Record<Runtime, number> = { node: 0, python: 0 };

  /**
   * Waits until the generic pool of `runtime` has refilled: at least the configured base and the
   * largest count seen so far (the daemon's sizer may have raised its target), or unchanged for
   * `stableMs` (the target went down). With `minAgeMs`, only instances at least that old count
   * (a Node instance warms up while idle, 25 ms after it says ready).
   */
  async waitGenericRefilled(runtime: Runtime, stableMs = 150, timeoutMs = 20_000, minAgeMs = 0): Promise<number> {
    const want = Math.max(this.settings.generic[runtime], this.maxGeneric[runtime]);
    const end = Date.now() + timeoutMs;
    let last = -1;
    let since = Date.now();
    for (;;) {
      const n = await this.genericCount(runtime, minAgeMs);
      if (n > this.maxGeneric[runtime]) this.maxGeneric[runtime] = n;
      if (n >= want && n >= this.settings.generic[runtime]) return n;
      if (n !== last) {
        last = n;
        since = Date.now();
      } else if (Date.now() - since >= stableMs && n >= this.settings.generic[runtime]) {
        this.maxGeneric[runtime] = n;
        return n;
      }
      if (Date.now() > end) throw new Error(`generic ${runtime} pool did not refill (${n}/${want})`);
      await sleep(5);
    }
  }

  /** CPU time of the daemon process's live threads, ms (see processCpuMs). */
  cpuMs(): number {
    return processCpuMs(this.pid);
  }

  /** SIGTERM (the daemon drains and removes its instances and cgroups), SIGKILL after 10 s. */
  async stop(): Promise<void> {
    await this.undo();
  }

  private async kill(): Promise<void> {
    this.client.close();
    await this.probeClient?.then(
      (p) => p.close(),
      () => undefined,
    );
    if (this.child.exitCode === null && this.child.signalCode === null) {
      killPid(this.child.pid, 'SIGTERM');
      const t = setTimeout(() => killPid(this.child.pid, 'SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(t);
    }
    removeCgroups(this.cgroupName);
    removeDir(this.dir);
  }
}

/**
 * For a script that needs one daemon: a Cleanup that also runs on SIGINT/SIGTERM, a temporary
 * work directory (`prefix` + random) and a daemon started in it with `settings`. `fn` runs with
 * them; afterwards (also after a failure or an interrupt) the daemon is stopped and its cgroups,
 * the directory and whatever `fn` registered with the Cleanup are removed.
 */
export async function withBenchDaemon<T>(
  prefix: string,
  settings: DaemonSettings,
  fn: (d: DaemonProcess, cleanup: Cleanup) => Promise<T>,
  /** Runs before the daemon starts (e.g. a namespace the daemon must find); registers its own undo. */
  before?: (cleanup: Cleanup) => Promise<void> | void,
): Promise<T> {
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const work = mkdtempSync(join(tmpdir(), prefix));
  cleanup.add(`work dir ${work}`, () => removeDir(work));
  try {
    await before?.(cleanup);
    const d = await DaemonProcess.start(work, settings, cleanup);
    return await fn(d, cleanup);
  } finally {
    await cleanup.runAll();
  }
}

/** CPU time (ms) used so far by every thread of every process in an instance's cgroup (v1 pids or v2); NaN when the cgroup is gone. */
export function instanceCpuMs(cgroupName: string, id: string): number {
  const dirs = [`/sys/fs/cgroup/pids/${cgroupName}/${id}`, `/sys/fs/cgroup/${cgroupName}/${id}`];
  const dir = dirs.find((d) => existsSync(`${d}/cgroup.procs`));
  if (!dir) return NaN;
  let ns = 0;
  for (const pid of readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // ended
      }
    }
  }
  return ns / 1e6;
}

/**
 * CPU time of a process in ms: the sum over its threads of the scheduler's run time
 * (/proc/PID/task/TID/schedstat, ns resolution), falling back to utime+stime from /proc/PID/stat
 * (10 ms clock ticks) when schedstat is not available. Threads that have exited are not counted.
 */
export function processCpuMs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* thread exited */
      }
    }
    if (ns > 0) return ns / 1e6;
  } catch {
    /* no schedstat */
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3); utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
