/**
 * Everything the benchmark creates registers its undo here: child processes (by PID), temporary
 * directories, cgroups. `runAll()` undoes in reverse order and is what SIGINT/SIGTERM trigger, so
 * an interrupted run leaves the host as it found it.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface Task {
  name: string;
  run: () => Promise<void> | void;
}

export class Cleanup {
  private readonly tasks: Task[] = [];
  /** Names of what the run created (for checking that none is left afterwards). */
  readonly created: { cgroups: string[]; dirs: string[] } = { cgroups: [], dirs: [] };
  private running: Promise<void> | undefined;
  /** Set once an interrupt arrived: long loops check it (see `check`) and stop. */
  aborted = false;

  /** Throws once the run has been interrupted, so that a suite's loop ends early. */
  check(): void {
    if (this.aborted) throw new Error('interrupted');
  }

  /** Registers an undo step; returns a function that runs it now (once) and unregisters it. */
  add(name: string, run: () => Promise<void> | void): () => Promise<void> {
    const task: Task = { name, run };
    this.tasks.push(task);
    return async () => {
      const i = this.tasks.indexOf(task);
      if (i < 0) return;
      this.tasks.splice(i, 1);
      await task.run();
    };
  }

  /** Runs every registered step, last first; errors are reported and do not stop the others. */
  runAll(): Promise<void> {
    if (!this.running) {
      this.running = (async () => {
        while (this.tasks.length) {
          const t = this.tasks.pop()!;
          try {
            await t.run();
          } catch (err) {
            process.stderr.write(`bench: cleanup ${t.name} failed: ${(err as Error).message}\n`);
          }
        }
      })();
    }
    return this.running;
  }

  /** On SIGINT/SIGTERM: undo everything, then exit 130/143. */
  installSignalHandlers(): void {
    const on = (sig: NodeJS.Signals, code: number): void => {
      process.once(sig, () => {
        this.aborted = true;
        process.stderr.write(`bench: ${sig}: cleaning up\n`);
        void this.runAll().finally(() => process.exit(code));
      });
    };
    on('SIGINT', 130);
    on('SIGTERM', 143);
  }
}

/** Sends `signal` to a pid we started; ignores a process that is already gone. */
export function killPid(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * Removes cgroup `name` under every controller (v1) and the v2 root: kills the processes inside
 * (they are ours: the cgroup name is unique to this run), then removes directories deepest first.
 */
export function removeCgroups(name: string): string[] {
  const left: string[] = [];
  if (!existsSync(CGROUP_ROOT)) return left;
  const roots = [CGROUP_ROOT, ...readdirSync(CGROUP_ROOT).map((d) => join(CGROUP_ROOT, d))];
  for (const root of roots) {
    const dir = join(root, name);
    try {
      if (!statSync(dir).isDirectory()) continue;
    } catch {
      continue;
    }
    const dirs: string[] = [];
    const walk = (d: string): void => {
      dirs.push(d);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    };
    walk(dir);
    for (const d of dirs) {
      try {
        for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) killPid(Number(p));
      } catch {
        /* no procs file */
      }
    }
    for (const d of dirs.reverse()) {
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(d);
          break;
        } catch {
          const end = Date.now() + 20;
          while (Date.now() < end) {
            /* wait for the killed processes to be reaped */
          }
        }
      }
      if (existsSync(d)) left.push(d);
    }
  }
  return left;
}
