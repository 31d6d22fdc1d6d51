/**
 * The broker half of JetStreamQueue (jetstream-queue.ts): one JetStream KV bucket holds every
 * event record, idempotency key and schedule state of the cluster; this file opens the bucket,
 * keeps a local mirror of it up to date from a KV watch, turns broker failures into HearthErrors,
 * and retries writes through a stream leader election.
 *
 * Keys: `e.<event id>` an event (`{ rec, holder }`), `i.<fn>.<sha256 of the key>` an idempotency
 * key, `s.<fn>.<base64url of the expression>` a schedule state; `b.load` is written by each host
 * as it starts loading (see watched-kv.ts). Every change of an event or key is a compare-and-set
 * on the key's revision, so hosts never overwrite each other's transitions.
 */
import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { asError, HearthError } from '../errors.js';
import type { EventRecord } from '../queue/event-queue.js';
import { TRANSIENT_BROKER, whilePlacing } from './buckets.js';
import { WatchedKv } from './watched-kv.js';

/** An event as stored: the record as the interface defines it, plus who holds its lease. */
export interface EventDoc {
  rec: EventRecord;
  /** Host id of the lease holder while running, else null. */
  holder: string | null;
}

export interface IdemDoc {
  ids: string[];
  batch: boolean;
  createdAt: number;
}

export interface Stored<T> {
  doc: T;
  rev: number;
}

export interface KvBucketOptions {
  /** Bucket name; default `hearth-events`. Tests use one per queue. */
  bucket: string;
  /** Stream replicas (1, 3 or 5); default 1. */
  replicas: number;
  /** Bound on the bucket's bytes (-1 none): a write past it is refused (TOO_MANY_REQUESTS). */
  maxBytes: number;
  /** Largest stored record in bytes (-1 none). */
  maxValueSize: number;
  /** Broker request timeout, ms; default 5000. */
  requestTimeoutMs: number;
  /** How long a write is retried through a leader election or reconnect before UNAVAILABLE; default 10 s. */
  retryWindowMs: number;
  /** Seconds a client is told to wait after UNAVAILABLE or a full bucket. */
  retryAfterS: number;
}

/** Written by every host as it starts loading its mirror (see watched-kv.ts); the mirror ignores it. */
export const LOAD_KEY = 'b.load';

export const eventKey = (id: string): string => `e.${id}`;
export const idemKey = (fn: string, key: string): string => `i.${fn}.${createHash('sha256').update(key).digest('base64url')}`;
export const scheduleKey = (fn: string, expression: string): string => `s.${fn}.${Buffer.from(expression).toString('base64url')}`;
export const scheduleExpression = (key: string): string => Buffer.from(key.slice(key.indexOf('.', 2) + 1), 'base64url').toString();

/** The broker's transient failures (buckets.ts), and for the queue also a connection being closed. */
const TRANSIENT = new RegExp(`${TRANSIENT_BROKER.source}|closed`, 'i');
const FULL = /maximum (bytes|messages)|insufficient (resources|storage)|resource limits|storage (is )?full/i;

export function isCasConflict(e: unknown): boolean {
  return /wrong last sequence|key exists/i.test(String((e as Error)?.message ?? e));
}

/** A broker error as the queue's contract codes it. */
export function brokerError(e: unknown, what: string, retryAfterS: number): HearthError {
  if (e instanceof HearthError) return e;
  const err = asError(e);
  if (FULL.test(err.message)) {
    return new HearthError('TOO_MANY_REQUESTS', `queue is full: the broker refused ${what} (${err.message})`, { cause: err, details: { retryAfterS } });
  }
  return new HearthError('UNAVAILABLE', `event queue broker unavailable: ${what} failed (${err.message})`, { cause: err, details: { retryAfterS } });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The bucket and its mirror. `apply` is called for every change, local (after the broker
 * acknowledged it) or seen by the watch, in revision order per key; a change older than what the
 * mirror already holds for the key is ignored, so local writes and their echo apply once.
 */
export class KvBucket {
  kv!: KV;
  private readonly revs = new Map<string, number>();
  /** Keys deleted here whose deletion the watch has not delivered yet. */
  private readonly tombstones = new Map<string, number>();
  private watch: WatchedKv | undefined;
  private closed = false;
  private online = true;

  constructor(
    private readonly nc: NatsConnection,
    readonly opts: KvBucketOptions,
    private readonly onChange: (key: string, value: Uint8Array | null) => void,
  ) {}

  /**
   * Creates or binds the bucket, then loads the mirror; resolves when the mirror holds everything
   * acknowledged before it was called. The load ends on a write of our own (LOAD_KEY) coming back
   * through the watch, not on the count of entries the watch's consumer announces (issue 14; see
   * watched-kv.ts).
   */
  async open(): Promise<void> {
    const kvm = new Kvm(this.nc);
    const cfg = {
      replicas: this.opts.replicas,
      history: 1,
      max_bytes: this.opts.maxBytes,
      maxValueSize: this.opts.maxValueSize,
      timeout: this.opts.requestTimeoutMs,
      allow_direct: false,
    };
    this.kv = await this.withRetry('open the event bucket', () => whilePlacing(() => kvm.create(this.opts.bucket, cfg)));
    void this.watchStatus();
    this.watch = new WatchedKv(this.nc, this.kv, {
      loadKey: LOAD_KEY,
      onEntry: (e) => this.seen(e.key, e.operation === 'PUT' ? e.value : null, e.revision),
      retry: (what, op) => this.withRetry(what, op),
      isOnline: () => this.isOnline(),
      isFull: (e) => FULL.test(String((e as Error)?.message ?? e)),
    });
    if (this.closed) await this.watch.stop(); // closed while opening: start() then ends at once
    await this.watch.start();
  }

  private statusIter: (AsyncIterable<unknown> & { stop?(): void }) | undefined;
  private async watchStatus(): Promise<void> {
    const it = this.nc.status();
    this.statusIter = it as never;
    for await (const s of it) {
      if (s.type === 'disconnect' || s.type === 'reconnecting') this.online = false;
      else if (s.type === 'reconnect') this.online = true;
    }
  }

  /** False while the connection to the broker is down: writes are refused at once. */
  isOnline(): boolean {
    return this.online && !this.nc.isClosed();
  }

  /** Applies a change if it is newer than what the mirror holds for the key. */
  seen(key: string, value: Uint8Array | null, rev: number): void {
    const tomb = this.tombstones.get(key);
    if (tomb !== undefined) {
      if (rev <= tomb) return;
      if (value === null) {
        // The deletion made here has come back from the watch: nothing older can follow.
        this.tombstones.delete(key);
        this.revs.delete(key);
        return;
      }
      this.tombstones.delete(key);
    }
    const known = this.revs.get(key) ?? 0;
    if (rev <= known) return;
    if (value === null) this.revs.delete(key);
    else this.revs.set(key, rev);
    this.onChange(key, value);
  }

  revisionOf(key: string): number {
    return this.revs.get(key) ?? 0;
  }

  /** Runs `op` again after transient broker failures (leader election, reconnect) within the retry window. */
  async withRetry<T>(what: string, op: () => Promise<T>): Promise<T> {
    const until = Date.now() + this.opts.retryWindowMs;
    for (let attempt = 0; ; attempt++) {
      if (this.nc.isClosed())
        throw new HearthError('UNAVAILABLE', `event queue broker connection is closed: cannot ${what}`, { details: { retryAfterS: this.opts.retryAfterS } });
      try {
        return await op();
      } catch (e) {
        const msg = String((e as Error)?.message ?? e);
        if (isCasConflict(e) || FULL.test(msg) || !TRANSIENT.test(msg) || Date.now() > until) throw e;
        await sleep(Math.min(500, 50 * 2 ** Math.min(attempt, 4)));
      }
    }
  }

  private checkOnline(what: string): void {
    if (!this.isOnline()) {
      throw new HearthError('UNAVAILABLE', `event queue broker unreachable: cannot ${what} now`, { details: { retryAfterS: this.opts.retryAfterS } });
    }
  }

  /** Writes a new key (or overwrites); returns the revision. */
  async put(key: string, doc: unknown, what: string): Promise<number> {
    this.checkOnline(what);
    const data = JSON.stringify(doc);
    let rev: number;
    try {
      rev = await this.withRetry(what, () => this.kv.put(key, data));
    } catch (e) {
      throw brokerError(e, what, this.opts.retryAfterS);
    }
    this.seen(key, Buffer.from(data), rev);
    return rev;
  }

  /**
   * Compare-and-set: writes `doc` if the key is still at `rev` (0: does not exist). Returns the
   * new revision, or null when someone else changed the key first. A retry after a lost answer
   * that finds our own value in place counts as success.
   */
  async cas(key: string, doc: unknown, rev: number, what: string): Promise<number | null> {
    this.checkOnline(what);
    const data = JSON.stringify(doc);
    let tried = false;
    try {
      const newRev = await this.withRetry(what, async () => {
        if (tried) {
          const cur = await this.kv.get(key);
          if (cur && cur.operation === 'PUT' && cur.string() === data) return cur.revision;
        }
        tried = true;
        return rev === 0 ? await this.kv.create(key, data) : await this.kv.update(key, data, rev);
      });
      this.seen(key, Buffer.from(data), newRev);
      return newRev;
    } catch (e) {
      if (isCasConflict(e)) return null;
      throw brokerError(e, what, this.opts.retryAfterS);
    }
  }

  /** Reads the key from the broker (authoritative) and brings the mirror up to it. */
  async fetch<T>(key: string, what: string): Promise<Stored<T> | null> {
    this.checkOnline(what);
    let e: KvEntry | null;
    try {
      e = await this.withRetry(what, () => this.kv.get(key));
    } catch (err) {
      throw brokerError(err, what, this.opts.retryAfterS);
    }
    if (!e || e.operation !== 'PUT') return null;
    this.seen(key, e.value, e.revision);
    return { doc: JSON.parse(e.string()) as T, rev: e.revision };
  }

  /** Deletes the key (and its history). */
  async remove(key: string, what: string): Promise<void> {
    this.checkOnline(what);
    const before = this.revs.get(key) ?? 0;
    try {
      await this.withRetry(what, () => this.kv.purge(key));
    } catch (e) {
      throw brokerError(e, what, this.opts.retryAfterS);
    }
    this.tombstones.set(key, Math.max(before, this.tombstones.get(key) ?? 0));
    if (this.revs.has(key)) {
      this.revs.delete(key);
      this.onChange(key, null);
    }
  }

  /** Drops the purge markers of deleted keys older than `olderMs` (the bucket's own garbage). */
  async compact(olderMs: number): Promise<void> {
    // purgeDeletes is on the bucket implementation, not on the KV type.
    await (this.kv as unknown as { purgeDeletes(ms: number): Promise<unknown> }).purgeDeletes(olderMs).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.statusIter?.stop?.();
    await this.watch?.stop();
  }

  /** Deletes the bucket and everything in it (tests, and `purge` of a whole cluster). */
  async destroy(): Promise<void> {
    if (this.kv) await this.kv.destroy();
  }
}
