/**
 * The daemon's event queue with `--nats`: the shared JetStreamQueue, behind a thin holder that
 * lets the daemon start while no broker answers.
 *
 * Until the broker connection is made and a JetStreamQueue has started on it, every operation
 * answers UNAVAILABLE (503 with Retry-After, as JetStreamQueue itself does when the broker is lost),
 * except the three the dispatcher calls at its own start, which answer "nothing to do" so the
 * daemon comes up: `recoverRunning` (done for real at attach), `nextDueAt` (null) and `stats`
 * (zero counts). Once attached, every call goes to the JetStreamQueue; listeners registered
 * with `onAvailable` before that are carried over, and each function with queued events is
 * announced to them, so the dispatcher picks up what other hosts (or this host's earlier run) left.
 * A start that fails (brokers not answering within the queue's retry window) is retried with a
 * new instance, as JetStreamQueue requires. Replicas: `natsReplicas`, else 3 when the broker is in
 * a cluster and 1 when it is alone (as the other buckets).
 *
 * Every host hears a function's delete and purges its events: with a shared queue the purges
 * run on every host at nearly the same time. That is safe because each purge only removes keys
 * (idempotent on the broker), and it removes only events created before the purge was asked for,
 * so events accepted for a function deployed again under the same name are kept.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import type { Clock } from '../clock.js';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  emptyCounts,
  type AttemptFence,
  type AvailableListener,
  type EventError,
  type EventQueue,
  type EventRecord,
  type FailDisposition,
  type LeaseRequest,
  type ListFilter,
  type PruneResult,
  type QueueStats,
  type RecoverResult,
  type SubmitBatchResult,
  type SubmitOptions,
  type SubmitResult,
} from '../queue/event-queue.js';
import { defaultReplicas, replicasHint } from './buckets.js';
import type { ClusterConnection } from './connection.js';
import { JetStreamQueue, type JetStreamQueueOptions } from './jetstream-queue.js';

export interface ClusterQueueOptions {
  connection: ClusterConnection;
  queue: Omit<JetStreamQueueOptions, 'clock'> & { clock: Clock };
  log: Logger;
  /** Pause before a new attempt after a failed start (default 1 s). */
  retryMs?: number;
  /** Makes the JetStreamQueue (tests may pass their own); default `new JetStreamQueue(nc, queue)`. */
  make?: (nc: NatsConnection) => JetStreamQueue;
}

export class ClusterQueue implements EventQueue {
  private inner: JetStreamQueue | undefined;
  private pending: JetStreamQueue | undefined;
  private closed = false;
  private readonly listeners = new Set<AvailableListener>();
  private attaching: Promise<void> | undefined;
  private readonly retryAfterS: number;
  private readonly maxQueued: number;

  constructor(private readonly opts: ClusterQueueOptions) {
    this.retryAfterS = opts.queue.retryAfterS ?? 1;
    this.maxQueued = opts.queue.maxQueued ?? 100_000;
  }

  /** Attaches once the connection is made (now, when it already is). Never throws. */
  start(): void {
    this.opts.connection.onReady((nc) => {
      this.attaching ??= this.attach(nc);
      return this.attaching;
    });
  }

  /** True once the shared queue has started and its broker link is up. */
  ready(): boolean {
    return this.inner?.isConnected() ?? false;
  }

  private async attach(nc: NatsConnection): Promise<void> {
    const { log } = this.opts;
    for (let attempt = 1; !this.closed; attempt++) {
      let q: JetStreamQueue;
      try {
        q = this.opts.make ? this.opts.make(nc) : new JetStreamQueue(nc, { ...this.opts.queue, replicas: this.opts.queue.replicas ?? defaultReplicas(nc) });
      } catch (err) {
        // Bad settings (e.g. a replica count JetStream cannot use): retrying would not help.
        log.error({ err }, 'cannot make the shared event queue; this host stays not ready');
        return;
      }
      this.pending = q;
      try {
        await q.start();
      } catch (err) {
        this.pending = undefined;
        await q.close().catch(() => undefined);
        if (attempt === 1 || attempt % 30 === 0) {
          const hint = replicasHint(err, this.opts.queue.replicas ?? defaultReplicas(nc));
          log.error({ err, attempts: attempt }, `cannot open the shared event queue on the brokers${hint ? `: ${hint}` : ''}; retrying`);
        }
        await new Promise((r) => setTimeout(r, this.opts.retryMs ?? 1000).unref());
        continue;
      }
      this.pending = undefined;
      if (this.closed) {
        await q.close();
        return;
      }
      q.onAvailable((fn) => {
        for (const l of this.listeners) l(fn);
      });
      this.inner = q;
      log.info({ attempts: attempt }, 'event queue attached to the brokers');
      // What the dispatcher's start could not do while the queue was away: take back this host's
      // own leases of an earlier run, then announce every function with waiting events.
      const rec = await q.recoverRunning().catch((err: unknown) => {
        log.error({ err }, 'cannot recover events left running by an earlier run of this host');
        return { requeued: [], dead: [] };
      });
      if (rec.requeued.length || rec.dead.length)
        log.warn({ requeued: rec.requeued.length, dead: rec.dead.length }, 'recovered events left running by an earlier run');
      const stats = await q.stats().catch(() => undefined);
      for (const [fn, c] of Object.entries(stats?.functions ?? {})) if (c.depth > 0) for (const l of this.listeners) l(fn);
      return;
    }
  }

  private q(): JetStreamQueue {
    if (this.inner) return this.inner;
    throw new HearthError(
      'UNAVAILABLE',
      this.closed
        ? 'the event queue is closed'
        : `the event queue is not attached to the NATS brokers (${this.opts.connection.servers.join(', ')}) yet; retrying`,
      { details: { retryAfterS: this.retryAfterS } },
    );
  }

  private async call<T>(op: (q: JetStreamQueue) => Promise<T>): Promise<T> {
    return op(this.q());
  }

  submit(fn: string, payload: Buffer | string, opts?: SubmitOptions): Promise<SubmitResult> {
    return this.call((q) => q.submit(fn, payload, opts));
  }

  submitBatch(fn: string, payloads: ReadonlyArray<Buffer | string>, opts?: SubmitOptions): Promise<SubmitBatchResult> {
    return this.call((q) => q.submitBatch(fn, payloads, opts));
  }

  lease(req?: LeaseRequest): Promise<EventRecord[]> {
    return this.call((q) => q.lease(req));
  }

  complete(id: string, result: string | null, fence?: AttemptFence): Promise<void> {
    return this.call((q) => q.complete(id, result, fence));
  }

  fail(id: string, error: EventError, disposition: FailDisposition, fence?: AttemptFence): Promise<'failed' | 'dead'> {
    return this.call((q) => q.fail(id, error, disposition, fence));
  }

  extendLease(id: string, leaseMs: number, fence?: AttemptFence): Promise<void> {
    return this.call((q) => q.extendLease(id, leaseMs, fence));
  }

  get(id: string): Promise<EventRecord> {
    return this.call((q) => q.get(id));
  }

  list(filter?: ListFilter): Promise<EventRecord[]> {
    return this.call((q) => q.list(filter));
  }

  redrive(id: string): Promise<void> {
    return this.call((q) => q.redrive(id));
  }

  /** Zero counts while not attached (the dispatcher's start asks; `/v1/health` says not ready). */
  async stats(): Promise<QueueStats> {
    if (!this.inner && !this.closed) return { total: emptyCounts(), functions: {}, maxQueued: this.maxQueued };
    return this.call((q) => q.stats());
  }

  async nextDueAt(fn?: string): Promise<number | null> {
    if (!this.inner && !this.closed) return null;
    return this.call((q) => q.nextDueAt(fn));
  }

  /** While not attached: nothing (the recovery of this host's own leases runs at attach). */
  async recoverRunning(opts?: { expiredOnly?: boolean }): Promise<RecoverResult> {
    if (!this.inner && !this.closed) return { requeued: [], dead: [] };
    return this.call((q) => q.recoverRunning(opts));
  }

  /** The running events of hosts `gone` says are dead, taken back (nothing until attached). */
  async recoverHeldBy(gone: (holder: string) => boolean): Promise<RecoverResult> {
    if (!this.inner) return { requeued: [], dead: [] };
    return this.call((q) => q.recoverHeldBy(gone));
  }

  prune(): Promise<PruneResult> {
    return this.call((q) => q.prune());
  }

  /** Only events created before now: a purge heard late on this host spares events of a new deploy. */
  purgeFunction(fn: string): Promise<number> {
    const before = this.opts.queue.clock.now();
    return this.call((q) => q.purgeFunction(fn, { createdBefore: before }));
  }

  onAvailable(listener: AvailableListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    const q = this.inner ?? this.pending;
    this.inner = undefined;
    await q?.close();
    await this.attaching;
  }
}
