/**
 * Life cycle, options and schedule state of JetStreamQueue (the operations are in
 * jetstream-queue.ts): construct with a connected NatsConnection, `start()` creates or binds the
 * bucket and loads the mirror, `close()` stops the watch and the sweep (the connection is the
 * caller's to close).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { HearthError } from '../errors.js';
import { EventIdGenerator } from '../queue/event-id.js';
import {
  clampListLimit,
  emptyCounts,
  EVENT_STATUSES,
  queueSettings,
  type AvailableListener,
  type EventRecord,
  type ListFilter,
  type PruneResult,
  type QueueSettings,
  type QueueStats,
  type RecoverResult,
  type ScheduleStateStore,
} from '../queue/event-queue.js';
import { KvBucket, scheduleKey, type KvBucketOptions } from './jetstream-queue-kv.js';
import { QueueMirror } from './jetstream-queue-mirror.js';

export interface JetStreamQueueOptions extends Partial<QueueSettings>, Partial<KvBucketOptions> {
  /** This host's id (`--host-id`): leases are recorded under it, and `recoverRunning()` takes back only its own. */
  hostId: string;
  /** Time source (event times, lease deadlines, the sweep). Default the system clock. */
  clock?: Clock;
  /** Period of the sweep that prunes and recovers expired leases of any host; 0 disables. Default 60 s. */
  maintenanceIntervalMs?: number;
  /** Whether the sweep also recovers expired leases (default true); the daemon's dispatcher does it itself (see sqlite-store.ts). */
  recoverLeases?: boolean;
  /** Told about failures of the background sweep (the sweep never throws). */
  onMaintenanceError?: (err: unknown) => void;
}

export const DEFAULT_BUCKET = 'hearth-events';

export function notFound(id: string): HearthError {
  return new HearthError('EVENT_NOT_FOUND', `event ${id} not found`);
}

export abstract class JetStreamQueueBase implements ScheduleStateStore {
  protected readonly clock: Clock;
  protected readonly settings: QueueSettings;
  protected readonly ids: EventIdGenerator;
  protected readonly hostId: string;
  protected readonly bucket: KvBucket;
  protected readonly mirror: QueueMirror;
  /** Events being written by submits in flight (counted against the bound). */
  protected reserved = 0;
  private readonly chains = new Map<string, Promise<unknown>>();
  private state: 'new' | 'starting' | 'started' | 'closed' = 'new';
  private starting: Promise<void> = Promise.resolve();
  private sweepTimer: TimerHandle | null = null;

  constructor(
    nc: NatsConnection,
    private readonly opts: JetStreamQueueOptions,
  ) {
    if (typeof opts.hostId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(opts.hostId)) {
      throw new HearthError('CONFIG', `queue: hostId must be 1 to 64 letters, digits, '-' or '_', got ${JSON.stringify(opts.hostId)}`);
    }
    this.hostId = opts.hostId;
    this.clock = opts.clock ?? systemClock;
    this.settings = queueSettings(opts);
    this.ids = new EventIdGenerator(this.clock);
    const bucket = opts.bucket ?? DEFAULT_BUCKET;
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(bucket)) throw new HearthError('CONFIG', `queue: bucket name ${JSON.stringify(bucket)} is not a valid KV bucket name`);
    const replicas = opts.replicas ?? 1;
    if (![1, 3, 5].includes(replicas)) throw new HearthError('CONFIG', `queue: replicas must be 1, 3 or 5, got ${String(replicas)}`);
    this.bucket = new KvBucket(
      nc,
      {
        bucket,
        replicas,
        maxBytes: opts.maxBytes ?? -1,
        maxValueSize: opts.maxValueSize ?? -1,
        requestTimeoutMs: opts.requestTimeoutMs ?? 5000,
        retryWindowMs: opts.retryWindowMs ?? 10_000,
        retryAfterS: this.settings.retryAfterS,
      },
      (key, value) => this.mirror.apply(key, value),
    );
    this.mirror = new QueueMirror((key) => this.bucket.revisionOf(key));
  }

  /**
   * Creates the bucket (or binds the existing one) and loads every stored event into the mirror.
   * Throws UNAVAILABLE when the brokers do not answer within the retry window. Calls made before
   * it resolves wait for it (and fail with its error).
   */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new HearthError('CONFIG', 'queue: start() may be called once'));
    this.state = 'starting';
    this.starting = this.open();
    return this.starting;
  }

  private async open(): Promise<void> {
    try {
      await this.bucket.open();
    } catch (e) {
      await this.bucket.close();
      this.state = 'closed';
      if (e instanceof HearthError) throw e;
      throw new HearthError('UNAVAILABLE', `event queue: cannot open bucket ${this.bucket.opts.bucket} on the brokers: ${(e as Error).message}`, {
        cause: e,
        details: { retryAfterS: this.settings.retryAfterS },
      });
    }
    if (this.state !== 'starting') return;
    this.state = 'started';
    // Continue ids after the newest stored one, so this host's ids sort after what it sees.
    let newest = '';
    for (const id of this.mirror.events.keys()) if (id > newest) newest = id;
    this.ids.seed(newest);
    this.armSweep();
  }

  /** True when connected to a broker (for health checks: not ready while false). */
  isConnected(): boolean {
    return this.state === 'started' && this.bucket.isOnline();
  }

  /** Resolves when the queue may be used; UNAVAILABLE when it is not started, failed to start, or is closed. */
  protected async ready(): Promise<void> {
    if (this.state === 'starting') await this.starting.catch(() => undefined);
    if (this.state !== 'started') {
      throw new HearthError('UNAVAILABLE', this.state === 'new' ? 'the event queue is not started' : 'the event queue is closed', {
        details: { retryAfterS: this.settings.retryAfterS },
      });
    }
  }

  /** Runs `op` after every earlier op on the same key from this host (one change of a key at a time). */
  protected serial<T>(key: string, op: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const run = prev.then(op, op);
    const tail = run.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return run;
  }

  private armSweep(): void {
    const every = this.opts.maintenanceIntervalMs ?? 60_000;
    if (every <= 0 || this.state !== 'started') return;
    this.sweepTimer = this.clock.setTimeout(() => {
      void this.sweep().finally(() => this.armSweep());
    }, every);
    this.sweepTimer.unref?.();
  }

  private async sweep(): Promise<void> {
    try {
      if (this.opts.recoverLeases !== false) await this.recoverRunning({ expiredOnly: true });
      await this.prune();
      await this.bucket.compact(30 * 60_000);
    } catch (err) {
      if (this.state === 'started') this.opts.onMaintenanceError?.(err);
    }
  }

  abstract recoverRunning(opts?: { expiredOnly?: boolean }): Promise<RecoverResult>;
  abstract prune(): Promise<PruneResult>;

  onAvailable(listener: AvailableListener): () => void {
    this.mirror.listeners.add(listener);
    return () => this.mirror.listeners.delete(listener);
  }

  /** Stops the watch and the sweep; writes already acknowledged are on the brokers. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasStarting = this.state === 'starting';
    this.state = 'closed';
    if (wasStarting) await this.starting.catch(() => undefined);
    if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
    this.mirror.listeners.clear();
    await Promise.allSettled([...this.chains.values()]);
    await this.bucket.close();
  }

  /** Deletes the bucket with every event in it, for every host (tests; tearing down a cluster). */
  async destroy(): Promise<void> {
    await this.close();
    await this.bucket.destroy();
  }

  // ---- Reads from the mirror (other hosts' changes appear within milliseconds) ----------------

  async list(filter: ListFilter = {}): Promise<EventRecord[]> {
    await this.ready();
    const limit = clampListLimit(filter.limit);
    if (filter.status !== undefined && !EVENT_STATUSES.includes(filter.status)) {
      throw new HearthError('BAD_REQUEST', `unknown event status '${String(filter.status)}' (one of ${EVENT_STATUSES.join(', ')})`);
    }
    if (filter.before !== undefined && !this.mirror.events.has(filter.before)) throw notFound(filter.before);
    const out: EventRecord[] = [];
    for (const id of this.mirror.newestFirst()) {
      if (out.length >= limit) break;
      if (filter.before !== undefined && id >= filter.before) continue;
      const r = this.mirror.events.get(id)!.doc.rec;
      if (filter.function !== undefined && r.function !== filter.function) continue;
      if (filter.status !== undefined && r.status !== filter.status) continue;
      out.push({ ...r });
    }
    return out;
  }

  async stats(): Promise<QueueStats> {
    await this.ready();
    const total = emptyCounts();
    const functions: QueueStats['functions'] = {};
    for (const { doc } of this.mirror.events.values()) {
      const c = (functions[doc.rec.function] ??= emptyCounts());
      c[doc.rec.status]++;
      total[doc.rec.status]++;
    }
    for (const c of [total, ...Object.values(functions)]) c.depth = c.queued + c.failed;
    return { total, functions, maxQueued: this.settings.maxQueued };
  }

  async nextDueAt(fn?: string): Promise<number | null> {
    await this.ready();
    let t: number | null = null;
    const lists = fn === undefined ? [...this.mirror.pending.values()] : [this.mirror.pending.get(fn) ?? []];
    for (const list of lists) for (const e of list) if (t === null || e.doc.rec.notBefore < t) t = e.doc.rec.notBefore;
    return t;
  }

  // ---- ScheduleStateStore ---------------------------------------------------------------------

  async getScheduleStates(fn: string): Promise<Map<string, number>> {
    await this.ready();
    return new Map(this.mirror.schedules.get(fn) ?? []);
  }

  async setScheduleState(fn: string, expression: string, handledThrough: number): Promise<void> {
    await this.ready();
    await this.bucket.put(scheduleKey(fn, expression), handledThrough, 'store schedule state');
  }

  async deleteScheduleState(fn: string, expression?: string): Promise<void> {
    await this.ready();
    const exprs = expression === undefined ? [...(this.mirror.schedules.get(fn)?.keys() ?? [])] : [expression];
    await Promise.all(exprs.map((e) => this.bucket.remove(scheduleKey(fn, e), 'delete schedule state')));
  }
}
