/**
 * The event queue of a Hearth cluster, on NATS JetStream: the same EventQueue contract as the
 * SQLite queue, shared by every host connected to the same brokers.
 *
 * Storage: one JetStream KV bucket (a stream with `replicas` copies; R3 on a 3-broker cluster)
 * holds each event as one JSON document. Each state change (lease, complete, fail, retry,
 * recovery, redrive) is a compare-and-set on that document's revision, so two hosts never both
 * lease an event and a stale holder cannot settle a newer attempt. Each host keeps a mirror of
 * the bucket from a KV watch (jetstream-queue-mirror.ts): leasing picks from it, listing and stats
 * read it, and other hosts' submits wake this host's dispatcher through `onAvailable`.
 *
 * Durability: a write is acknowledged once the stream has stored it on a majority of replicas;
 * an accepted event survives the loss of any minority of brokers and of the submitting host.
 * Delivery is at-least-once, as the interface says: a host that dies mid-attempt leaves the event
 * `running` until its lease expires; any host's sweep (`recoverRunning({ expiredOnly: true })`)
 * then puts it back. `recoverRunning()` without options recovers only this host's own leases.
 *
 * Where it differs from SqliteQueue (see docs/cluster.md, "The shared event queue"): the bound on queued events is
 * checked against this host's view, so hosts submitting at the same moment can pass it by what
 * is in flight; a batch is written as one document per event, so a host killed in the middle of a
 * batch may leave part of it queued; lists and stats show other hosts' changes a few ms late.
 *
 * Files: this one has the operations; jetstream-queue-kv.ts the bucket, watch and broker errors;
 * jetstream-queue-mirror.ts the local view; jetstream-queue-base.ts life cycle and schedule state.
 */
import { asError, HearthError } from '../errors.js';
import {
  checkSubmit,
  DEFAULT_MAX_ATTEMPTS,
  expiredError,
  failEndsDead,
  payloadText,
  tooManyRequests,
  type AttemptFence,
  type EventError,
  type EventQueue,
  type EventRecord,
  type FailDisposition,
  type LeaseRequest,
  type PruneResult,
  type RecoverResult,
  type SubmitBatchResult,
  type SubmitOptions,
  type SubmitResult,
} from '../queue/event-queue.js';
import { DEFAULT_LEASE_LIMIT, isExpired, leasedFields, leaseSlots, recoveryOf, rotateAfter } from '../queue/lease.js';
import { JetStreamQueueBase, notFound } from './jetstream-queue-base.js';
import { eventKey, idemKey, type EventDoc, type IdemDoc } from './jetstream-queue-kv.js';
import type { MirrorEvent } from './jetstream-queue-mirror.js';

export type { JetStreamQueueOptions } from './jetstream-queue-base.js';

export class JetStreamQueue extends JetStreamQueueBase implements EventQueue {
  private lastServed = '';

  submit(fn: string, payload: Buffer | string, opts?: SubmitOptions): Promise<SubmitResult> {
    return this.submitMany(fn, [payloadText(payload)], opts, false).then((r) => ({ id: r.ids[0], duplicate: r.duplicate }));
  }

  submitBatch(fn: string, payloads: ReadonlyArray<Buffer | string>, opts?: SubmitOptions): Promise<SubmitBatchResult> {
    return this.submitMany(fn, payloads.map(payloadText), opts, true);
  }

  private async submitMany(fn: string, texts: string[], opts: SubmitOptions | undefined, batch: boolean): Promise<SubmitBatchResult> {
    await this.ready();
    checkSubmit(fn, texts.length, opts);
    const key = opts?.idempotencyKey;
    if (key === undefined) return this.insert(fn, texts, opts);
    const ikey = idemKey(fn, key);
    return this.serial(ikey, async () => {
      for (let round = 0; ; round++) {
        const now = this.clock.now();
        let cur = this.bucket.revisionOf(ikey) > 0 ? this.mirror.idem.get(ikey) : undefined;
        if (round > 0) cur = (await this.bucket.fetch<IdemDoc>(ikey, 'read an idempotency key')) ?? undefined;
        if (cur && cur.doc.createdAt > now - this.settings.idempotencyWindowMs) {
          if (cur.doc.batch !== batch) {
            throw new HearthError(
              'CONFLICT',
              `idempotency key '${key}' of function ${fn} was used for a ${cur.doc.batch ? 'batch' : 'single event'}, not a ${batch ? 'batch' : 'single event'}`,
            );
          }
          return { ids: [...cur.doc.ids], duplicate: true };
        }
        const r = await this.insert(fn, texts, opts, async (ids) => {
          const rev = await this.bucket.cas(ikey, { ids, batch, createdAt: now } satisfies IdemDoc, cur?.rev ?? 0, 'store an idempotency key');
          return rev !== null;
        });
        if (r) return r;
        if (round > 5)
          throw new HearthError('UNAVAILABLE', `idempotency key '${key}' is contended; try again`, { details: { retryAfterS: this.settings.retryAfterS } });
      }
    });
  }

  /**
   * Writes the events (after `claim`, which stores the idempotency key and may say someone else
   * was first: then nothing is written and the result is null).
   */
  private async insert(fn: string, texts: string[], opts: SubmitOptions | undefined): Promise<SubmitBatchResult>;
  private async insert(
    fn: string,
    texts: string[],
    opts: SubmitOptions | undefined,
    claim: (ids: string[]) => Promise<boolean>,
  ): Promise<SubmitBatchResult | null>;
  private async insert(
    fn: string,
    texts: string[],
    opts: SubmitOptions | undefined,
    claim?: (ids: string[]) => Promise<boolean>,
  ): Promise<SubmitBatchResult | null> {
    const depth = this.mirror.depth + this.reserved;
    if (depth + texts.length > this.settings.maxQueued) throw tooManyRequests(depth, texts.length, this.settings.maxQueued, this.settings.retryAfterS);
    this.reserved += texts.length;
    try {
      const now = this.clock.now();
      const recs: EventRecord[] = texts.map((payload) => ({
        id: this.ids.next(),
        function: fn,
        payload,
        status: 'queued',
        attempts: 0,
        maxAttempts: opts?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        priority: opts?.priority ?? 0,
        trigger: opts?.trigger ?? 'async',
        createdAt: now,
        notBefore: opts?.notBefore ?? now,
        startedAt: null,
        finishedAt: null,
        expiresAt: opts?.expiresAt ?? null,
        leaseUntil: null,
        result: null,
        error: null,
      }));
      const ids = recs.map((r) => r.id);
      if (claim && !(await claim(ids))) return null;
      const written = await Promise.allSettled(
        recs.map((rec) => this.bucket.put(eventKey(rec.id), { rec, holder: null } satisfies EventDoc, 'queue an event')),
      );
      const failed = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
      if (failed) {
        // All or none: take back what was written (best effort; the broker is failing).
        const done = recs.filter((_, i) => written[i].status === 'fulfilled');
        await Promise.allSettled(done.map((rec) => this.bucket.remove(eventKey(rec.id), 'withdraw an event')));
        if (opts?.idempotencyKey !== undefined)
          await this.bucket.remove(idemKey(fn, opts.idempotencyKey), 'withdraw an idempotency key').catch(() => undefined);
        throw asError(failed.reason);
      }
      return { ids, duplicate: false };
    } finally {
      this.reserved -= texts.length;
    }
  }

  async lease(req: LeaseRequest = {}): Promise<EventRecord[]> {
    await this.ready();
    const leaseMs = req.leaseMs ?? this.settings.defaultLeaseMs;
    const limit = req.limit ?? DEFAULT_LEASE_LIMIT;
    const now = this.clock.now();
    const fns = req.functions ?? rotateAfter([...this.mirror.pending.keys()].sort(), this.lastServed);
    const got = new Map<string, EventRecord[]>();
    let total = 0;
    // A lost compare-and-set means another host leased the event: pick again, a few rounds.
    for (let round = 0; round < 4; round++) {
      const picks: Array<{ fn: string; e: MirrorEvent }> = [];
      const expired: MirrorEvent[] = [];
      for (const fn of fns) {
        const want = Math.min(leaseSlots(req.perFunction, fn) - (got.get(fn)?.length ?? 0), limit - total - picks.length);
        if (want <= 0) continue;
        let n = 0;
        for (const e of [...(this.mirror.pending.get(fn) ?? [])]) {
          if (n >= want) break;
          if (e.doc.rec.notBefore > now) continue;
          this.mirror.unpend(e);
          if (isExpired(e.doc.rec.expiresAt, now)) expired.push(e);
          else {
            picks.push({ fn, e });
            n++;
          }
        }
        if (n > 0) this.lastServed = fn;
      }
      for (const rec of await Promise.all(expired.map((e) => this.endExpired(e, now)))) if (rec) req.onExpired?.(rec);
      if (picks.length === 0) break;
      const results = await Promise.all(picks.map((p) => this.leaseOne(p.e, now, leaseMs)));
      let lost = 0;
      picks.forEach((p, i) => {
        const r = results[i];
        if (r === null) lost++;
        else {
          let l = got.get(p.fn);
          if (!l) got.set(p.fn, (l = []));
          l.push(r);
          total++;
        }
      });
      if (lost === 0 || total >= limit) break;
    }
    const out: EventRecord[] = [];
    for (const fn of fns) out.push(...(got.get(fn) ?? []));
    return out;
  }

  private async leaseOne(e: MirrorEvent, now: number, leaseMs: number): Promise<EventRecord | null> {
    const rec: EventRecord = { ...e.doc.rec, ...leasedFields(e.doc.rec, now, leaseMs) };
    try {
      const rev = await this.bucket.cas(eventKey(rec.id), { rec, holder: this.hostId } satisfies EventDoc, e.rev, 'lease an event');
      if (rev !== null) return rec;
      await this.bucket.fetch(eventKey(rec.id), 'read an event');
    } catch (err) {
      if (!(err instanceof HearthError && err.code === 'UNAVAILABLE')) throw err;
    }
    this.mirror.repend(rec.id);
    return null;
  }

  /** Ends an expired event dead; resolves to its record, or null when another host changed it first. */
  private async endExpired(e: MirrorEvent, now: number): Promise<EventRecord | null> {
    const rec: EventRecord = { ...e.doc.rec, status: 'dead', finishedAt: now, leaseUntil: null, error: expiredError(e.doc.rec.expiresAt!) };
    const rev = await this.bucket.cas(eventKey(rec.id), { rec, holder: null } satisfies EventDoc, e.rev, 'end an expired event').catch(() => null);
    if (rev !== null) return rec;
    this.mirror.repend(rec.id);
    return null;
  }

  complete(id: string, result: string | null, fence?: AttemptFence): Promise<void> {
    return this.settle(id, fence, 'complete', (r) => ({ ...r, status: 'succeeded', finishedAt: this.clock.now(), leaseUntil: null, result, error: null })).then(
      () => undefined,
    );
  }

  fail(id: string, error: EventError, disposition: FailDisposition, fence?: AttemptFence): Promise<'failed' | 'dead'> {
    return this.settle(id, fence, 'fail', (r) => {
      if (failEndsDead(r.attempts, r.maxAttempts, r.expiresAt, disposition)) {
        return { ...r, status: 'dead', finishedAt: this.clock.now(), leaseUntil: null, error: { ...error } };
      }
      return { ...r, status: 'failed', notBefore: (disposition as { retryAt: number }).retryAt, leaseUntil: null, error: { ...error } };
    }).then((r) => r.status as 'failed' | 'dead');
  }

  extendLease(id: string, leaseMs: number, fence?: AttemptFence): Promise<void> {
    return this.settle(id, fence, 'extend the lease of', (r) => ({ ...r, leaseUntil: this.clock.now() + leaseMs }), true).then(() => undefined);
  }

  /** A fenced change of a running event, retried on a lost compare-and-set against the fresh record. */
  private async settle(
    id: string,
    fence: AttemptFence | undefined,
    what: string,
    change: (r: EventRecord) => EventRecord,
    keepHolder = false,
  ): Promise<EventRecord> {
    await this.ready();
    const key = eventKey(id);
    return this.serial(key, async () => {
      for (let round = 0; ; round++) {
        const cur = round === 0 && this.mirror.events.has(id) ? this.mirror.events.get(id)! : await this.bucket.fetch<EventDoc>(key, 'read an event');
        if (!cur) throw notFound(id);
        const r = cur.doc.rec;
        if (r.status !== 'running') throw new HearthError('CONFLICT', `cannot ${what} event ${id}: it is ${r.status}, not running`);
        if (fence?.attempt !== undefined && fence.attempt !== r.attempts) {
          throw new HearthError('CONFLICT', `cannot ${what} event ${id}: attempt ${fence.attempt} is stale, the event is on attempt ${r.attempts}`);
        }
        const next = change(r);
        if ((await this.bucket.cas(key, { rec: next, holder: keepHolder ? cur.doc.holder : null } satisfies EventDoc, cur.rev, `${what} an event`)) !== null)
          return next;
        if (round >= 5)
          throw new HearthError('UNAVAILABLE', `event ${id} is changing too often to ${what} it; try again`, {
            details: { retryAfterS: this.settings.retryAfterS },
          });
      }
    });
  }

  /** Reads the broker, so a result settled on another host a moment ago is seen; the local view only while the broker is unreachable. */
  async get(id: string): Promise<EventRecord> {
    await this.ready();
    let e;
    try {
      e = await this.bucket.fetch<EventDoc>(eventKey(id), 'read an event');
    } catch (err) {
      e = this.mirror.events.get(id);
      if (!e || !(err instanceof HearthError && err.code === 'UNAVAILABLE')) throw err;
    }
    if (!e) throw notFound(id);
    return { ...e.doc.rec };
  }

  async redrive(id: string): Promise<void> {
    await this.ready();
    const key = eventKey(id);
    return this.serial(key, async () => {
      for (let round = 0; ; round++) {
        const cur = round === 0 && this.mirror.events.has(id) ? this.mirror.events.get(id)! : await this.bucket.fetch<EventDoc>(key, 'read an event');
        if (!cur) throw notFound(id);
        const r = cur.doc.rec;
        if (r.status !== 'dead') throw new HearthError('CONFLICT', `cannot redrive event ${id}: it is ${r.status}; only dead events can be redriven`);
        const depth = this.mirror.depth + this.reserved;
        if (depth + 1 > this.settings.maxQueued) throw tooManyRequests(depth, 1, this.settings.maxQueued, this.settings.retryAfterS);
        const now = this.clock.now();
        const rec: EventRecord = {
          ...r,
          status: 'queued',
          attempts: 0,
          notBefore: now,
          startedAt: null,
          finishedAt: null,
          leaseUntil: null,
          result: null,
          error: null,
          expiresAt: r.expiresAt === null ? null : now + (r.expiresAt - r.createdAt),
        };
        if ((await this.bucket.cas(key, { rec, holder: null } satisfies EventDoc, cur.rev, 'redrive an event')) !== null) return;
        if (round >= 5)
          throw new HearthError('UNAVAILABLE', `event ${id} is changing too often to redrive it; try again`, {
            details: { retryAfterS: this.settings.retryAfterS },
          });
      }
    });
  }

  async recoverRunning(opts?: { expiredOnly?: boolean }): Promise<RecoverResult> {
    await this.ready();
    const now = this.clock.now();
    return this.recoverWhere(now, (e) => (opts?.expiredOnly ? e.doc.rec.leaseUntil !== null && e.doc.rec.leaseUntil <= now : e.doc.holder === this.hostId));
  }

  /**
   * Takes back the running events held by other hosts that `gone` says are dead (a host silent
   * for a while: src/cluster/takeover.ts), without waiting for their leases to end. Their
   * attempt counts; a compare-and-set lost to the holder (it was alive and settled) changes nothing.
   */
  async recoverHeldBy(gone: (holder: string) => boolean): Promise<RecoverResult> {
    await this.ready();
    return this.recoverWhere(this.clock.now(), (e) => e.doc.holder !== null && e.doc.holder !== this.hostId && gone(e.doc.holder));
  }

  private async recoverWhere(now: number, take: (e: MirrorEvent) => boolean): Promise<RecoverResult> {
    const out: RecoverResult = { requeued: [], dead: [] };
    const mine = [...this.mirror.events.values()].filter((e) => e.doc.rec.status === 'running' && take(e));
    await Promise.all(
      mine.map(async (e) => {
        const r = e.doc.rec;
        const { dead, error } = recoveryOf(r, now);
        const rec: EventRecord = dead
          ? { ...r, status: 'dead', finishedAt: now, leaseUntil: null, error }
          : { ...r, status: 'failed', notBefore: now, leaseUntil: null, error };
        // A lost compare-and-set: the holder settled it, or another host recovered it first.
        if ((await this.bucket.cas(eventKey(r.id), { rec, holder: null } satisfies EventDoc, e.rev, 'recover an event')) === null) return;
        (dead ? out.dead : out.requeued).push(r.id);
      }),
    );
    out.requeued.sort();
    out.dead.sort();
    return out;
  }

  async prune(): Promise<PruneResult> {
    await this.ready();
    const now = this.clock.now();
    const old = [...this.mirror.events.values()].filter(
      (e) => e.doc.rec.status === 'succeeded' && e.doc.rec.finishedAt !== null && e.doc.rec.finishedAt < now - this.settings.retentionMs,
    );
    const keys = [...this.mirror.idem].filter(([, v]) => v.doc.createdAt < now - this.settings.idempotencyWindowMs).map(([k]) => k);
    await Promise.all([
      ...old.map((e) => this.bucket.remove(eventKey(e.doc.rec.id), 'prune an event')),
      ...keys.map((k) => this.bucket.remove(k, 'prune a key')),
    ]);
    return { events: old.length, idempotencyKeys: keys.length };
  }

  /**
   * `createdBefore`: only events and idempotency keys created before that time (a host that hears
   * a delete late spares the events and keys of a function deployed again under the same name). Every host may purge at once:
   * removing a key twice is harmless.
   */
  async purgeFunction(fn: string, opts?: { createdBefore?: number }): Promise<number> {
    await this.ready();
    const before = opts?.createdBefore ?? Infinity;
    const evs = [...this.mirror.events.values()].filter((e) => e.doc.rec.function === fn && e.doc.rec.createdAt < before).map((e) => eventKey(e.doc.rec.id));
    const keys = [...this.mirror.idem].filter(([k, v]) => k.startsWith(`i.${fn}.`) && v.doc.createdAt < before).map(([k]) => k);
    await Promise.all([...evs, ...keys].map((k) => this.bucket.remove(k, 'purge a function')));
    await this.deleteScheduleState(fn);
    return evs.length;
  }
}
