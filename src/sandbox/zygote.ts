/**
 * The daemon's side of the Python zygote (src/runtimes/python/zygote.py): starts it in a sandbox
 * that keeps root, waits for `ready`, asks it to fork instances and hears about their exits.
 *
 * Concurrency: fork requests may be issued concurrently; the zygote serves them in order and its
 * replies are matched by instance id. Requests to the zygote are written with one sendmsg each
 * (fds attached), never through the net.Socket, so frames never interleave.
 * When the zygote dies every pending fork rejects and `alive` turns false; the driver starts a new
 * one on the next request.
 */
import net from 'node:net';
import { HearthError } from '../errors.js';
import { encodeFrame, FrameDecoder } from '../wire/frame.js';
import type { NativeBinding, SpawnOptions } from './binding.js';

export interface ZygoteForkRequest {
  id: string;
  uid: number;
  gid: number;
  tmpMb: number;
  hostname: string;
  /** Becomes fd 3 of the instance. The caller keeps ownership (may close it after fork() resolves). */
  socketFd: number;
  /** Open (write) fds of the instance's cgroup.procs files. Same ownership as socketFd. */
  cgroupFds: number[];
  /**
   * A network namespace fd the instance joins (setns) instead of getting a new one. Same ownership
   * as socketFd: the zygote receives a copy and closes it after the fork.
   */
  netnsFd?: number;
  /** A user namespace of its own, unmapped until specialisation (SpawnOptions.userns). */
  userns?: boolean;
  /** Run the shim's warm-up in the new instance before it says ready (a generic instance). */
  warmUp?: boolean;
  /** What the instance serves: the Python shim (default) or the `provided` runtime's Runtime API relay. */
  runtime?: 'python' | 'provided';
  /** false: the shim is PID 1 itself (no reaper); default true. */
  init?: boolean;
}

export interface ZygoteExit {
  id: string;
  pid: number;
  code: number | null;
  signal: number | null;
}

export interface ZygoteOptions {
  binding: NativeBinding;
  /** spawn() options for the zygote, except socketFd (filled in here). */
  spawn: Omit<SpawnOptions, 'socketFd'>;
  /** ms to wait for `ready`. */
  readyTimeoutMs?: number;
  /** Called once per forked instance that ends (while the zygote lives). */
  onExit?: (exit: ZygoteExit) => void;
  /** Called once when the zygote process is gone (after it was reaped). */
  onDeath?: (status: { code: number | null; signal: number | null }) => void;
}

interface Pending {
  resolve: (pid: number) => void;
  reject: (e: Error) => void;
}

/** A running Python zygote. */
export class Zygote {
  pid = -1;
  private pidfd = -1;
  private socket: net.Socket | undefined;
  private fd = -1;
  private readonly pending = new Map<string, Pending>();
  private dead = false;
  private deathNotified = false;
  private readyWaiter: Pending | undefined;

  constructor(private readonly opts: ZygoteOptions) {}

  /** Running and not known to be dead (checks the pidfd, so a fresh kill is noticed at once). */
  get alive(): boolean {
    if (this.pid <= 0 || this.dead) return false;
    try {
      return this.pidfd < 0 || !this.opts.binding.pidfdExited(this.pidfd);
    } catch {
      return false;
    }
  }

  /** Spawn the zygote and wait for its `ready`. Rejects (and cleans up) on failure. */
  async start(): Promise<void> {
    const b = this.opts.binding;
    const [mine, theirs] = b.socketpair();
    try {
      const r = b.spawn({ ...this.opts.spawn, socketFd: theirs });
      this.pid = r.pid;
      this.pidfd = r.pidfd;
    } catch (e) {
      b.closeFd(mine);
      b.closeFd(theirs);
      throw e;
    }
    b.closeFd(theirs);
    this.fd = mine;
    const socket = new net.Socket({ fd: mine, readable: true, writable: true });
    this.socket = socket;
    const decoder = new FrameDecoder((m) => this.onMessage(m));
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
    const timeoutMs = this.opts.readyTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readyWaiter = undefined;
        reject(new HearthError('UNAVAILABLE', `python zygote not ready after ${timeoutMs} ms`));
        this.kill();
      }, timeoutMs);
      this.readyWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Fork one instance; resolves with its host pid once it has entered its sandbox. */
  fork(req: ZygoteForkRequest): Promise<number> {
    if (!this.alive || this.fd < 0) return Promise.reject(new HearthError('UNAVAILABLE', 'python zygote is not running'));
    if (this.pending.has(req.id)) return Promise.reject(new HearthError('CONFLICT', `fork of ${req.id} already pending`));
    // SCM_RIGHTS order: instance socket, cgroup.procs fds, then the netns fd (its index is sent as `netns`)
    const fds = [req.socketFd, ...req.cgroupFds];
    const msg: Record<string, unknown> = {
      t: 'fork',
      id: req.id,
      uid: req.uid,
      gid: req.gid,
      tmpMb: req.tmpMb,
      hostname: req.hostname,
    };
    if (req.warmUp) msg['warmUp'] = true;
    if (req.runtime === 'provided') msg['runtime'] = 'provided';
    if (req.init === false) msg['init'] = false;
    if (req.userns === true) msg['userns'] = true;
    if (req.netnsFd !== undefined) {
      msg['netns'] = fds.length;
      fds.push(req.netnsFd);
    }
    msg['nfds'] = fds.length;
    const frame = encodeFrame(msg);
    return new Promise<number>((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      try {
        const n = this.opts.binding.sendFds(this.fd, frame, fds);
        if (n !== frame.length) throw new Error(`short write to the zygote (${n} of ${frame.length} bytes)`);
      } catch (e) {
        this.pending.delete(req.id);
        reject(new HearthError('UNAVAILABLE', `cannot reach the python zygote: ${(e as Error).message}`, { cause: e }));
        this.kill();
      }
    });
  }

  private onMessage(m: { t: string } & Record<string, unknown>): void {
    if (m.t === 'ready') {
      this.readyWaiter?.resolve(0);
      this.readyWaiter = undefined;
      return;
    }
    const id = typeof m['id'] === 'string' ? m['id'] : undefined;
    if (id === undefined) return;
    if (m.t === 'forked' || m.t === 'fork_error') {
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (m.t === 'forked' && typeof m['pid'] === 'number') p.resolve(m['pid']);
      else p.reject(new HearthError('UNAVAILABLE', `python zygote could not fork ${id}: ${typeof m['message'] === 'string' ? m['message'] : 'unknown error'}`));
      return;
    }
    if (m.t === 'exited' && typeof m['pid'] === 'number') {
      this.opts.onExit?.({
        id,
        pid: m['pid'],
        code: typeof m['code'] === 'number' ? m['code'] : null,
        signal: typeof m['signal'] === 'number' ? m['signal'] : null,
      });
    }
  }

  private onClose(): void {
    this.dead = true;
    this.fd = -1;
    const err = new HearthError('UNAVAILABLE', 'python zygote exited');
    this.readyWaiter?.reject(err);
    this.readyWaiter = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.kill();
    this.reap();
  }

  /** Poll until the zygote is reaped (it is our direct child), then report its death once. */
  private reap(delay = 1): void {
    if (this.pid <= 0 || this.deathNotified) return;
    let status: { code: number | null; signal: number | null } | null;
    try {
      status = this.opts.binding.waitPid(this.pid);
    } catch {
      status = { code: null, signal: null };
    }
    if (status === null) {
      setTimeout(() => this.reap(Math.min(delay * 2, 100)), delay);
      return;
    }
    this.deathNotified = true;
    if (this.pidfd >= 0) {
      this.opts.binding.closeFd(this.pidfd);
      this.pidfd = -1;
    }
    this.opts.onDeath?.(status);
  }

  /** SIGKILL the zygote (its instances live on in their own PID namespaces). */
  kill(): void {
    if (this.pid <= 0 || this.deathNotified) return;
    try {
      this.opts.binding.kill(this.pid, 9, this.pidfd);
    } catch {
      // already gone
    }
  }

  /** Kill the zygote and wait until it is reaped. */
  async stop(): Promise<void> {
    if (this.pid <= 0 || this.deathNotified) return;
    const gone = new Promise<void>((resolve) => {
      const prev = this.opts.onDeath;
      this.opts.onDeath = (s) => {
        prev?.(s);
        resolve();
      };
    });
    this.kill();
    this.socket?.destroy();
    await gone;
  }
}
