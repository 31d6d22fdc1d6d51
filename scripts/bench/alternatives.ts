/**
 * What a user would run instead of Hearth, driven from the benchmark process:
 * - FreshSandbox: Hearth's own sandbox (SandboxDriver) started per invocation: new sandbox, fresh
 *   runtime (Node, or Python without the zygote), code mounted, handler imported, invoked, killed.
 * - bubblewrap and crun: a fresh process / OCI container per invocation running a one-shot runner
 *   on the same handler file with the same runtime, started by a launcher process (see fixtures).
 * - BareShim: a runtime shim started directly on a socketpair (no sandbox, no daemon): the floor
 *   for a warm round trip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { InstanceConnection } from '../../src/runtimes/instance-connection.js';
import { SandboxDriver, type SandboxProcess } from '../../src/sandbox/sandbox-driver.js';
import { Cleanup, killPid, removeCgroups, removeDir } from './cleanup.js';
import { repoRoot, type Runtime } from './daemon-process.js';
import type { HandlerDir } from './fixtures.js';
import { msSince } from './stats.js';

export const runtimeBinary: Record<Runtime, string[]> = {
  node: ['/usr/bin/node'],
  python: ['/usr/bin/python3', '-I', '-S'],
};

const runnerFile: Record<Runtime, string> = { node: '/runner/run.js', python: '/runner/run.py' };

/** Spawns programs from a private mount namespace; measures until the runner's RESULT line. */
export class Launcher {
  private buf = '';
  private lines: string[] = [];
  private wake: (() => void) | undefined;
  private seq = 0;
  private undo: () => Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    cleanup: Cleanup,
  ) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      this.buf += s;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      this.wake?.();
    });
    this.undo = cleanup.add(`launcher ${child.pid}`, () => {
      child.stdin?.end();
      killPid(child.pid);
    });
  }

  static async start(runnersDir: string, cleanup: Cleanup): Promise<Launcher> {
    const child = spawn('/usr/bin/unshare', ['-m', '--propagation', 'private', '/usr/bin/python3', '-I', '-S', join(runnersDir, 'launcher.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const l = new Launcher(child, cleanup);
    const first = await l.nextLine(10_000);
    if (first !== 'READY') throw new Error(`launcher did not start: ${first}`);
    return l;
  }

  private async nextLine(timeoutMs: number): Promise<string> {
    const end = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > end) throw new Error('launcher: no output in time');
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
      this.wake = undefined;
    }
    return this.lines.shift()!;
  }

  /** Runs argv to completion; `ms` is the time until its RESULT line, `output` what else it printed. */
  async run(argv: string[], timeoutMs = 30_000): Promise<{ ms: number; totalMs: number; result: string; output: string[] }> {
    const id = String(++this.seq);
    const t0 = process.hrtime.bigint();
    this.child.stdin!.write(JSON.stringify({ id, argv }) + '\n');
    let ms = NaN;
    let result = '';
    const output: string[] = [];
    for (;;) {
      const line = await this.nextLine(timeoutMs);
      if (line.startsWith('RESULT ') && Number.isNaN(ms)) {
        ms = msSince(t0);
        result = line.slice(7);
      } else if (line.startsWith(`DONE ${id} `)) {
        const status = Number(line.split(' ')[2]);
        const totalMs = msSince(t0);
        if (status !== 0 || Number.isNaN(ms)) throw new Error(`${argv[0]} exited with status ${status}: ${output.slice(-5).join(' | ')}`);
        return { ms, totalMs, result, output };
      } else output.push(line);
    }
  }

  stop(): Promise<void> {
    return this.undo();
  }
}

/** bwrap: every namespace unshared, read-only /usr, /proc, /dev, tmpfs /tmp, code and runner bound read-only. */
export function bwrapArgv(h: HandlerDir, runnersDir: string, eventJson: string): string[] {
  return [
    '/usr/bin/bwrap',
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--clearenv',
    '--ro-bind',
    '/usr',
    '/usr',
    '--symlink',
    'usr/bin',
    '/bin',
    '--symlink',
    'usr/lib',
    '/lib',
    '--symlink',
    'usr/lib64',
    '/lib64',
    '--symlink',
    'usr/sbin',
    '/sbin',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--ro-bind',
    h.dir,
    '/code',
    '--ro-bind',
    runnersDir,
    '/runner',
    '--chdir',
    '/code',
    '--uid',
    '65534',
    '--gid',
    '65534',
    ...runtimeBinary[h.runtime],
    runnerFile[h.runtime],
    h.handler,
    eventJson,
  ];
}

/** OCI bundles for crun: one per handler (the event is fixed in config.json), state under `root`. */
export class CrunBundles {
  readonly stateRoot: string;
  private readonly bundles = new Map<string, string>();
  private seq = 0;
  private readonly tag = randomBytes(3).toString('hex');

  constructor(
    private readonly root: string,
    private readonly runnersDir: string,
    cleanup: Cleanup,
  ) {
    this.stateRoot = join(root, 'crun-state');
    mkdirSync(this.stateRoot, { recursive: true });
    cleanup.add('crun containers', () => {
      // Remove any container an interrupted run left (in a namespace without the hybrid mount).
      spawnSync(
        '/usr/bin/unshare',
        [
          '-m',
          '--propagation',
          'private',
          '/bin/sh',
          '-c',
          `umount /sys/fs/cgroup/unified 2>/dev/null; for c in $(crun --root ${this.stateRoot} list -q 2>/dev/null); do crun --root ${this.stateRoot} delete -f "$c"; done`,
        ],
        { stdio: 'ignore' },
      );
      removeDir(this.root);
    });
  }

  private bundle(h: HandlerDir, eventJson: string): string {
    const key = `${h.dir}|${eventJson}`;
    let dir = this.bundles.get(key);
    if (dir) return dir;
    dir = join(this.root, `bundle-${this.bundles.size}`);
    const rootfs = join(dir, 'rootfs');
    for (const d of ['usr', 'proc', 'dev', 'sys', 'tmp', 'code', 'runner']) mkdirSync(join(rootfs, d), { recursive: true });
    for (const [l, t] of [
      ['bin', 'usr/bin'],
      ['lib', 'usr/lib'],
      ['lib64', 'usr/lib64'],
      ['sbin', 'usr/sbin'],
    ])
      symlinkSync(t, join(rootfs, l));
    const config = {
      ociVersion: '1.0.0',
      process: {
        terminal: false,
        user: { uid: 65534, gid: 65534 },
        args: [...runtimeBinary[h.runtime], runnerFile[h.runtime], h.handler, eventJson],
        env: ['PATH=/usr/bin:/bin'],
        cwd: '/code',
        capabilities: { bounding: [], effective: [], permitted: [] },
        noNewPrivileges: true,
      },
      root: { path: 'rootfs', readonly: true },
      hostname: 'bench',
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=65536k'] },
        { destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro', 'nosuid', 'nodev'] },
        { destination: '/code', type: 'bind', source: h.dir, options: ['rbind', 'ro', 'nosuid', 'nodev'] },
        { destination: '/runner', type: 'bind', source: this.runnersDir, options: ['rbind', 'ro', 'nosuid', 'nodev'] },
      ],
      linux: {
        namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
        resources: { memory: { limit: 128 * 1024 * 1024 }, pids: { limit: 64 } },
        maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
        readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger'],
      },
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 1));
    this.bundles.set(key, dir);
    return dir;
  }

  argv(h: HandlerDir, eventJson: string): string[] {
    return ['/usr/bin/crun', '--root', this.stateRoot, 'run', '--bundle', this.bundle(h, eventJson), `bench-${this.tag}-${++this.seq}`];
  }
}

const shimArgv: Record<Runtime, string[]> = {
  node: ['/usr/bin/node', '/hearth/runtimes/node/shim.js'],
  python: ['/usr/bin/python3', '-I', '-S', '/hearth/runtimes/python/shim.py'],
};

/** Hearth's sandbox without the pool: a new sandbox and a fresh runtime for every invocation. */
export class FreshSandbox {
  private driver: SandboxDriver;
  private seq = 0;
  readonly cgroupName = `hearth-bench-fresh-${randomBytes(3).toString('hex')}`;

  constructor(
    private readonly stateDir: string,
    private readonly cleanup: Cleanup,
  ) {
    this.driver = new SandboxDriver({ stateDir, cgroupName: this.cgroupName });
  }

  async start(): Promise<void> {
    this.cleanup.created.cgroups.push(this.cgroupName);
    this.cleanup.add('fresh-sandbox driver', async () => {
      await this.driver.stop();
      removeCgroups(this.cgroupName);
      removeDir(this.stateDir);
    });
    await this.driver.start();
  }

  /** Start, mount, specialise, invoke; returns ms until the result (teardown not counted). */
  async run(h: HandlerDir, event: unknown): Promise<{ ms: number; steps: Record<string, number> }> {
    const id = `fresh-${++this.seq}`;
    const t0 = process.hrtime.bigint();
    let proc: SandboxProcess | undefined;
    let conn: InstanceConnection | undefined;
    try {
      proc = await this.driver.spawnProgram(id, { memoryMb: 128, pids: 64, cpuPercent: 0, tmpMb: 16 }, shimArgv[h.runtime]);
      const spawned = msSince(t0);
      conn = new InstanceConnection(proc.socket);
      await conn.ready();
      const ready = msSince(t0);
      proc.mountCode(h.dir);
      await conn.specialize({ name: 'bench', handler: h.handler, memoryMb: 128, timeoutMs: 3000, env: {} });
      const specialized = msSince(t0);
      const out = await conn.invoke('i1', event, Date.now() + 3000);
      const ms = msSince(t0);
      if (!out.ok) throw new Error(`${out.error.type}: ${out.error.message}`);
      return { ms, steps: { spawn: spawned, ready, specialized, result: ms } };
    } finally {
      conn?.close();
      if (proc) {
        proc.kill();
        await proc.exited;
      }
    }
  }

  stop(): Promise<void> {
    return this.driver.stop();
  }
}

/** A runtime shim on a socketpair, no sandbox and no daemon: the bare round trip. */
export class BareShim {
  private child: ChildProcess | undefined;
  private conn: InstanceConnection | undefined;
  private seq = 0;

  constructor(
    private readonly h: HandlerDir,
    private readonly cleanup: Cleanup,
  ) {}

  async start(): Promise<void> {
    const shim = this.h.runtime === 'node' ? join(repoRoot, 'src/runtimes/node/shim.js') : join(repoRoot, 'src/runtimes/python/shim.py');
    const argv = this.h.runtime === 'node' ? ['/usr/bin/node', shim] : ['/usr/bin/python3', '-I', '-S', shim];
    // stdio 'pipe' for fd 3 is a Unix socketpair (libuv), like the daemon's instance socket.
    this.child = spawn(argv[0], [...argv.slice(1), '--code', this.h.dir], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], env: {} });
    const pid = this.child.pid;
    this.cleanup.add(`bare shim ${pid}`, () => killPid(pid));
    this.conn = new InstanceConnection(this.child.stdio[3] as Duplex);
    await this.conn.ready();
    await this.conn.specialize({ name: 'bare', handler: this.h.handler, memoryMb: 128, timeoutMs: 3000, env: {} });
  }

  /** The shim's pid (once started). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async invoke(event: unknown): Promise<number> {
    const t0 = process.hrtime.bigint();
    const out = await this.conn!.invoke(`b${++this.seq}`, event, Date.now() + 3000);
    const ms = msSince(t0);
    if (!out.ok) throw new Error(`${out.error.type}: ${out.error.message}`);
    return ms;
  }

  stop(): void {
    this.conn?.close();
    killPid(this.child?.pid);
  }
}
