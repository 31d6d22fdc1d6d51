/**
 * The sandbox driver: the only component that starts sandboxed processes. It owns Hearth's cgroup
 * parent, the sandbox root layout, the Python zygote, and every running instance until it is reaped.
 *
 * Life: construct -> start() -> stop(); stop() also works after a failed start. start() removes
 * whatever a crashed run left (instance cgroups and their processes).
 *
 * Concurrency: spawnNode/spawnPython may run concurrently (ids must be unique among live instances).
 * Every SandboxProcess's `exited` resolves exactly once, after the process is reaped and its cgroup
 * removed. Errors are HearthErrors: UNAVAILABLE when a sandbox cannot be started (the native error
 * as `cause`), CONFLICT for a duplicate id, INTERNAL for a failed code mount.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HearthError } from '../errors.js';
import { binding as loadBinding, nativeDir as defaultNativeDir, type BindMount, type NativeBinding } from './binding.js';
import { Cgroup, CgroupTree, type CgroupFs, type CgroupLimits } from './cgroups.js';
import { buildRootfs, writeSandboxEtc, type RootfsLayout } from './rootfs.js';
import type { InstanceLimits, SandboxExit, SandboxProcess } from './types.js';
import { Zygote, type ZygoteExit } from './zygote.js';

export type { InstanceLimits, SandboxExit, SandboxProcess } from './types.js';

/** Per-instance choices beyond limits. Omitted fields keep the defaults. */
export interface InstanceSpawnOptions {
  /**
   * Join this prepared network namespace (e.g. `prepareInstanceNetns(network).netnsFd`) instead of a
   * new one with only `lo`. Every other namespace is still new. The caller keeps ownership: the
   * driver never closes it and may be told to release it as soon as the spawn call has resolved (the
   * instance then holds the namespace by membership).
   */
  netnsFd?: number;
  /**
   * A request is waiting for this instance (a cold start): start it the quickest way rather than
   * the way that makes its first request quickest (Node: without DEFAULT_NODE_FLAGS' eager
   * compilation, which adds milliseconds to the boot; Python: without the shim's warm-up before
   * `ready`, about a millisecond).
   */
  forRequest?: boolean;
}

/** The subset of a pino logger the driver uses. */
export interface SandboxLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Node flags of a runtime: `--no-lazy` compiles the shim and the Node internals it loads while the
 * instance is generic (the warm-up) ahead of time, instead of on the first request: 0.4 ms off a
 * generic start (docs/runtimes-node-boot.md). The shim switches back to lazy compilation before it
 * loads the function's code, which is compiled as under plain `node`.
 */
export const DEFAULT_NODE_FLAGS: readonly string[] = ['--no-lazy'];

export interface SandboxDriverOptions {
  /** Hearth's state directory; the driver uses `<stateDir>/rootfs` and `<stateDir>/sandbox-etc`. */
  stateDir: string;
  /** Host dir bound at /hearth/runtimes. Default: the repo's src/runtimes. */
  runtimesDir?: string;
  /** Host dir bound at /hearth/native. Default: where hearth.node was found. */
  nativeDir?: string;
  /** cgroup mount root. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Name of Hearth's parent cgroup. Default `hearth` (tests: `hearth-test-<rand>`). */
  cgroupName?: string;
  cgroupFs?: CgroupFs;
  /** Instance uid/gid (non-zero). Default 65534. */
  uid?: number;
  gid?: number;
  /** Node argv. Default ['/usr/bin/node', '/hearth/runtimes/node/shim.js']. */
  nodeArgv?: string[];
  /** Node flags inserted after argv[0] (e.g. --snapshot-blob). Default DEFAULT_NODE_FLAGS. */
  nodeFlags?: string[];
  /** Extra zygote arguments (tests: ['--module', 'probe', '--module-path', '/hearth/probe']). */
  zygoteArgs?: string[];
  /** Limits of the zygote's own cgroup. */
  zygoteLimits?: CgroupLimits;
  /** Start the zygote in start() instead of at the first spawnPython. */
  eagerZygote?: boolean;
  /** Additional read-only binds (tests). */
  extraBinds?: BindMount[];
  /** RLIMIT_NOFILE inside instances. Default 1024. */
  nofile?: number;
  hostname?: string;
  binding?: NativeBinding;
  /** Wraps the daemon end of an instance socket. Default `new net.Socket({ fd })`; unit tests with the fake binding pass their own. */
  openSocket?: (fd: number) => net.Socket;
  log?: SandboxLogger;
}

const ZYGOTE_CGROUP = 'zygote';
const ID_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

const silentLogger: SandboxLogger = { info: () => {}, warn: () => {}, error: () => {} };

function defaultRuntimesDir(): string {
  // dist/src/sandbox -> repo root is three levels up; src/sandbox (ts-node) two.
  for (const up of ['../../..', '../..']) {
    const dir = path.resolve(__dirname, up, 'src', 'runtimes');
    if (fs.existsSync(path.join(dir, 'python'))) return dir;
  }
  return path.resolve(__dirname, '../../..', 'src', 'runtimes');
}

class SandboxInstance implements SandboxProcess {
  readonly exited: Promise<SandboxExit>;
  private resolveExit!: (e: SandboxExit) => void;
  private done = false;
  private polling = false;
  private zygoteStatus: { code: number | null; signal: number | null } | undefined;
  /** The zygote that forked us is gone: no exit message will come. */
  orphaned = false;
  private pollStartedAt = 0;

  constructor(
    readonly id: string,
    readonly pid: number,
    private pidfd: number,
    readonly socket: net.Socket,
    private readonly cgroup: Cgroup,
    private readonly kind: 'child' | 'zygote',
    private readonly driver: SandboxDriver,
  ) {
    this.exited = new Promise((r) => (this.resolveExit = r));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      // The peer closed fd 3 (exited, or the shim gave up) or the pool destroyed the socket: the
      // instance is finished either way.
      this.kill();
      this.startPolling();
    });
  }

  kill(): void {
    if (this.done) return;
    try {
      this.driver.native.kill(this.pid, 9, this.pidfd);
    } catch {
      // already exited
    }
    this.startPolling();
  }

  mountCode(dir: string): void {
    if (this.done) throw new HearthError('INTERNAL', `instance ${this.id} has exited`);
    try {
      this.driver.native.mountCode(this.pid, dir, '/code', this.pidfd);
    } catch (e) {
      throw new HearthError('INTERNAL', `cannot mount ${dir} at /code of ${this.id}: ${(e as Error).message}`, { cause: e });
    }
  }

  setLimits(l: Partial<InstanceLimits>): void {
    const { memoryMb, pids, cpuPercent } = l;
    const limits: Partial<CgroupLimits> = {};
    if (memoryMb !== undefined) limits.memoryMb = memoryMb;
    if (pids !== undefined) limits.pids = pids;
    if (cpuPercent !== undefined) limits.cpuPercent = cpuPercent;
    try {
      this.cgroup.setLimits(limits);
    } catch (e) {
      // e.g. EBUSY on cgroup v1: the instance already uses more memory than the new limit
      throw new HearthError('INTERNAL', `cannot set limits of ${this.id}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The zygote reported our exit status. */
  zygoteExited(status: { code: number | null; signal: number | null }): void {
    this.zygoteStatus = status;
    this.poll();
  }

  startPolling(): void {
    if (this.polling || this.done) return;
    this.polling = true;
    this.pollStartedAt = Date.now();
    const step = (delay: number): void => {
      if (this.done) return;
      this.poll();
      if (!this.done) setTimeout(() => step(Math.min(delay * 2, 100)), delay);
    };
    step(1);
  }

  /** Check (without blocking) whether the process is gone; finish if so. */
  poll(): void {
    if (this.done) return;
    if (this.kind === 'child') {
      let st: { code: number | null; signal: number | null } | null;
      try {
        st = this.driver.native.waitPid(this.pid);
      } catch {
        st = { code: null, signal: null }; // ECHILD: someone else reaped it
      }
      if (st) this.finish(st);
      return;
    }
    if (this.zygoteStatus) {
      this.finish(this.zygoteStatus);
      return;
    }
    let gone = false;
    try {
      gone = this.driver.native.pidfdExited(this.pidfd);
    } catch {
      gone = true;
    }
    // The zygote reports the status right after reaping; wait for it a little unless it is dead.
    if (gone && (this.orphaned || (this.polling && Date.now() - this.pollStartedAt > 2000))) {
      this.finish({ code: null, signal: null });
    }
  }

  private finish(st: { code: number | null; signal: number | null }): void {
    if (this.done) return;
    this.done = true;
    const oomKilled = this.cgroup.oomKilled();
    this.socket.destroy();
    if (this.pidfd >= 0) {
      try {
        this.driver.native.closeFd(this.pidfd);
      } catch {
        // ignore
      }
      this.pidfd = -1;
    }
    this.driver.forget(this);
    this.cgroup
      .remove()
      .catch((err: unknown) => this.driver.log.warn({ err, instance: this.id }, 'cannot remove instance cgroup'))
      .finally(() => this.resolveExit({ code: st.code, signal: st.signal, oomKilled }));
  }
}

/** Started drivers' SIGCHLD handlers, behind one process listener (not one per driver). */
const sigchldHandlers = new Set<() => void>();
const onProcessSigchld = (): void => {
  for (const h of sigchldHandlers) h();
};
function watchSigchld(h: () => void): void {
  if (sigchldHandlers.size === 0) process.on('SIGCHLD', onProcessSigchld);
  sigchldHandlers.add(h);
}
function unwatchSigchld(h: () => void): void {
  sigchldHandlers.delete(h);
  if (sigchldHandlers.size === 0) process.removeListener('SIGCHLD', onProcessSigchld);
}

export class SandboxDriver {
  readonly log: SandboxLogger;
  private nativeBinding: NativeBinding | undefined;
  private tree: CgroupTree | undefined;
  private layout: RootfsLayout | undefined;
  private rootDir = '';
  private readonly instances = new Map<string, SandboxInstance>();
  private readonly earlyExits = new Map<string, ZygoteExit>();
  private zygote: Zygote | undefined;
  private zygoteStarting: Promise<Zygote> | undefined;
  private zygoteCgroup: Cgroup | undefined;
  private started = false;
  private stopping = false;
  private readonly onSigchld = (): void => {
    for (const inst of this.instances.values()) inst.poll();
  };

  constructor(private readonly opts: SandboxDriverOptions) {
    this.log = opts.log ?? silentLogger;
    const uid = opts.uid ?? 65534;
    const gid = opts.gid ?? 65534;
    if (!(uid > 0 && gid > 0)) throw new HearthError('CONFIG', 'sandbox uid and gid must be non-zero');
  }

  get native(): NativeBinding {
    if (!this.nativeBinding) this.nativeBinding = this.opts.binding ?? loadBinding();
    return this.nativeBinding;
  }

  /** cgroup layout in use (after start). */
  get cgroupVersion(): 1 | 2 {
    if (!this.tree) throw new HearthError('INTERNAL', 'sandbox driver not started');
    return this.tree.layout.version;
  }

  /** Ids of live instances. */
  liveIds(): string[] {
    return [...this.instances.keys()];
  }

  async start(): Promise<void> {
    const o = this.opts;
    const native = this.native;
    this.rootDir = path.join(o.stateDir, 'rootfs');
    fs.mkdirSync(this.rootDir, { recursive: true, mode: 0o755 });
    const etcDir = path.join(o.stateDir, 'sandbox-etc');
    writeSandboxEtc(etcDir, o.uid ?? 65534, o.gid ?? 65534);
    const treeOpts: ConstructorParameters<typeof CgroupTree>[0] = {};
    if (o.cgroupRoot !== undefined) treeOpts.root = o.cgroupRoot;
    if (o.cgroupName !== undefined) treeOpts.parentName = o.cgroupName;
    if (o.cgroupFs !== undefined) treeOpts.fs = o.cgroupFs;
    this.tree = new CgroupTree(treeOpts);
    const layout = this.tree.start();
    const leftovers = await this.tree.cleanupAll();
    if (leftovers.length > 0) this.log.warn({ parent: this.tree.parentName, cgroups: leftovers }, 'removed cgroups left by a previous run of this daemon');
    this.layout = buildRootfs({
      runtimesDir: o.runtimesDir ?? defaultRuntimesDir(),
      nativeDir: o.nativeDir ?? (o.binding ? path.resolve('build/Release') : defaultNativeDir()),
      etcDir,
      forbidden: [o.stateDir],
      ...(o.extraBinds ? { extraBinds: o.extraBinds } : {}),
    });
    watchSigchld(this.onSigchld);
    this.started = true;
    this.log.info({ cgroupVersion: layout.version, binds: this.layout.binds.length }, 'sandbox driver started');
    void native;
    if (o.eagerZygote) await this.ensureZygote();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const all = [...this.instances.values()];
    for (const inst of all) inst.kill();
    await Promise.race([
      Promise.allSettled(all.map((i) => i.exited)),
      new Promise((r) => setTimeout(r, 5000).unref()),
    ]);
    try {
      await this.zygoteStarting;
    } catch {
      // failed start: nothing to stop
    }
    if (this.zygote) await this.zygote.stop();
    this.zygote = undefined;
    unwatchSigchld(this.onSigchld);
    if (this.tree) {
      try {
        await this.tree.removeAll();
      } catch (err) {
        this.log.warn({ err }, 'cannot remove cgroups');
      }
    }
    this.started = false;
  }

  private assertStartable(id: string): void {
    if (!this.started || this.stopping) throw new HearthError('UNAVAILABLE', 'sandbox driver is not running');
    if (!ID_RE.test(id) || id === ZYGOTE_CGROUP) throw new HearthError('INTERNAL', `invalid instance id ${JSON.stringify(id)}`);
    if (this.instances.has(id)) throw new HearthError('CONFLICT', `instance ${id} already exists`);
  }

  /**
   * A netnsFd must be an open fd: a closed one would fail the zygote's sendmsg, which the zygote
   * client treats as a broken zygote. Whether it is a network namespace is left to setns (EINVAL).
   */
  private checkNetnsFd(id: string, opts: InstanceSpawnOptions | undefined): void {
    const fd = opts?.netnsFd;
    if (fd === undefined) return;
    if (!Number.isInteger(fd) || fd < 0) throw new HearthError('INTERNAL', `instance ${id}: netnsFd must be a non-negative integer`);
    try {
      fs.fstatSync(fd);
    } catch (e) {
      throw new HearthError('UNAVAILABLE', `cannot start sandbox ${id}: netnsFd ${fd}: ${(e as Error).message}`, { cause: e });
    }
  }

  private openSocket(fd: number): net.Socket {
    return this.opts.openSocket ? this.opts.openSocket(fd) : new net.Socket({ fd, readable: true, writable: true });
  }

  private nodeArgv(forRequest: boolean): string[] {
    const argv = this.opts.nodeArgv ?? ['/usr/bin/node', '/hearth/runtimes/node/shim.js'];
    return [argv[0]!, ...(this.opts.nodeFlags ?? (forRequest ? [] : DEFAULT_NODE_FLAGS)), ...argv.slice(1)];
  }

  /** Start a Node runtime (`/usr/bin/node --no-lazy /hearth/runtimes/node/shim.js`) in a new sandbox. */
  async spawnNode(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    return this.spawnChild(id, limits, this.nodeArgv(opts?.forRequest === true), opts);
  }

  /** Start any program as an instance sandbox (tests, and runtimes without a zygote). */
  async spawnProgram(id: string, limits: InstanceLimits, argv: string[], opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    return this.spawnChild(id, limits, argv, opts);
  }

  private async spawnChild(id: string, limits: InstanceLimits, argv: string[], opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    this.assertStartable(id);
    this.checkNetnsFd(id, opts);
    const native = this.native;
    const cgroup = this.tree!.create(id, limits);
    let fds: [number, number] | undefined;
    let spawned: { pid: number; pidfd: number };
    try {
      fds = native.socketpair();
      spawned = native.spawn({
        argv,
        env: [],
        rootDir: this.rootDir,
        binds: this.layout!.binds,
        symlinks: this.layout!.symlinks,
        cgroupProcs: cgroup.joinPaths(),
        socketFd: fds[1],
        newPid: true,
        uid: this.opts.uid ?? 65534,
        gid: this.opts.gid ?? 65534,
        tmpMb: limits.tmpMb,
        hostname: this.opts.hostname ?? 'hearth',
        nofile: this.opts.nofile ?? 1024,
        ...(opts?.netnsFd !== undefined ? { netnsFd: opts.netnsFd } : {}),
      });
    } catch (e) {
      if (fds) {
        native.closeFd(fds[0]);
        native.closeFd(fds[1]);
      }
      await cgroup.remove().catch(() => {});
      throw new HearthError('UNAVAILABLE', `cannot start sandbox ${id}: ${(e as Error).message}`, { cause: e });
    }
    native.closeFd(fds[1]);
    const socket = this.openSocket(fds[0]);
    const inst = new SandboxInstance(id, spawned.pid, spawned.pidfd, socket, cgroup, 'child', this);
    this.instances.set(id, inst);
    // it may have died already (a SIGCHLD before we tracked it)
    inst.poll();
    return inst;
  }

  /** Fork a Python instance from the zygote (started on first use, restarted if it died). */
  async spawnPython(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    try {
      return await this.forkPython(id, limits, opts);
    } catch (e) {
      // The zygote died under this request (killed, crashed): one retry with a fresh zygote.
      if (this.stopping || this.zygote?.alive) throw e;
      return this.forkPython(id, limits, opts);
    }
  }

  private async forkPython(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    this.assertStartable(id);
    this.checkNetnsFd(id, opts);
    const zygote = await this.ensureZygote();
    this.assertStartable(id);
    const native = this.native;
    const cgroup = this.tree!.create(id, limits);
    let fds: [number, number] | undefined;
    const cgFds: number[] = [];
    let pid: number;
    let pidfd = -1;
    try {
      fds = native.socketpair();
      for (const p of cgroup.joinPaths()) cgFds.push(fs.openSync(p, fs.constants.O_WRONLY));
      const pending = zygote.fork({
        id,
        uid: this.opts.uid ?? 65534,
        gid: this.opts.gid ?? 65534,
        tmpMb: limits.tmpMb,
        hostname: this.opts.hostname ?? 'hearth',
        socketFd: fds[1],
        cgroupFds: cgFds,
        ...(opts?.netnsFd !== undefined ? { netnsFd: opts.netnsFd } : {}),
        warmUp: opts?.forRequest !== true,
      });
      pid = await pending;
      pidfd = native.pidfdOpen(pid);
      // pids are reused quickly (pid_max may be 32768): make sure the pidfd names our instance.
      if (!cgroup.pids().includes(pid)) throw new Error(`forked pid ${pid} is not in its cgroup`);
    } catch (e) {
      if (pidfd >= 0) native.closeFd(pidfd);
      if (fds) native.closeFd(fds[0]);
      cgroup.killAll();
      await cgroup.remove().catch(() => {});
      this.earlyExits.delete(id);
      throw e instanceof HearthError
        ? e
        : new HearthError('UNAVAILABLE', `cannot fork python sandbox ${id}: ${(e as Error).message}`, { cause: e });
    } finally {
      if (fds) native.closeFd(fds[1]);
      for (const fd of cgFds) fs.closeSync(fd);
    }
    const socket = this.openSocket(fds[0]);
    const inst = new SandboxInstance(id, pid, pidfd, socket, cgroup, 'zygote', this);
    this.instances.set(id, inst);
    const early = this.earlyExits.get(id);
    if (early) {
      this.earlyExits.delete(id);
      inst.zygoteExited(early);
    }
    return inst;
  }

  /** The running zygote, starting one if needed. */
  private ensureZygote(): Promise<Zygote> {
    if (this.zygote?.alive) return Promise.resolve(this.zygote);
    if (this.zygoteStarting) return this.zygoteStarting;
    const starting = this.startZygote();
    this.zygoteStarting = starting;
    const clear = (): void => {
      if (this.zygoteStarting === starting) this.zygoteStarting = undefined;
    };
    starting.then(clear, clear);
    return starting;
  }

  private async startZygote(): Promise<Zygote> {
    const tree = this.tree!;
    if (this.zygoteCgroup) await this.zygoteCgroup.remove().catch(() => {});
    else await tree.handle(ZYGOTE_CGROUP).remove().catch(() => {});
    this.zygoteCgroup = tree.create(ZYGOTE_CGROUP, this.opts.zygoteLimits ?? { memoryMb: 512, pids: 128, cpuPercent: 0 });
    const z: Zygote = new Zygote({
      binding: this.native,
      spawn: {
        argv: ['/usr/bin/python3', '-I', '-S', '/hearth/runtimes/python/zygote.py', ...(this.opts.zygoteArgs ?? [])],
        env: [],
        rootDir: this.rootDir,
        binds: this.layout!.binds,
        symlinks: this.layout!.symlinks,
        cgroupProcs: this.zygoteCgroup.joinPaths(),
        newPid: false,
        tmpMb: 16,
        hostname: this.opts.hostname ?? 'hearth',
        nofile: 4096,
      },
      onExit: (exit) => {
        const inst = this.instances.get(exit.id);
        if (inst && inst.pid === exit.pid) inst.zygoteExited(exit);
        else if (!inst) this.earlyExits.set(exit.id, exit);
      },
      onDeath: (status) => {
        if (!this.stopping) this.log.warn({ ...status }, 'python zygote exited; it restarts on the next python spawn');
        for (const inst of this.instances.values()) {
          inst.orphaned = true;
        }
        for (const inst of this.instances.values()) inst.poll();
        if (this.zygote === z) this.zygote = undefined;
      },
    });
    try {
      await z.start();
    } catch (e) {
      await z.stop();
      throw e instanceof HearthError
        ? e
        : new HearthError('UNAVAILABLE', `cannot start the python zygote: ${(e as Error).message}`, { cause: e });
    }
    this.zygote = z;
    this.log.info({ zygotePid: z.pid }, 'python zygote ready');
    return z;
  }

  /** @internal called by an instance once it is gone. */
  forget(inst: SandboxProcess): void {
    if (this.instances.get(inst.id) === inst) this.instances.delete(inst.id);
  }
}
