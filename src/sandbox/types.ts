/**
 * The sandbox layer's contracts, declared once: the limits of one instance, how it ended, and the
 * handle of one running sandboxed process. SandboxDriver (sandbox-driver.ts) hands these out; the
 * pool uses them through its Spawner, and src/pool/fake-spawner.ts implements them in memory.
 */
import type net from 'node:net';

export interface InstanceLimits {
  memoryMb: number;
  pids: number;
  /** Percent of one CPU; 0 = unlimited. */
  cpuPercent: number;
  /** Size of the private /tmp in MiB. */
  tmpMb: number;
}

export interface SandboxExit {
  code: number | null;
  signal: number | null;
  /** The kernel's OOM killer killed a process of this instance (its memory limit was hit). */
  oomKilled: boolean;
}

/** One sandboxed runtime process (Node instance, or Python instance forked by the zygote). */
export interface SandboxProcess {
  readonly id: string;
  /** Host pid. */
  readonly pid: number;
  /** Daemon end of the instance's fd 3. */
  readonly socket: net.Socket;
  /** Resolves once, after the process is gone (reaped) and its cgroup removed. */
  readonly exited: Promise<SandboxExit>;
  /** SIGKILL; for a PID-namespace init this ends everything inside. Idempotent. */
  kill(): void;
  /** Mount dir read-only, nosuid, nodev at /code inside the instance. Throws HearthError INTERNAL. */
  mountCode(dir: string): void;
  /**
   * Re-apply cgroup limits (e.g. the function's memoryMb at specialisation). tmpMb cannot change.
   * Throws HearthError INTERNAL (cause: the fs error, EBUSY when memory is already above the new limit on v1).
   */
  setLimits(l: Partial<InstanceLimits>): void;
  /**
   * Maps root (0) inside the instance's user namespace to host `uid`/`gid` (one id each) and denies
   * setgroups; the runtime then switches to 0 when the specialise message says `userns`. Returns
   * false when the instance has no user namespace (nothing is written). Once per instance: the
   * kernel refuses a second map (HearthError INTERNAL).
   */
  setIdentity(uid: number, gid: number): boolean;
}
