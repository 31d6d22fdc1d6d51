/**
 * The in-memory code store (`CodeStore`, code-store.ts), for tests and tools that run no instance.
 * Archives are checked exactly as on disk (same extractor, same limits, in a private scratch
 * directory removed before `put` returns); what is kept is each bundle's file list. `path(sha)`
 * names no real directory (`<root>/<sha>`, root `/memory-code-store` by default): nothing can be
 * mounted from this store.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_ARCHIVE_LIMITS, extractArchive, type ArchiveLimits } from './bundle-extractor.js';
import {
  bundleHasHandler,
  checkPackedSize,
  checkSha,
  sha256Hex,
  type CodeStore,
  type PutResult,
} from './code-store.js';
import type { Runtime } from './function-spec.js';

interface Bundle {
  size: number;
  unpackedBytes: number;
  /** Regular files (symlinks to them included), relative posix paths. */
  files: Set<string>;
  /** Every directory's names, '' for the root. */
  dirs: Map<string, string[]>;
}

export interface MemoryCodeStoreOptions {
  limits?: Partial<ArchiveLimits>;
  /** What `path` is under (default `/memory-code-store`). */
  root?: string;
}

export class MemoryCodeStore implements CodeStore {
  readonly limits: Readonly<ArchiveLimits>;
  private readonly root: string;
  private readonly bundles = new Map<string, Bundle>();
  private readonly inflight = new Map<string, Promise<PutResult>>();

  constructor(opts: MemoryCodeStoreOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_ARCHIVE_LIMITS, ...(opts.limits ?? {}) });
    this.root = opts.root ?? '/memory-code-store';
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    await Promise.allSettled([...this.inflight.values()]);
  }

  path(sha: string): string {
    return path.posix.join(this.root, checkSha(sha));
  }

  async has(sha: string): Promise<boolean> {
    return this.bundles.has(checkSha(sha));
  }

  async put(archive: Buffer): Promise<PutResult> {
    checkPackedSize(archive, this.limits);
    const sha = sha256Hex(archive);
    const running = this.inflight.get(sha);
    if (running) {
      const r = await running;
      return { ...r, reused: true, format: undefined };
    }
    const p = this.unpack(sha, archive);
    this.inflight.set(sha, p);
    try {
      return await p;
    } finally {
      this.inflight.delete(sha);
    }
  }

  private async unpack(sha: string, archive: Buffer): Promise<PutResult> {
    const have = this.bundles.get(sha);
    if (have) return { sha256: sha, size: have.size, unpackedBytes: have.unpackedBytes, dir: this.path(sha), reused: true };
    const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-memory-code-'));
    try {
      const r = await extractArchive(archive, scratch, this.limits, { fsync: false });
      const bundle: Bundle = { size: archive.length, unpackedBytes: r.unpackedBytes, files: new Set(), dirs: new Map() };
      await index(scratch, '', bundle);
      this.bundles.set(sha, bundle);
      return { sha256: sha, size: archive.length, unpackedBytes: r.unpackedBytes, dir: this.path(sha), reused: false, format: r.format };
    } finally {
      await fsp.rm(scratch, { recursive: true, force: true });
    }
  }

  async remove(sha: string): Promise<boolean> {
    checkSha(sha);
    await this.inflight.get(sha)?.catch(() => undefined);
    return this.bundles.delete(sha);
  }

  async list(): Promise<string[]> {
    return [...this.bundles.keys()].sort();
  }

  async gc(liveShas: Iterable<string>): Promise<string[]> {
    const live = new Set(liveShas);
    const removed: string[] = [];
    for (const sha of await this.list()) {
      if (live.has(sha) || this.inflight.has(sha)) continue;
      if (this.bundles.delete(sha)) removed.push(sha);
    }
    return removed;
  }

  async hasHandlerFile(sha: string, handler: string, runtime: Runtime): Promise<boolean> {
    const b = this.bundles.get(checkSha(sha));
    if (!b) return false;
    return bundleHasHandler(
      {
        isFile: async (rel) => b.files.has(path.posix.normalize(rel)),
        names: async (rel) => b.dirs.get(rel === '.' ? '' : path.posix.normalize(rel)) ?? [],
      },
      handler,
      runtime,
    );
  }
}

/** Records the files and directories of an unpacked tree (symlinks resolved; the extractor keeps them inside). */
async function index(root: string, rel: string, into: Bundle): Promise<void> {
  const names: string[] = [];
  for (const ent of await fsp.readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    names.push(ent.name);
    const st = ent.isSymbolicLink() ? await fsp.stat(path.join(root, r)).catch(() => undefined) : undefined;
    if (ent.isDirectory()) await index(root, r, into);
    else if (ent.isFile() || st?.isFile()) into.files.add(r);
  }
  into.dirs.set(rel, names.sort());
}
