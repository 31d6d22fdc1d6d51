/**
 * The typed interface of the sandbox addon (build/Release/hearth.node, native/src/), loaded through
 * the one addon loader (src/native/loader.ts). Every function is synchronous, takes primitives and
 * returns plain values or fds; a wrong argument type throws a TypeError (code ERR_INVALID_ARG_VALUE);
 * failures throw Node-style system errors (`code` such as 'EPERM', negative `errno`, `syscall`,
 * and for spawn the failed `step`). Unit tests hand the in-memory FakeBinding to SandboxDriver
 * (its `binding` option), or inject it for every caller with injectAddon('hearth', fake).
 */
import { addonDir, addonDirCandidates, loadAddon } from '../native/loader.js';
import type { CgroupPlan } from './cgroup-plan.js';
import { systemError } from '../native/system-error.js';

/** A read-only bind of a host path (`src`) at `dst` inside the sandbox root. */
export interface BindMount {
  src: string;
  dst: string;
}

/** A symlink created in the sandbox root: `path` -> `target`. */
export interface SymlinkSpec {
  target: string;
  path: string;
}

export interface SpawnOptions {
  /** argv[0] is the absolute path of the executable inside the sandbox. */
  argv: string[];
  /** `KEY=value` strings; empty for a clean environment. */
  env: string[];
  /** An existing empty host directory; a tmpfs is mounted on it inside the child's mount namespace only. */
  rootDir: string;
  binds: BindMount[];
  symlinks?: SymlinkSpec[];
  /** cgroup.procs files the child joins (writes "0") before anything else. */
  cgroupProcs: string[];
  /** Becomes fd 3 in the child. */
  socketFd: number;
  /** true: a new PID namespace and the full instance entry (drop to uid/gid, seccomp). false: the zygote (keeps root). */
  newPid: boolean;
  uid?: number;
  gid?: number;
  /** Size of the private /tmp in MiB. */
  tmpMb?: number;
  hostname?: string;
  /** RLIMIT_NOFILE (soft and hard). */
  nofile?: number;
  /**
   * A network namespace fd (e.g. from the network manager's prepareInstanceNetns). The child joins
   * it with setns() first thing instead of getting a new, empty network namespace; every other
   * namespace is still new. The caller keeps ownership (the addon never closes it; the child's copy
   * is closed before execve). Default: a new network namespace.
   */
  netnsFd?: number;
  /**
   * The instance's seccomp allow-list (native/src/seccomp-filter.cc, docs/sandbox.md): `general`
   * (default: any program), `node`, `python`. Only with newPid.
   */
  seccompProfile?: SeccompProfile;
  /**
   * With newPid: the instance also gets a user namespace of its own, made after dropping to uid/gid
   * (the pool ids), its ids unmapped until the daemon writes the maps at specialisation
   * (SandboxProcess.setIdentity; native/include/hearth/sandbox.h). Default false.
   */
  userns?: boolean;
}

/** The seccomp profiles the native side knows (one per runtime kind; `general` for any program). */
export type SeccompProfile = 'general' | 'node' | 'python';

export interface SpawnResult {
  pid: number;
  /** Close-on-exec pidfd of the child; the caller closes it. */
  pidfd: number;
}

export interface ExitStatus {
  code: number | null;
  signal: number | null;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface NativeBinding {
  /** Clone a sandboxed child and execve argv in it; returns once it has exec'd (throws with `step` if any step failed). */
  spawn(opts: SpawnOptions): SpawnResult;
  /**
   * spawn() with the clone made on the libuv thread pool: the event loop runs on while the child
   * builds its root. Bad options throw at once; a failed step rejects with the error spawn() throws.
   * The fds named in opts must stay open until it settles.
   */
  spawnAsync(opts: SpawnOptions): Promise<SpawnResult>;
  /** Attach srcDir read-only/nosuid/nodev at `target` in the mount namespace of pid (or pidfd when >= 0). */
  mountCode(pid: number, srcDir: string, target: string, pidfd?: number): void;
  /** AF_UNIX SOCK_STREAM pair, both ends close-on-exec. */
  socketpair(): [number, number];
  /** One sendmsg of `data` with the fds attached (SCM_RIGHTS); returns bytes sent. */
  sendFds(fd: number, data: Buffer, fds: number[]): number;
  closeFd(fd: number): void;
  peerCredentials(fd: number): PeerCredentials;
  /** Non-blocking: null while the child runs, its status once reaped. Throws ECHILD if not our child. */
  waitPid(pid: number): ExitStatus | null;
  /** Send a signal; through the pidfd when one is given (immune to pid reuse). */
  kill(pid: number, signal: number, pidfd?: number): void;
  pidfdOpen(pid: number): number;
  /** true once the process behind the pidfd has terminated. */
  pidfdExited(pidfd: number): boolean;
  /**
   * Busy-polls this thread's event loop (its epoll fd) for up to `maxUs` µs without sleeping;
   * returns the µs spun once any event is ready, or -1 when none became ready in time.
   */
  spinUntilLoopEvent(maxUs: number): number;
  /**
   * On the libuv pool: mkdir each of `mkdirs`, write each value (open, one write, close; `skip`
   * ignores ENOENT or any error), open each of `open` O_WRONLY|O_CLOEXEC; resolves with those fds.
   * A failure undoes it all and rejects with a system error (`syscall`, `path`, `step` "cgroup").
   */
  cgroupCreateAsync(plan: CgroupPlan): Promise<number[]>;
}

/** Candidate directories of hearth.node, most specific first (see src/native/loader.ts). */
export function nativeDirCandidates(): string[] {
  return addonDirCandidates();
}

/** The directory holding hearth.node and hearth_sandbox.so (bind-mounted at /hearth/native). */
export function nativeDir(): string {
  return addonDir('hearth');
}

/** The binding: the injected fake if any, else the built addon (loaded once). */
export function binding(): NativeBinding {
  return loadAddon<NativeBinding>('hearth');
}

/** A Node-style system error, as the addon throws them (used by the fake). */
export { systemError };

/** What the fake records about one spawned process. */
export interface FakeProcess {
  pid: number;
  pidfd: number;
  opts: SpawnOptions;
  mounts: { srcDir: string; target: string }[];
  signals: number[];
  exit: ExitStatus | null;
  reaped: boolean;
}

/**
 * In-memory binding for unit tests: no processes, no mounts. Spawned "processes" live until a test
 * calls `exit()` or a SIGKILL is sent; fds are plain counters. Set `failSpawn` to make the next
 * spawn throw that error.
 */
export class FakeBinding implements NativeBinding {
  readonly processes = new Map<number, FakeProcess>();
  readonly sent: { fd: number; data: Buffer; fds: number[] }[] = [];
  readonly closed: number[] = [];
  failSpawn: Error | undefined;
  private nextPid = 1000;
  private nextFd = 100;

  spawn(opts: SpawnOptions): SpawnResult {
    if (this.failSpawn) {
      const e = this.failSpawn;
      this.failSpawn = undefined;
      throw e;
    }
    const pid = this.nextPid++;
    const pidfd = this.nextFd++;
    this.processes.set(pid, { pid, pidfd, opts, mounts: [], signals: [], exit: null, reaped: false });
    return { pid, pidfd };
  }
  spawnAsync(opts: SpawnOptions): Promise<SpawnResult> {
    // A throw in the executor rejects, as the addon's worker does for a failed step.
    return new Promise((resolve) => resolve(this.spawn(opts)));
  }
  mountCode(pid: number, srcDir: string, target: string): void {
    const p = this.processes.get(pid);
    if (!p || p.exit) throw systemError('ENOENT', 2, 'open', 'no such process');
    p.mounts.push({ srcDir, target });
  }
  socketpair(): [number, number] {
    return [this.nextFd++, this.nextFd++];
  }
  sendFds(fd: number, data: Buffer, fds: number[]): number {
    this.sent.push({ fd, data: Buffer.from(data), fds: [...fds] });
    return data.length;
  }
  closeFd(fd: number): void {
    this.closed.push(fd);
  }
  peerCredentials(): PeerCredentials {
    return { pid: process.pid, uid: 0, gid: 0 };
  }
  waitPid(pid: number): ExitStatus | null {
    const p = this.processes.get(pid);
    if (!p || p.reaped) throw systemError('ECHILD', 10, 'waitpid');
    if (!p.exit) return null;
    p.reaped = true;
    return p.exit;
  }
  kill(pid: number, signal: number): void {
    const p = this.processes.get(pid);
    if (!p || p.exit) throw systemError('ESRCH', 3, 'kill');
    p.signals.push(signal);
    if (signal === 9) p.exit = { code: null, signal: 9 };
  }
  pidfdOpen(pid: number): number {
    if (!this.processes.has(pid)) throw systemError('ESRCH', 3, 'pidfd_open');
    return this.nextFd++;
  }
  pidfdExited(pidfd: number): boolean {
    for (const p of this.processes.values()) if (p.pidfd === pidfd) return p.exit !== null;
    return true;
  }
  /** The fake never spins: it has no loop of its own to watch. */
  spinUntilLoopEvent(): number {
    return -1;
  }
  /** The fake has no cgroup file system (unit tests use MemoryCgroupFs, which runs plans itself). */
  cgroupCreateAsync(): Promise<number[]> {
    return Promise.reject(systemError('ENOSYS', 38, 'mkdir', 'the fake binding has no cgroups'));
  }
  /** Test hook: make a fake process terminate. */
  exit(pid: number, status: ExitStatus): void {
    const p = this.processes.get(pid);
    if (p) p.exit = status;
  }
}
