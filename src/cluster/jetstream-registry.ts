/**
 * The function registry of a cluster (`FunctionRegistry`, src/registry/registry.ts) on a JetStream
 * key-value bucket: one key per function, the record as JSON, the last `history` revisions kept.
 *
 * - Writes are compare-and-set against the revision this host last saw of that function: a create
 *   succeeds only when the key is absent, an update or a delete only when nobody changed the
 *   function since. Two hosts deploying one function at the same time: one wins, the other gets
 *   CONFLICT (409) and changes nothing.
 * - Every host watches the bucket: a change made on another host is applied here and announced to
 *   `onChange` listeners like a local one, after `prepare` (the daemon: fetch the code bundle) has
 *   resolved, so a function is never listed before its code is on this host.
 * - An entry that does not parse or validate (or names another function) is refused with a log
 *   line naming the key and revision; the previous definition, if any, stays in service.
 * - Until the broker is first reached the registry serves what it has (nothing) and refuses writes
 *   with UNAVAILABLE; it loads every function when the connection comes, announcing each. The load
 *   ends on a write of its own (`hearth.load`, not a function name) coming back through the watch,
 *   so it holds every deploy acknowledged before it, whichever replica the watch sits on (KvMirror
 *   in watched-kv.ts, issue 14).
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { HearthError } from '../errors.js';
import { functionRecordSchema, type FunctionRecord } from '../registry/function-spec.js';
import { BaseRegistry, type RegistryClock } from '../registry/registry.js';
import { brokerError, defaultReplicas, isCasFailure } from './buckets.js';
import type { ClusterConnection } from './connection.js';
import { KvMirror } from './watched-kv.js';

export interface ClusterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface JetStreamRegistryOptions {
  connection: Pick<ClusterConnection, 'connection' | 'onReady' | 'servers'>;
  log: ClusterLogger;
  clock?: RegistryClock;
  /** Bucket name (default `hearth-functions`). */
  bucket?: string;
  /** Revisions kept per function (default 16). */
  history?: number;
  /** Replicas of a new bucket (default 3 on a cluster, else 1). */
  replicas?: number;
  /** Runs before a change made on another host is applied; a rejection refuses that change (logged). */
  prepare?: (record: FunctionRecord) => Promise<void>;
}

export interface HistoryEntry {
  revision: number;
  at: string;
  operation: 'PUT' | 'DEL' | 'PURGE';
  record?: FunctionRecord;
}

export class JetStreamRegistry extends BaseRegistry {
  readonly bucket: string;
  private readonly mirror: KvMirror;
  /** Highest revision seen per function (local writes and the watch). */
  private readonly revs = new Map<string, number>();
  /** What the watch delivered during the load: done before the load counts as done. */
  private loading: Promise<void>[] | undefined = [];
  /** Code shas of functions refused here because `prepare` failed (other hosts may serve them). */
  private readonly refused = new Map<string, string>();
  private readonly jlog: ClusterLogger;

  constructor(private readonly opts: JetStreamRegistryOptions) {
    super(opts.clock ?? { now: () => Date.now() }, opts.log);
    this.jlog = opts.log;
    this.bucket = opts.bucket ?? 'hearth-functions';
    this.mirror = new KvMirror({
      connection: opts.connection,
      log: opts.log,
      spec: (nc) => ({
        name: this.bucket,
        description: 'Hearth function definitions',
        history: opts.history ?? 16,
        maxAgeMs: 0,
        replicas: opts.replicas ?? defaultReplicas(nc),
      }),
      onEntry: (e) => {
        const done = this.queue.run(e.key, () => this.apply(e));
        if (this.loading) this.loading.push(done);
        else done.catch((err: unknown) => this.jlog.error({ err, bucket: this.bucket, key: e.key }, 'function change not applied'));
      },
      onLoaded: async () => {
        await Promise.all(this.loading ?? []);
        this.loading = undefined;
        this.jlog.info({ bucket: this.bucket, functions: this.records.size }, 'function registry attached to JetStream');
      },
    });
  }

  /** Whether the bucket is loaded and watched (writes are possible). */
  get attached(): boolean {
    return this.mirror.kv !== undefined;
  }

  async start(): Promise<void> {
    this.started = true;
    this.loading = [];
    await this.mirror.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    await this.mirror.stop();
    await this.queue.idle();
  }

  /** Code shas of the functions this host refused because their code could not be prepared. */
  refusedCode(): string[] {
    return [...this.refused.values()];
  }

  /** The kept revisions of a function, oldest first (for rollback by hand, see docs/cluster.md). */
  async history(name: string): Promise<HistoryEntry[]> {
    const kv = this.requireKv();
    const out: HistoryEntry[] = [];
    const it = await kv.history({ key: name });
    for await (const e of it) {
      const h: HistoryEntry = { revision: e.revision, at: e.created.toISOString(), operation: e.operation };
      if (e.operation === 'PUT') {
        const p = functionRecordSchema.safeParse(safeJson(e).value);
        if (p.success) h.record = p.data;
      }
      out.push(h);
    }
    return out;
  }

  /** Applies an entry read from the bucket (another host's change, or the first load). */
  private async apply(e: KvEntry): Promise<void> {
    const name = e.key;
    if (e.revision <= (this.revs.get(name) ?? 0)) return;
    this.revs.set(name, e.revision);
    this.refused.delete(name);
    if (e.operation !== 'PUT') {
      if (this.records.delete(name)) this.emit(name, undefined);
      return;
    }
    const prev = this.records.get(name);
    const json = safeJson(e);
    const parsed = functionRecordSchema.safeParse(json.value);
    const reason =
      json.error ??
      (!parsed.success
        ? parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
        : parsed.data.name !== name
          ? `it names function ${JSON.stringify(parsed.data.name)}`
          : undefined);
    if (reason !== undefined || !parsed.success) {
      this.jlog.error(
        { bucket: this.bucket, key: name, revision: e.revision, reason },
        `refusing function record ${JSON.stringify(name)} (revision ${e.revision}) from the broker: ${reason}; ${prev ? 'the previous definition stays in service' : 'the function is not served'}`,
      );
      return;
    }
    const record = parsed.data;
    if (this.opts.prepare) {
      try {
        await this.opts.prepare(record);
      } catch (err) {
        this.refused.set(name, record.codeSha256);
        this.jlog.error(
          { bucket: this.bucket, key: name, revision: e.revision, err: (err as Error).message },
          `refusing function ${JSON.stringify(name)} (revision ${e.revision}): ${(err as Error).message}; ${prev ? 'the previous definition stays in service' : 'the function is not served'}`,
        );
        return;
      }
    }
    this.records.set(name, record);
    this.emit(name, record);
  }

  private requireKv(): KV {
    const kv = this.mirror.kv;
    if (!kv) throw new HearthError('UNAVAILABLE', `registry: not connected to the NATS broker (${this.opts.connection.servers.join(', ')}); retrying`);
    return kv;
  }

  protected async persist(name: string, record: FunctionRecord | undefined): Promise<void> {
    const kv = this.requireKv();
    const known = this.revs.get(name) ?? 0;
    try {
      if (record === undefined) {
        await kv.delete(name, { previousSeq: known });
        return;
      }
      const data = JSON.stringify(record);
      const rev = this.records.has(name) ? await kv.update(name, data, known) : await kv.create(name, data);
      this.revs.set(name, Math.max(rev, this.revs.get(name) ?? 0));
    } catch (err) {
      if (isCasFailure(err)) {
        throw new HearthError('CONFLICT', `function ${JSON.stringify(name)} was changed on another host at the same time; nothing was changed here, try again`);
      }
      throw brokerError(err, `function ${name}: the NATS broker did not store the change`);
    }
  }
}

function safeJson(e: KvEntry): { value?: unknown; error?: string } {
  try {
    return { value: e.json() };
  } catch (err) {
    return { error: `not JSON (${(err as Error).message})` };
  }
}
