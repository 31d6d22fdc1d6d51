/**
 * The seam between SandboxDriver and its spawn paths (child-spawn.ts, python-spawn.ts): the driver's
 * state they read and the instance table they add to. Valid only after the driver's start().
 */
import type net from 'node:net';
import type { CgroupTree } from './cgroups.js';
import type { RootfsLayout } from './rootfs.js';
import type { InstanceOwner, SandboxInstance } from './sandbox-instance.js';
import type { InstanceSpawnOptions, SandboxDriverOptions } from './sandbox-options.js';

export interface SpawnHost extends InstanceOwner {
  readonly opts: SandboxDriverOptions;
  /** stop() has begun: no new instance may start. */
  readonly stopping: boolean;
  readonly tree: CgroupTree;
  readonly layout: RootfsLayout;
  /** The sandbox root directory (`<stateDir>/rootfs`). */
  readonly rootDir: string;
  /** Live instances by id; a spawn path adds the instance it started, the instance removes itself via forget(). */
  readonly instances: Map<string, SandboxInstance>;
  /** Throws UNAVAILABLE when the driver is not running, INTERNAL for a bad id, CONFLICT for a live one. */
  assertStartable(id: string): void;
  /** Throws unless `opts.netnsFd` is absent or an open fd. */
  checkNetnsFd(id: string, opts: InstanceSpawnOptions | undefined): void;
  /** Wraps the daemon end of an instance socket. */
  openSocket(fd: number): net.Socket;
}
