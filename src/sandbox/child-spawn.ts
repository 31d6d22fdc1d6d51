/**
 * The spawn path for instances the daemon starts itself (Node runtimes, any program): a new sandbox
 * per instance via the addon's spawn, reaped by the daemon (waitpid) when it exits.
 */
import { HearthError } from '../errors.js';
import type { SeccompProfile } from './binding.js';
import { SandboxInstance } from './sandbox-instance.js';
import { DEFAULT_NODE_FLAGS, type InstanceSpawnOptions, type SandboxDriverOptions } from './sandbox-options.js';
import type { SpawnHost } from './spawn-host.js';
import type { InstanceLimits, SandboxProcess } from './types.js';

/** Node argv of an instance: argv[0], then the flags (none for a cold start unless configured), then the shim. */
export function nodeArgv(opts: SandboxDriverOptions, forRequest: boolean): string[] {
  const argv = opts.nodeArgv ?? ['/usr/bin/node', '/hearth/runtimes/node/shim.js'];
  return [argv[0], ...(opts.nodeFlags ?? (forRequest ? [] : DEFAULT_NODE_FLAGS)), ...argv.slice(1)];
}

/**
 * PID 1 of every instance this path starts (native/init/hearth-init.cc): runs argv as its child,
 * reaps the handler's orphans, exits with the runtime's status (128 + N for signal N).
 */
export const INSTANCE_INIT = '/hearth/native/hearth-init';

/** Start `argv` in a new sandbox as instance `id` (under INSTANCE_INIT unless `opts.init` is false), tracked in `host.instances`. */
export async function spawnChild(
  host: SpawnHost,
  id: string,
  limits: InstanceLimits,
  argv: string[],
  opts?: InstanceSpawnOptions,
  seccompProfile: SeccompProfile = 'general',
): Promise<SandboxProcess> {
  host.assertStartable(id);
  host.checkNetnsFd(id, opts);
  const native = host.native;
  // The cgroup's directories and limits are written on the libuv pool, not the event loop.
  const { cgroup } = await host.tree.createAsync(id, limits);
  let fds: [number, number] | undefined;
  let spawned: { pid: number; pidfd: number };
  try {
    fds = native.socketpair();
    // Made off the event loop: the child builds its root (a few ms) while the loop runs on.
    spawned = await native.spawnAsync({
      argv: opts?.init === false ? argv : [INSTANCE_INIT, ...argv],
      env: [],
      rootDir: host.rootDir,
      binds: host.layout.binds,
      symlinks: host.layout.symlinks,
      cgroupProcs: cgroup.joinPaths(),
      socketFd: fds[1],
      newPid: true,
      uid: host.opts.uid ?? 65534,
      gid: host.opts.gid ?? 65534,
      tmpMb: limits.tmpMb,
      hostname: host.opts.hostname ?? 'hearth',
      nofile: host.opts.nofile ?? 1024,
      seccompProfile,
      ...(host.opts.userns === true ? { userns: true } : {}),
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
  const socket = host.openSocket(fds[0]);
  const inst = new SandboxInstance(id, spawned.pid, spawned.pidfd, socket, cgroup, 'child', host, opts?.init !== false, host.opts.userns === true);
  host.instances.set(id, inst);
  // it may have died already (a SIGCHLD before we tracked it)
  inst.poll();
  return inst;
}
