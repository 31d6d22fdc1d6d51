/**
 * The code store on disk (`CodeStore`, code-store.ts): `<dir>/<sha256 of the archive bytes>/`
 * holds a bundle, unpacked once, read-only by convention (the pool mounts it read-only at an
 * instance's `/code`).
 *
 * Beyond the contract:
 * - Two stores on one directory (two processes) may race a `put`: the loser of the final rename
 *   discards its copy.
 * - Extraction happens in `<dir>/.tmp-*` and is renamed into place; on any failure the temporary
 *   directory is removed. Nothing is ever written outside `<dir>`. Removal renames to
 *   `<dir>/.trash-*` first, so `has` never sees half a bundle.
 * - `start()` (or `cleanupTemp()`) removes temporary and trash directories a crash left behind.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DEFAULT_ARCHIVE_LIMITS, extractArchive, fsyncDir, type ArchiveLimits } from './bundle-extractor.js';
import { bundleHasHandler, checkPackedSize, checkSha, putOnce, sha256Hex, SHA256_PATTERN, type CodeStore, type PutResult } from './code-store.js';
import type { Runtime } from './function-spec.js';

const TEMP_PREFIX = '.tmp-';
const TRASH_PREFIX = '.trash-';

export interface DirCodeStoreOptions {
  limits?: Partial<ArchiveLimits>;
  /** fsync files and directories of each new bundle (default true; tests may turn it off). */
  fsync?: boolean;
  /**
   * Adds derived files to a new bundle's unpacked directory before it is renamed into place
   * (the daemon: Python bytecode, src/registry/bytecode.ts), with the store's fsync setting for
   * the files it writes. Must not throw; it may leave the directory as it was.
   */
  prepare?: (dir: string, opts: { fsync: boolean }) => Promise<void>;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Sum of regular file sizes under `dir` (each inode once), without following symlinks. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    for (const ent of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) {
        const st = await fsp.lstat(p);
        const key = `${st.dev}:${st.ino}`;
        if (!seen.has(key)) {
          seen.add(key);
          total += st.size;
        }
      }
    }
  };
  await walk(dir);
  return total;
}

export class DirCodeStore implements CodeStore {
  readonly dir: string;
  readonly limits: Readonly<ArchiveLimits>;
  private readonly fsync: boolean;
  private readonly prepare: DirCodeStoreOptions['prepare'];
  /** One unpack per sha at a time; removals wait for it. */
  private readonly inflight = new Map<string, Promise<PutResult>>();

  constructor(dir: string, opts: DirCodeStoreOptions = {}) {
    this.dir = path.resolve(dir);
    this.limits = Object.freeze({ ...DEFAULT_ARCHIVE_LIMITS, ...(opts.limits ?? {}) });
    this.fsync = opts.fsync ?? true;
    this.prepare = opts.prepare;
  }

  /** Creates the store directory (0700) and removes leftovers of a crashed run. */
  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.cleanupTemp();
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.inflight.values()]);
  }

  /** Removes `.tmp-*` and `.trash-*` directories. Call only when no `put` is running (at start). */
  async cleanupTemp(): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return removed;
      throw err;
    }
    for (const name of names) {
      if (name.startsWith(TEMP_PREFIX) || name.startsWith(TRASH_PREFIX)) {
        await fsp.rm(path.join(this.dir, name), { recursive: true, force: true });
        removed.push(name);
      }
    }
    return removed;
  }

  /** Absolute path of a bundle (whether or not it exists). */
  path(sha: string): string {
    return path.join(this.dir, checkSha(sha));
  }

  async has(sha: string): Promise<boolean> {
    return exists(this.path(sha));
  }

  /** Stores an archive. See the class contract. */
  async put(archive: Buffer): Promise<PutResult> {
    checkPackedSize(archive, this.limits);
    const sha = sha256Hex(archive);
    return putOnce(this.inflight, sha, () => this.unpack(sha, archive));
  }

  private async unpack(sha: string, archive: Buffer): Promise<PutResult> {
    const final = path.join(this.dir, sha);
    if (await exists(final)) {
      return { sha256: sha, size: archive.length, unpackedBytes: await treeBytes(final), dir: final, reused: true };
    }
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = await fsp.mkdtemp(path.join(this.dir, TEMP_PREFIX));
    try {
      const r = await extractArchive(archive, tmp, this.limits, { fsync: this.fsync });
      await fsp.chmod(tmp, 0o755);
      await this.prepare?.(tmp, { fsync: this.fsync });
      try {
        await fsp.rename(tmp, final);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        // Another process stored the same bytes first: identical content, keep theirs.
        await fsp.rm(tmp, { recursive: true, force: true });
        return { sha256: sha, size: archive.length, unpackedBytes: r.unpackedBytes, dir: final, reused: true };
      }
      if (this.fsync) await fsyncDir(this.dir);
      return { sha256: sha, size: archive.length, unpackedBytes: r.unpackedBytes, dir: final, reused: false, format: r.format };
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /** Removes a bundle; returns whether it existed. Waits for a running `put` of the same sha. */
  async remove(sha: string): Promise<boolean> {
    checkSha(sha);
    const running = this.inflight.get(sha);
    if (running) await running.catch(() => undefined);
    const final = path.join(this.dir, sha);
    const trash = path.join(this.dir, `${TRASH_PREFIX}${sha}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    try {
      await fsp.rename(final, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await fsp.rm(trash, { recursive: true, force: true });
    return true;
  }

  /** Every sha in the store. */
  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter((n) => SHA256_PATTERN.test(n)).sort();
  }

  /**
   * Removes every bundle not in `liveShas` (and not being stored right now). The caller passes the
   * shas of all functions *and* of code still mounted in running instances. Returns removed shas.
   */
  async gc(liveShas: Iterable<string>): Promise<string[]> {
    const live = new Set(liveShas);
    const removed: string[] = [];
    for (const sha of await this.list()) {
      if (live.has(sha) || this.inflight.has(sha)) continue;
      if (await this.remove(sha)) removed.push(sha);
    }
    return removed;
  }

  async hasHandlerFile(sha: string, handler: string, runtime: Runtime): Promise<boolean> {
    const root = this.path(sha);
    return bundleHasHandler(
      {
        isFile: async (rel) => {
          try {
            return (await fsp.stat(path.join(root, rel))).isFile();
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return false;
            throw err;
          }
        },
        names: (rel) => fsp.readdir(path.join(root, rel)).catch(() => []),
        isExecutable: async (rel) => {
          const st = await fsp.stat(path.join(root, rel)).catch(() => undefined);
          return st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;
        },
      },
      handler,
      runtime,
    );
  }
}
