/**
 * The Python spawn path: instances are forked by the zygote (zygote.ts), a Python process started
 * on first use (or at driver start with `eagerZygote`) in its own cgroup and restarted on the next
 * spawn after it died. The zygote reaps its forks and reports their exits, which may arrive before
 * the fork's own reply (kept in `earlyExits` until then).
 */
import fs from 'node:fs';
import { HearthError } from '../errors.js';
import type { Cgroup } from './cgroups.js';
import { SandboxInstance } from './sandbox-instance.js';
import { ZYGOTE_CGROUP, type InstanceSpawnOptions } from './sandbox-options.js';
import type { SpawnHost } from './spawn-host.js';
import type { InstanceLimits, SandboxProcess } from './types.js';
import { Zygote, type ZygoteExit } from './zygote.js';

/** The zygote of one driver and the instances forked from it. */
export class PythonSpawner {
  private readonly earlyExits = new Map<string, ZygoteExit>();
  /** The running zygote, if any. */
  zygote: Zygote | undefined;
  private zygoteStarting: Promise<Zygote> | undefined;
  private zygoteCgroup: Cgroup | undefined;

  constructor(private readonly host: SpawnHost) {}

  /** Fork a Python instance from the zygote (started on first use, restarted if it died). */
  async spawn(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions, runtime: 'python' | 'provided' = 'python'): Promise<SandboxProcess> {
    try {
      return await this.forkPython(id, limits, opts, runtime);
    } catch (e) {
      // The zygote died under this request (killed, crashed): one retry with a fresh zygote.
      if (this.host.stopping || this.zygote?.alive) throw e;
      return this.forkPython(id, limits, opts, runtime);
    }
  }

  private async forkPython(
    id: string,
    limits: InstanceLimits,
    opts: InstanceSpawnOptions | undefined,
    runtime: 'python' | 'provided',
  ): Promise<SandboxProcess> {
    this.host.assertStartable(id);
    this.host.checkNetnsFd(id, opts);
    const zygote = await this.ensureZygote();
    this.host.assertStartable(id);
    const native = this.host.native;
    // Made, limited and its join files opened on the libuv pool, not the event loop.
    const { cgroup, fds: cgFds } = await this.host.tree.createAsync(id, limits, true);
    let fds: [number, number] | undefined;
    let pid: number;
    let pidfd = -1;
    try {
      fds = native.socketpair();
      const pending = zygote.fork({
        id,
        uid: this.host.opts.uid ?? 65534,
        gid: this.host.opts.gid ?? 65534,
        tmpMb: limits.tmpMb,
        hostname: this.host.opts.hostname ?? 'hearth',
        socketFd: fds[1],
        cgroupFds: cgFds,
        ...(opts?.netnsFd !== undefined ? { netnsFd: opts.netnsFd } : {}),
        warmUp: opts?.forRequest !== true,
        ...(runtime === 'provided' ? { runtime } : {}),
        ...(opts?.init === false ? { init: false } : {}),
        ...(this.host.opts.userns === true ? { userns: true } : {}),
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
      throw e instanceof HearthError ? e : new HearthError('UNAVAILABLE', `cannot fork python sandbox ${id}: ${(e as Error).message}`, { cause: e });
    } finally {
      if (fds) native.closeFd(fds[1]);
      for (const fd of cgFds) fs.closeSync(fd);
    }
    const socket = this.host.openSocket(fds[0]);
    const inst = new SandboxInstance(id, pid, pidfd, socket, cgroup, 'zygote', this.host, opts?.init !== false, this.host.opts.userns === true);
    this.host.instances.set(id, inst);
    const early = this.earlyExits.get(id);
    if (early) {
      this.earlyExits.delete(id);
      inst.zygoteExited(early);
    }
    return inst;
  }

  /** The running zygote, starting one if needed. */
  ensureZygote(): Promise<Zygote> {
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
    const tree = this.host.tree;
    if (this.zygoteCgroup) await this.zygoteCgroup.remove().catch(() => {});
    else
      await tree
        .handle(ZYGOTE_CGROUP)
        .remove()
        .catch(() => {});
    this.zygoteCgroup = tree.create(ZYGOTE_CGROUP, this.host.opts.zygoteLimits ?? { memoryMb: 512, pids: 128, cpuPercent: 0 });
    const z: Zygote = new Zygote({
      binding: this.host.native,
      spawn: {
        argv: ['/usr/bin/python3', '-I', '-S', '/hearth/runtimes/python/zygote.py', ...(this.host.opts.zygoteArgs ?? [])],
        env: [],
        rootDir: this.host.rootDir,
        binds: this.host.layout.binds,
        symlinks: this.host.layout.symlinks,
        cgroupProcs: this.zygoteCgroup.joinPaths(),
        newPid: false,
        tmpMb: 16,
        hostname: this.host.opts.hostname ?? 'hearth',
        nofile: 4096,
      },
      onExit: (exit) => {
        const inst = this.host.instances.get(exit.id);
        if (inst && inst.pid === exit.pid) inst.zygoteExited(exit);
        else if (!inst) this.earlyExits.set(exit.id, exit);
      },
      onDeath: (status) => {
        if (!this.host.stopping) this.host.log.warn({ ...status }, 'python zygote exited; it restarts on the next python spawn');
        for (const inst of this.host.instances.values()) {
          inst.orphaned = true;
        }
        for (const inst of this.host.instances.values()) inst.poll();
        if (this.zygote === z) this.zygote = undefined;
      },
    });
    try {
      await z.start();
    } catch (e) {
      await z.stop();
      throw e instanceof HearthError ? e : new HearthError('UNAVAILABLE', `cannot start the python zygote: ${(e as Error).message}`, { cause: e });
    }
    this.zygote = z;
    this.host.log.info({ zygotePid: z.pid }, 'python zygote ready');
    return z;
  }

  /** Stop the zygote (after a start under way settles). Its forks are the driver's to kill. */
  async stop(): Promise<void> {
    try {
      await this.zygoteStarting;
    } catch {
      // failed start: nothing to stop
    }
    if (this.zygote) await this.zygote.stop();
    this.zygote = undefined;
  }
}
