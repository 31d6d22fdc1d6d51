/**
 * One running sandboxed process and how its end is noticed: the socket closing, SIGCHLD (one
 * process-wide listener shared by every started driver), or the zygote's exit report. Whatever comes
 * first starts polling; `exited` resolves exactly once, after the process is reaped (by waitpid for
 * children of the daemon, by the zygote for forked ones) and its cgroup removed.
 */
import fs from 'node:fs';
import type net from 'node:net';
import { HearthError } from '../errors.js';
import type { NativeBinding } from './binding.js';
import type { Cgroup, CgroupLimits } from './cgroups.js';
import type { SandboxLogger } from './sandbox-options.js';
import type { InstanceLimits, SandboxExit, SandboxProcess } from './types.js';

/** What an instance needs from the driver that owns it. */
export interface InstanceOwner {
  readonly native: NativeBinding;
  readonly log: SandboxLogger;
  /** The instance is gone: stop tracking it. */
  forget(inst: SandboxProcess): void;
}

/** A live instance; `kind` says who reaps it: the daemon (`child`) or the zygote (`zygote`). */
export class SandboxInstance implements SandboxProcess {
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
    private readonly driver: InstanceOwner,
    /** PID 1 is a reaper (hearth-init, the zygote's reap_until) that reports the runtime's death by signal N as exit code 128 + N. */
    private readonly underInit = false,
    /** Made with a user namespace of its own whose ids are not mapped yet (setIdentity maps them). */
    private readonly userns = false,
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

  setIdentity(uid: number, gid: number): boolean {
    if (!this.userns) return false;
    if (this.done) throw new HearthError('INTERNAL', `instance ${this.id} has exited`);
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0 || gid <= 0) {
      throw new HearthError('INTERNAL', `instance ${this.id}: refusing to map root inside to host id ${uid}:${gid}`);
    }
    // The daemon holds CAP_SETUID/CAP_SETGID in the parent (host) user namespace, so it may map any
    // id; setgroups first (before gid_map), so that root inside can never drop supplementary groups.
    const proc = `/proc/${this.pid}`;
    try {
      // pid reuse: the pidfd is still open, so this.pid is our instance until it is reaped (done).
      fs.writeFileSync(`${proc}/setgroups`, 'deny');
      fs.writeFileSync(`${proc}/uid_map`, `0 ${uid} 1\n`);
      fs.writeFileSync(`${proc}/gid_map`, `0 ${gid} 1\n`);
    } catch (e) {
      throw new HearthError('INTERNAL', `cannot map root of ${this.id} to host uid ${uid}: ${(e as Error).message}`, { cause: e });
    }
    return true;
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
    let gone: boolean;
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

  private finish(status: { code: number | null; signal: number | null }): void {
    if (this.done) return;
    this.done = true;
    const st = this.underInit ? fromInitStatus(status) : status;
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

/** The runtime's status from its reaper's: exit code 128 + N (N a signal number) means killed by signal N. */
export function fromInitStatus(st: { code: number | null; signal: number | null }): { code: number | null; signal: number | null } {
  if (st.code !== null && st.code > 128 && st.code < 128 + 65) return { code: null, signal: st.code - 128 };
  return st;
}

/** Started drivers' SIGCHLD handlers, behind one process listener (not one per driver). */
const sigchldHandlers = new Set<() => void>();
const onProcessSigchld = (): void => {
  for (const h of sigchldHandlers) h();
};
export function watchSigchld(h: () => void): void {
  if (sigchldHandlers.size === 0) process.on('SIGCHLD', onProcessSigchld);
  sigchldHandlers.add(h);
}
export function unwatchSigchld(h: () => void): void {
  sigchldHandlers.delete(h);
  if (sigchldHandlers.size === 0) process.removeListener('SIGCHLD', onProcessSigchld);
}
