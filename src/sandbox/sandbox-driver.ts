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
 *
 * Its parts: sandbox-options.ts (options, defaults), child-spawn.ts (Node and other programs),
 * python-spawn.ts (the zygote and its forks), sandbox-instance.ts (an instance, its end, SIGCHLD),
 * spawn-host.ts (what the spawn paths see of the driver).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HearthError } from '../errors.js';
import { binding as loadBinding, nativeDir as defaultNativeDir, type NativeBinding } from './binding.js';
import { CgroupTree } from './cgroups.js';
import { nodeArgv, spawnChild } from './child-spawn.js';
import { PythonSpawner } from './python-spawn.js';
import { buildRootfs, writeSandboxEtc, type RootfsLayout } from './rootfs.js';
import { unwatchSigchld, watchSigchld, type SandboxInstance } from './sandbox-instance.js';
import {
  defaultRuntimesDir,
  ID_RE,
  silentLogger,
  ZYGOTE_CGROUP,
  type InstanceSpawnOptions,
  type SandboxDriverOptions,
  type SandboxLogger,
} from './sandbox-options.js';
import type { SpawnHost } from './spawn-host.js';
import type { InstanceLimits, SandboxProcess } from './types.js';
import type { Zygote } from './zygote.js';

export type { InstanceLimits, SandboxExit, SandboxProcess } from './types.js';
export { DEFAULT_NODE_FLAGS, type InstanceSpawnOptions, type SandboxDriverOptions, type SandboxLogger } from './sandbox-options.js';

export class SandboxDriver {
  readonly log: SandboxLogger;
  private nativeBinding: NativeBinding | undefined;
  private tree: CgroupTree | undefined;
  private layout: RootfsLayout | undefined;
  private rootDir = '';
  private readonly instances = new Map<string, SandboxInstance>();
  private started = false;
  private stopping = false;
  /** Spawns in flight (the Node/program path makes its clone off the loop): stop() lets them land first. */
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly host: SpawnHost = SandboxDriver.spawnHost(this);
  private readonly python = new PythonSpawner(this.host);
  private readonly onSigchld = (): void => {
    for (const inst of this.instances.values()) inst.poll();
  };

  constructor(private readonly opts: SandboxDriverOptions) {
    this.log = opts.log ?? silentLogger;
    const uid = opts.uid ?? 65534;
    const gid = opts.gid ?? 65534;
    if (!(uid > 0 && gid > 0)) throw new HearthError('CONFIG', 'sandbox uid and gid must be non-zero');
  }

  /** @internal the running Python zygote, if any (the integration tests read its pid). */
  get zygote(): Zygote | undefined {
    return this.python.zygote;
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
    const nativeDir = o.nativeDir ?? (o.binding ? path.resolve('build/Release') : defaultNativeDir());
    // PID 1 of every spawned instance (child-spawn.ts); an addon built before it existed lacks it.
    if (!o.binding && !fs.existsSync(path.join(nativeDir, 'hearth-init')))
      throw new HearthError('MISSING_DEPENDENCY', `${path.join(nativeDir, 'hearth-init')} is missing: run \`npm run build:native\``);
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
      nativeDir,
      etcDir,
      forbidden: [o.stateDir],
      ...(o.extraBinds ? { extraBinds: o.extraBinds } : {}),
    });
    watchSigchld(this.onSigchld);
    this.started = true;
    this.log.info({ cgroupVersion: layout.version, binds: this.layout.binds.length }, 'sandbox driver started');
    void native;
    if (o.eagerZygote) await this.python.ensureZygote();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // A spawn in flight registers its instance when it lands (a few ms); then it is killed with the rest.
    await Promise.allSettled([...this.inflight]);
    const all = [...this.instances.values()];
    for (const inst of all) inst.kill();
    await Promise.race([Promise.allSettled(all.map((i) => i.exited)), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.python.stop();
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

  /** Start a Node runtime (`/usr/bin/node --no-lazy /hearth/runtimes/node/shim.js`) in a new sandbox. */
  async spawnNode(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    return this.track(spawnChild(this.host, id, limits, nodeArgv(this.opts, opts?.forRequest === true), opts, 'node'));
  }

  /** Start any program as an instance sandbox (tests, and runtimes without a zygote). */
  async spawnProgram(id: string, limits: InstanceLimits, argv: string[], opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    return this.track(spawnChild(this.host, id, limits, argv, opts));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = (): void => void this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Fork a Python instance from the zygote (started on first use, restarted if it died). */
  async spawnPython(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    return this.python.spawn(id, limits, opts);
  }

  /**
   * Fork a `provided` instance from the Python zygote: the Runtime API relay
   * (src/runtimes/provided/runtime_api.py), which starts the function's `bootstrap` at specialize.
   */
  async spawnProvided(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess> {
    return this.python.spawn(id, limits, opts, 'provided');
  }

  /** The driver as its spawn paths see it (spawn-host.ts). */
  private static spawnHost(d: SandboxDriver): SpawnHost {
    return {
      get native() {
        return d.native;
      },
      get log() {
        return d.log;
      },
      forget: (inst) => d.forget(inst),
      get opts() {
        return d.opts;
      },
      get stopping() {
        return d.stopping;
      },
      get tree() {
        return d.tree!;
      },
      get layout() {
        return d.layout!;
      },
      get rootDir() {
        return d.rootDir;
      },
      instances: d.instances,
      assertStartable: (id) => d.assertStartable(id),
      checkNetnsFd: (id, opts) => d.checkNetnsFd(id, opts),
      openSocket: (fd) => d.openSocket(fd),
    };
  }

  /** @internal called by an instance once it is gone. */
  forget(inst: SandboxProcess): void {
    if (this.instances.get(inst.id) === inst) this.instances.delete(inst.id);
  }
}
