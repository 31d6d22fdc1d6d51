/**
 * One daemon per state directory. The lock is an abstract Unix socket named after the state dir's
 * real path (`\0hearth-state/<sha256>`): bind() is atomic, and the kernel releases the name when
 * the holder dies however it dies (kill -9 included), so there is no stale lock to judge and no pid
 * reuse to fear. Its fd is close-on-exec: sandboxes never inherit it. The holder's pid is written
 * to `<stateDir>/daemon.pid`, only to name it when a second daemon is refused.
 *
 * Linux only (abstract socket names); the names live in the network namespace of the daemon,
 * which is the host's.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HearthError } from '../errors.js';

export const PID_FILE = 'daemon.pid';

/** The abstract socket name that locks stateDir (which must exist). */
export function lockAddress(stateDir: string): string {
  return `\0hearth-state/${createHash('sha256').update(realpathSync(stateDir)).digest('hex')}`;
}

/** Reads the pid the lock holder wrote, if any. */
export function readHolderPid(stateDir: string): number | undefined {
  try {
    const n = Number(readFileSync(path.join(stateDir, PID_FILE), 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export class StateLock {
  private released = false;
  private constructor(
    readonly stateDir: string,
    private readonly server: net.Server,
  ) {}

  /**
   * Takes the lock on stateDir (created 0700 if missing) and writes the pid file. CONFLICT when
   * another live process holds it, naming that process's pid.
   */
  static async acquire(stateDir: string): Promise<StateLock> {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const server = net.createServer((c) => c.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(lockAddress(stateDir), () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      const pid = readHolderPid(stateDir);
      throw new HearthError(
        'CONFLICT',
        `state directory ${stateDir} is in use by another hearth daemon (${pid === undefined ? 'pid unknown' : `pid ${pid}`}); stop it first or use another --state-dir`,
      );
    }
    server.unref();
    writeFileSync(path.join(stateDir, PID_FILE), `${process.pid}\n`, { mode: 0o644 });
    return new StateLock(stateDir, server);
  }

  /** Removes the pid file (if still ours) and frees the lock. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (readHolderPid(this.stateDir) === process.pid) rmSync(path.join(this.stateDir, PID_FILE), { force: true });
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
