/**
 * The in-memory code store (`CodeStore`, code-store.ts), for tests and tools that run no instance.
 * Archives are checked exactly as on disk (same extractor, same limits, in a private scratch
 * directory removed before `put` returns); what is kept is each bundle's tree of names (files,
 * directories, symlinks and their targets), enough to answer `hasHandlerFile` as the disk would. `path(sha)`
 * names no real directory (`<root>/<sha>`, root `/memory-code-store` by default): nothing can be
 * mounted from this store.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_ARCHIVE_LIMITS, extractArchive, type ArchiveLimits } from './bundle-extractor.js';
import { bundleHasHandler, checkPackedSize, checkSha, putOnce, sha256Hex, type CodeStore, type PutResult } from './code-store.js';
import type { Runtime } from './function-spec.js';

type Entry = { kind: 'file'; executable: boolean } | { kind: 'dir'; names: string[] } | { kind: 'link'; target: string };

const MAX_LINK_HOPS = 40;

/** One stored bundle: every path (relative, posix; '' is the root) as the archive made it. */
class Bundle {
  constructor(
    readonly size: number,
    readonly unpackedBytes: number,
    private readonly entries: Map<string, Entry>,
  ) {}

  /** What `rel` is once every symlink on the way is followed; undefined when it leads nowhere. */
  resolve(rel: string): Entry | undefined {
    let hops = 0;
    const walk = (p: string): string | undefined => {
      let cur = '';
      for (const seg of p.split('/')) {
        if (seg === '' || seg === '.') continue;
        const next = seg === '..' ? path.posix.dirname(cur) : cur ? `${cur}/${seg}` : seg;
        if (seg === '..' && cur === '') return undefined;
        const e = this.entries.get(next === '.' ? '' : next);
        if (e?.kind === 'link') {
          if (++hops > MAX_LINK_HOPS) return undefined;
          const to = walk(path.posix.join(path.posix.dirname(next), e.target));
          if (to === undefined) return undefined;
          cur = to;
        } else cur = next === '.' ? '' : next;
      }
      return cur;
    };
    const real = walk(rel);
    return real === undefined ? undefined : this.entries.get(real);
  }
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
    return putOnce(this.inflight, sha, () => this.unpack(sha, archive));
  }

  private async unpack(sha: string, archive: Buffer): Promise<PutResult> {
    const have = this.bundles.get(sha);
    if (have) return { sha256: sha, size: have.size, unpackedBytes: have.unpackedBytes, dir: this.path(sha), reused: true };
    const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-memory-code-'));
    try {
      const r = await extractArchive(archive, scratch, this.limits, { fsync: false });
      const entries = new Map<string, Entry>();
      await index(scratch, '', entries);
      this.bundles.set(sha, new Bundle(archive.length, r.unpackedBytes, entries));
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
        isFile: async (rel) => b.resolve(rel)?.kind === 'file',
        isExecutable: async (rel) => {
          const e = b.resolve(rel);
          return e?.kind === 'file' && e.executable;
        },
        names: async (rel) => {
          const e = b.resolve(rel);
          return e?.kind === 'dir' ? e.names : [];
        },
      },
      handler,
      runtime,
    );
  }
}

/** Records every path of an unpacked tree as it is (links not followed; `Bundle.resolve` does that). */
async function index(root: string, rel: string, into: Map<string, Entry>): Promise<void> {
  const names: string[] = [];
  for (const ent of await fsp.readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    names.push(ent.name);
    if (ent.isDirectory()) await index(root, r, into);
    else if (ent.isSymbolicLink()) into.set(r, { kind: 'link', target: await fsp.readlink(path.join(root, r)) });
    else if (ent.isFile()) into.set(r, { kind: 'file', executable: ((await fsp.stat(path.join(root, r))).mode & 0o111) !== 0 });
  }
  into.set(rel, { kind: 'dir', names: names.sort() });
}
