/**
 * The code store contract: content-addressed function bundles, keyed by the sha256 of the archive
 * bytes. `DirCodeStore` (dir-code-store.ts) keeps them unpacked on disk; `MemoryCodeStore`
 * (memory-code-store.ts) keeps their file lists in memory, for tests and tools that run no
 * instance. A JetStream object-store implementation must fit the same contract, checked by the one
 * conformance suite (test/conformance/code-store.ts); nothing above this interface (FunctionService,
 * the catalogue) may use more than it.
 *
 * Contract:
 * - Concurrency: every method may be called concurrently. `put` is idempotent: the same bytes
 *   give the same sha and are unpacked once, also when two `put`s of them race (exactly one
 *   result has `reused: false`). `remove` of a sha waits for a running `put` of it; `gc` never
 *   removes a bundle being stored.
 * - A bundle appears whole or not at all: `has` never sees half a bundle, and a failed `put`
 *   leaves nothing behind.
 * - Errors: INVALID_ARCHIVE / PAYLOAD_TOO_LARGE for a bad archive (see bundle-extractor.ts),
 *   BAD_REQUEST for a malformed sha or a handler that is not valid for the runtime; anything else
 *   is a host or storage fault.
 * - `path(sha)` is where instances mount the bundle read-only: a local directory holding it once
 *   `put` has resolved (a remote store keeps a local copy there; the memory store has none).
 * - Life: construct → `start()` → `stop()` (waits for running `put`s).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { HearthError } from '../errors.js';
import type { ArchiveFormat, ArchiveLimits } from './bundle-extractor.js';
import { handlerModulePath } from './function-spec.js';
import type { Runtime } from '../runtimes/types.js';

export { DEFAULT_ARCHIVE_LIMITS, type ArchiveLimits } from './bundle-extractor.js';

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export interface PutResult {
  /** Hex sha256 of the archive bytes: the bundle's identity. */
  sha256: string;
  /** Archive size in bytes. */
  size: number;
  /** Bytes of regular files in the bundle. */
  unpackedBytes: number;
  /** `path(sha256)`. */
  dir: string;
  /** True when the bundle was already in the store and nothing was unpacked. */
  reused: boolean;
  /** Set when this call unpacked the archive. */
  format?: ArchiveFormat;
}

export interface CodeStore {
  /** The archive limits `put` enforces (callers check the packed size before decoding). */
  readonly limits: Readonly<ArchiveLimits>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stores an archive (zip or tar.gz). See the contract. */
  put(archive: Buffer): Promise<PutResult>;
  /** Whether the bundle is stored. Throws BAD_REQUEST on a malformed sha. */
  has(sha: string): Promise<boolean>;
  /** Removes a bundle; returns whether it existed. */
  remove(sha: string): Promise<boolean>;
  /** Every stored sha, sorted. */
  list(): Promise<string[]>;
  /**
   * Removes every bundle not in `liveShas` (and not being stored right now). The caller passes the
   * shas of all functions *and* of code still mounted in running instances. Returns removed shas.
   */
  gc(liveShas: Iterable<string>): Promise<string[]>;
  /**
   * Whether the bundle holds the module file the runtime's shim would load for `handler` (see
   * `handlerCandidates`; python also accepts extension modules `mod.*.so`; a symlink to a file
   * counts); for `provided`, an executable `bootstrap` at the root. False for a bundle that is not stored. Throws BAD_REQUEST on an invalid handler.
   */
  hasHandlerFile(sha: string, handler: string, runtime: Runtime): Promise<boolean>;
  /** Where instances mount the bundle (see the contract); throws BAD_REQUEST on a malformed sha. */
  path(sha: string): string;
}

/**
 * `put`'s de-duplication, shared by the implementations: while an archive with this sha is being
 * stored, a second `put` of it waits for that one and reports the bundle as reused.
 */
export async function putOnce(inflight: Map<string, Promise<PutResult>>, sha: string, store: () => Promise<PutResult>): Promise<PutResult> {
  const running = inflight.get(sha);
  if (running) {
    const r = await running;
    return { ...r, reused: true, format: undefined };
  }
  const p = store();
  inflight.set(sha, p);
  try {
    return await p;
  } finally {
    inflight.delete(sha);
  }
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Returns `sha`, or throws BAD_REQUEST when it is not 64 lowercase hex digits. */
export function checkSha(sha: string): string {
  if (typeof sha !== 'string' || !SHA256_PATTERN.test(sha)) {
    throw new HearthError('BAD_REQUEST', `invalid code sha256 ${JSON.stringify(String(sha).slice(0, 80))}`);
  }
  return sha;
}

/** The archive-size check every implementation makes first. */
export function checkPackedSize(archive: Buffer, limits: Readonly<ArchiveLimits>): void {
  if (archive.length > limits.maxPackedBytes) {
    throw new HearthError('PAYLOAD_TOO_LARGE', `archive is ${archive.length} bytes, over the ${limits.maxPackedBytes} bytes packed limit`);
  }
}

/**
 * Relative paths (inside a bundle) of the files that could hold `handler`'s module, in the
 * order the shims try them: node `m.js`, `m.cjs`, `m.mjs`; python `m.py`, `m/__init__.py`,
 * `m.so` (m from `handlerModulePath`); provided: `bootstrap`, whatever the handler.
 */
export function handlerCandidates(handler: string, runtime: Runtime): string[] {
  if (runtime === 'provided') return [PROVIDED_BOOTSTRAP];
  const m = handlerModulePath(handler, runtime);
  if (runtime === 'node') return [`${m}.js`, `${m}.cjs`, `${m}.mjs`];
  return [`${m}.py`, `${m}/__init__.py`, `${m}.so`];
}

/** The executable a `provided` function's instance starts, at the bundle's root. */
export const PROVIDED_BOOTSTRAP = 'bootstrap';

/** How an implementation looks into one bundle (relative posix paths). */
export interface BundleProbe {
  /** Whether `rel` is a regular file (after following symlinks). */
  isFile(rel: string): Promise<boolean>;
  /** Whether `rel` is a regular file with an execute bit (after following symlinks); unset: `isFile`. */
  isExecutable?(rel: string): Promise<boolean>;
  /** Names in directory `rel` ('' or '.' for the root); [] when it is not a directory. */
  names(rel: string): Promise<string[]>;
}

/** The `hasHandlerFile` rule, over any implementation's view of a bundle. */
export async function bundleHasHandler(probe: BundleProbe, handler: string, runtime: Runtime): Promise<boolean> {
  if (runtime === 'provided') return (probe.isExecutable ?? probe.isFile).call(probe, PROVIDED_BOOTSTRAP);
  for (const rel of handlerCandidates(handler, runtime)) if (await probe.isFile(rel)) return true;
  if (runtime === 'python') {
    // Extension modules carry an ABI tag: mod.cpython-311-x86_64-linux-gnu.so, mod.abi3.so.
    const mod = handlerModulePath(handler, runtime);
    const dir = path.posix.dirname(mod);
    const base = path.posix.basename(mod);
    for (const n of await probe.names(dir)) {
      if (n.startsWith(`${base}.`) && n.endsWith('.so') && (await probe.isFile(path.posix.join(dir, n)))) return true;
    }
  }
  return false;
}
