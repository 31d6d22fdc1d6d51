/**
 * The code store of a cluster (`CodeStore`, src/registry/code-store.ts) on a JetStream Object Store
 * bucket: one object per bundle, named by the SHA-256 of its archive bytes. Each host keeps a local
 * unpacked copy in a `DirCodeStore` (the cache), which is where instances mount code from.
 *
 * - `put` checks and unpacks the archive locally first (a bad archive never reaches the broker),
 *   then uploads it unless the bucket has it; `reused` says the cluster already had the bundle.
 * - `fetch(sha)` brings a bundle another host stored into the local cache: the bytes are hashed and
 *   an object whose content does not match its name is refused with a log line, nothing cached.
 * - `has`, `list`, `remove` are about the cluster's bucket (and drop the local copy too). `gc`
 *   empties the local cache of bundles not live here, and removes from the bucket objects that no
 *   function references and that are older than `gcGraceMs` (another host may be deploying one
 *   right now: its record is written only after the upload).
 */
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/nats-core';
import { HearthError } from '../errors.js';
import { checkPackedSize, checkSha, putOnce, sha256Hex, SHA256_PATTERN, type ArchiveLimits, type CodeStore, type PutResult } from '../registry/code-store.js';
import { DirCodeStore, type DirCodeStoreOptions } from '../registry/dir-code-store.js';
import type { Runtime } from '../registry/function-spec.js';
import { brokerError, defaultReplicas, ensureObjectStore } from './buckets.js';
import type { ClusterConnection } from './connection.js';
import type { ClusterLogger } from './jetstream-registry.js';

export interface ObjectCodeStoreOptions extends DirCodeStoreOptions {
  connection: Pick<ClusterConnection, 'connection' | 'onReady' | 'servers'>;
  /** The local cache directory (unpacked bundles). */
  cacheDir: string;
  log: ClusterLogger;
  /** Bucket name (default `hearth-code`). */
  bucket?: string;
  replicas?: number;
  /** Objects younger than this are never collected (default 10 minutes). */
  gcGraceMs?: number;
  /**
   * What `gc` must keep in the bucket besides `liveShas`, or undefined when it may not remove
   * anything from the bucket now (the daemon: until the registry has loaded every function, and the
   * bundles of functions this host refused, which other hosts may serve). Default: nothing more.
   */
  bucketKeeps?: () => Iterable<string> | undefined;
}

export class ObjectCodeStore implements CodeStore {
  readonly limits: Readonly<ArchiveLimits>;
  readonly bucket: string;
  private readonly local: DirCodeStore;
  private os: ObjectStore | undefined;
  private opening: Promise<ObjectStore> | undefined;
  private readonly inflight = new Map<string, Promise<PutResult>>();
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(private readonly opts: ObjectCodeStoreOptions) {
    this.local = new DirCodeStore(opts.cacheDir, opts);
    this.limits = this.local.limits;
    this.bucket = opts.bucket ?? 'hearth-code';
  }

  async start(): Promise<void> {
    await this.local.start();
    const nc = this.opts.connection.connection;
    if (nc) await this.open(nc);
    else this.opts.connection.onReady((c) => this.open(c).then(() => undefined));
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.inflight.values(), ...this.fetching.values()]);
    await this.local.stop();
    this.os = undefined;
  }

  private open(nc: NatsConnection): Promise<ObjectStore> {
    if (!this.opening) {
      this.opening = ensureObjectStore(
        nc,
        { name: this.bucket, description: 'Hearth code bundles', replicas: this.opts.replicas ?? defaultReplicas(nc) },
        this.opts.log,
      ).then(
        (os) => (this.os = os),
        (err: unknown) => {
          this.opening = undefined;
          throw err;
        },
      );
    }
    return this.opening;
  }

  private objects(): Promise<ObjectStore> {
    if (this.os) return Promise.resolve(this.os);
    const nc = this.opts.connection.connection;
    if (!nc)
      return Promise.reject(
        new HearthError('UNAVAILABLE', `code store: not connected to the NATS broker (${this.opts.connection.servers.join(', ')}); retrying`),
      );
    return this.open(nc);
  }

  path(sha: string): string {
    return this.local.path(sha);
  }

  async put(archive: Buffer): Promise<PutResult> {
    checkPackedSize(archive, this.limits);
    const sha = sha256Hex(archive);
    return putOnce(this.inflight, sha, () => this.store(sha, archive));
  }

  private async store(sha: string, archive: Buffer): Promise<PutResult> {
    const os = await this.objects();
    const local = await this.local.put(archive);
    try {
      const info = await os.info(sha);
      if (info && !info.deleted) return { ...local, reused: true };
      await os.putBlob({ name: sha, description: 'hearth code bundle' }, archive);
      return { ...local, reused: false };
    } catch (err) {
      if (!local.reused) await this.local.remove(sha).catch(() => undefined);
      throw brokerError(err, `code store: the NATS broker did not store bundle ${sha}`);
    }
  }

  /**
   * Makes sure the bundle is in the local cache, fetching it from the bucket when not. Throws
   * NOT_FOUND when the cluster has no such bundle, INTERNAL when its content does not match its name.
   */
  async fetch(sha: string): Promise<void> {
    checkSha(sha);
    if (await this.local.has(sha)) return;
    let running = this.fetching.get(sha);
    if (!running) {
      running = this.download(sha).finally(() => this.fetching.delete(sha));
      this.fetching.set(sha, running);
    }
    return running;
  }

  private async download(sha: string): Promise<void> {
    const os = await this.objects();
    let bytes: Uint8Array | null;
    try {
      bytes = await os.getBlob(sha);
    } catch (err) {
      throw brokerError(err, `code store: cannot fetch bundle ${sha}`);
    }
    if (!bytes) throw new HearthError('NOT_FOUND', `code bundle ${sha} is not in the cluster's code store`);
    const got = sha256Hex(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if (got !== sha) {
      this.opts.log.error({ bucket: this.bucket, object: sha, sha256: got }, `refusing code object ${sha}: its content hashes to ${got}; nothing cached`);
      throw new HearthError('INTERNAL', `code bundle ${sha} from the broker does not match its hash (content hashes to ${got})`);
    }
    await this.local.put(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  async has(sha: string): Promise<boolean> {
    checkSha(sha);
    const os = await this.objects();
    try {
      const info = await os.info(sha);
      return info !== null && !info.deleted;
    } catch (err) {
      throw brokerError(err, `code store: cannot look up bundle ${sha}`);
    }
  }

  async remove(sha: string): Promise<boolean> {
    checkSha(sha);
    await this.inflight.get(sha)?.catch(() => undefined);
    const os = await this.objects();
    let existed = false;
    try {
      const info = await os.info(sha);
      if (info && !info.deleted) {
        await os.delete(sha);
        existed = true;
      }
    } catch (err) {
      throw brokerError(err, `code store: cannot remove bundle ${sha}`);
    }
    const hadLocal = await this.local.remove(sha);
    return existed || hadLocal;
  }

  async list(): Promise<string[]> {
    const os = await this.objects();
    try {
      return (await os.list())
        .filter((i) => !i.deleted && SHA256_PATTERN.test(i.name))
        .map((i) => i.name)
        .sort();
    } catch (err) {
      throw brokerError(err, 'code store: cannot list bundles');
    }
  }

  /** Shas in this host's local cache. */
  cached(): Promise<string[]> {
    return this.local.list();
  }

  async gc(liveShas: Iterable<string>): Promise<string[]> {
    const live = new Set(liveShas);
    for (const sha of this.inflight.keys()) live.add(sha);
    for (const sha of this.fetching.keys()) live.add(sha);
    const removed = new Set(await this.local.gc(live));
    const keep = this.opts.bucketKeeps ? this.opts.bucketKeeps() : [];
    if (keep === undefined) return [...removed].sort();
    for (const sha of keep) live.add(sha);
    const os = await this.objects();
    const grace = this.opts.gcGraceMs ?? 600_000;
    const now = Date.now();
    for (const info of await os.list()) {
      if (info.deleted || !SHA256_PATTERN.test(info.name) || live.has(info.name)) continue;
      if (now - Date.parse(info.mtime) < grace) continue;
      await os.delete(info.name);
      removed.add(info.name);
    }
    return [...removed].sort();
  }

  async hasHandlerFile(sha: string, handler: string, runtime: Runtime): Promise<boolean> {
    checkSha(sha);
    if (!(await this.local.has(sha))) {
      if (!(await this.has(sha))) return false;
      await this.fetch(sha);
    }
    return this.local.hasHandlerFile(sha, handler, runtime);
  }
}
