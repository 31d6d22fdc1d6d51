/**
 * The sandbox driver's options and defaults: what a caller may choose per driver
 * (SandboxDriverOptions) and per instance (InstanceSpawnOptions), and the values used when a field
 * is omitted. No behaviour lives here.
 */
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { BindMount, NativeBinding } from './binding.js';
import type { CgroupFs, CgroupLimits } from './cgroups.js';

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
  /**
   * Run the runtime under a reaper as PID 1 (default true): hearth-init for spawnNode/spawnProgram,
   * the zygote's reap_until for spawnPython. It reaps orphaned processes and exits with the
   * runtime's status. false: the runtime itself is PID 1 (and must reap, or leak zombies until it
   * exits); for benchmarks and tests.
   */
  init?: boolean;
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
  /**
   * Instance uid/gid (non-zero). Default 65534. With `userns`: the pool ids an instance has until
   * specialisation (unmapped inside its user namespace); they must be used by no host process.
   */
  uid?: number;
  gid?: number;
  /**
   * Every instance gets a user namespace of its own (docs/sandbox.md, Identity): made with its ids
   * unmapped; SandboxProcess.setIdentity maps root inside to a function's host uid. Default false.
   */
  userns?: boolean;
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

/** Name of the zygote's cgroup under Hearth's parent (never an instance id). */
export const ZYGOTE_CGROUP = 'zygote';
/** Valid instance ids. */
export const ID_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The default logger: drops everything. */
export const silentLogger: SandboxLogger = { info: () => {}, warn: () => {}, error: () => {} };

/** The repo's src/runtimes, found from this module's location (dist/ or ts-node). */
export function defaultRuntimesDir(): string {
  // dist/src/sandbox -> repo root is three levels up; src/sandbox (ts-node) two.
  for (const up of ['../../..', '../..']) {
    const dir = path.resolve(__dirname, up, 'src', 'runtimes');
    if (fs.existsSync(path.join(dir, 'python'))) return dir;
  }
  return path.resolve(__dirname, '../../..', 'src', 'runtimes');
}
