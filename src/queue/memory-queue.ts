/**
 * An in-memory EventQueue: the same contract as the SQLite queue, minus durability (everything is
 * lost with the process). For tests and the simulator; it runs the shared contract suite.
 * The operations are here; the state, the pending lists and schedule state are in memory-store.ts.
 */
import { HearthError } from '../errors.js';
import {
  checkSubmit,
  clampListLimit,
  DEFAULT_MAX_ATTEMPTS,
  emptyCounts,
  EVENT_STATUSES,
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
  type ListFilter,
  type PruneResult,
  type QueueStats,
  type RecoverResult,
  type ScheduleStateStore,
  type SubmitBatchResult,
  type SubmitOptions,
  type SubmitResult,
} from './event-queue.js';
import { isExpired, leasedFields, leaseRoundRobin, recoveryOf } from './lease.js';
import { copy, MemoryStore, notFound, type MemoryQueueOptions, type Stored } from './memory-store.js';

export { type MemoryQueueOptions } from './memory-store.js';

export class MemoryQueue extends MemoryStore implements EventQueue, ScheduleStateStore {
  constructor(opts: MemoryQueueOptions = {}) {
    super(opts);
  }

  submit(fn: string, payload: Buffer | string, opts?: SubmitOptions): Promise<SubmitResult> {
    return this.op(
      () => {
        const r = this.insert(fn, [payloadText(payload)], opts, false);
        return { id: r.ids[0], duplicate: r.duplicate };
      },
      () => [fn],
    );
  }

  submitBatch(fn: string, payloads: ReadonlyArray<Buffer | string>, opts?: SubmitOptions): Promise<SubmitBatchResult> {
    return this.op(
      () => this.insert(fn, payloads.map(payloadText), opts, true),
      () => [fn],
    );
  }

  private insert(fn: string, texts: string[], opts: SubmitOptions | undefined, batch: boolean): SubmitBatchResult {
    checkSubmit(fn, texts.length, opts);
    const now = this.clock.now();
    const key = opts?.idempotencyKey;
    const idemKey = key === undefined ? '' : `${fn}\u0000${key}`;
    if (key !== undefined) {
      const prev = this.idem.get(idemKey);
      if (prev && prev.createdAt > now - this.settings.idempotencyWindowMs) {
        if (prev.batch !== batch) {
          throw new HearthError(
            'CONFLICT',
            `idempotency key '${key}' of function ${fn} was used for a ${prev.batch ? 'batch' : 'single event'}, not a ${batch ? 'batch' : 'single event'}`,
          );
        }
        return { ids: [...prev.ids], duplicate: true };
      }
    }
    if (this.depth + texts.length > this.settings.maxQueued) {
      throw tooManyRequests(this.depth, texts.length, this.settings.maxQueued, this.settings.retryAfterS);
    }
    const ids: string[] = [];
    for (const payload of texts) {
      const rec: EventRecord = {
        id: this.ids.next(),
        function: fn,
        payload,
        status: 'queued',
        attempts: 0,
        maxAttempts: opts?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        priority: opts?.priority ?? 0,
        createdAt: now,
        notBefore: opts?.notBefore ?? now,
        startedAt: null,
        finishedAt: null,
        expiresAt: opts?.expiresAt ?? null,
        leaseUntil: null,
        result: null,
        error: null,
        trigger: opts?.trigger ?? 'async',
      };
      const s: Stored = { seq: ++this.seq, rec };
      this.byId.set(rec.id, s);
      this.all.push(s);
      this.addPending(s);
      ids.push(rec.id);
    }
    if (key !== undefined) this.idem.set(idemKey, { ids, batch, createdAt: now });
    return { ids: [...ids], duplicate: false };
  }

  lease(req: LeaseRequest = {}): Promise<EventRecord[]> {
    const expired: EventRecord[] = [];
    return this.op(() => {
      const now = this.clock.now();
      const leaseMs = req.leaseMs ?? this.settings.defaultLeaseMs;
      const take = (fn: string, want: number): EventRecord[] => {
        const list = this.pending.get(fn);
        if (!list) return [];
        const got: EventRecord[] = [];
        for (let i = 0; i < list.length && got.length < want;) {
          const s = list[i];
          if (s.rec.notBefore > now) {
            i++;
            continue;
          }
          list.splice(i, 1);
          this.depth--;
          if (isExpired(s.rec.expiresAt, now)) {
            Object.assign(s.rec, { status: 'dead', finishedAt: now, leaseUntil: null, error: expiredError(s.rec.expiresAt) });
            expired.push(copy(s.rec));
            continue;
          }
          Object.assign(s.rec, leasedFields(s.rec, now, leaseMs));
          got.push(copy(s.rec));
        }
        if (list.length === 0) this.pending.delete(fn);
        return got;
      };
      const r = leaseRoundRobin(req, () => [...this.pending.keys()].sort(), this.lastServed, take);
      this.lastServed = r.lastServed;
      return r.leased;
    }).then((leased) => {
      for (const e of expired) req.onExpired?.(e);
      return leased;
    });
  }

  complete(id: string, result: string | null, fence?: AttemptFence): Promise<void> {
    return this.op(() => {
      const s = this.running(id, fence, 'complete');
      Object.assign(s.rec, { status: 'succeeded', finishedAt: this.clock.now(), leaseUntil: null, result, error: null });
    });
  }

  fail(id: string, error: EventError, disposition: FailDisposition, fence?: AttemptFence): Promise<'failed' | 'dead'> {
    let fn = '';
    let requeued = false;
    return this.op(
      () => {
        const s = this.running(id, fence, 'fail');
        fn = s.rec.function;
        const now = this.clock.now();
        if (failEndsDead(s.rec.attempts, s.rec.maxAttempts, s.rec.expiresAt, disposition)) {
          Object.assign(s.rec, { status: 'dead', finishedAt: now, leaseUntil: null, error: { ...error } });
          return 'dead' as const;
        }
        Object.assign(s.rec, { status: 'failed', notBefore: (disposition as { retryAt: number }).retryAt, leaseUntil: null, error: { ...error } });
        this.addPending(s);
        requeued = true;
        return 'failed' as const;
      },
      () => (requeued ? [fn] : []),
    );
  }

  extendLease(id: string, leaseMs: number, fence?: AttemptFence): Promise<void> {
    return this.op(() => {
      const s = this.running(id, fence, 'extend the lease of');
      s.rec.leaseUntil = this.clock.now() + leaseMs;
    });
  }

  get(id: string): Promise<EventRecord> {
    return this.op(() => {
      const s = this.byId.get(id);
      if (!s) throw notFound(id);
      return copy(s.rec);
    });
  }

  list(filter: ListFilter = {}): Promise<EventRecord[]> {
    return this.op(() => {
      const limit = clampListLimit(filter.limit);
      if (filter.status !== undefined && !EVENT_STATUSES.includes(filter.status)) {
        throw new HearthError('BAD_REQUEST', `unknown event status '${String(filter.status)}' (one of ${EVENT_STATUSES.join(', ')})`);
      }
      let beforeSeq = Infinity;
      if (filter.before !== undefined) {
        const b = this.byId.get(filter.before);
        if (!b) throw notFound(filter.before);
        beforeSeq = b.seq;
      }
      const out: EventRecord[] = [];
      for (let i = this.all.length - 1; i >= 0 && out.length < limit; i--) {
        const s = this.all[i];
        if (s.seq >= beforeSeq || !this.byId.has(s.rec.id)) continue;
        if (filter.function !== undefined && s.rec.function !== filter.function) continue;
        if (filter.status !== undefined && s.rec.status !== filter.status) continue;
        out.push(copy(s.rec));
      }
      return out;
    });
  }

  redrive(id: string): Promise<void> {
    let fn = '';
    return this.op(
      () => {
        const s = this.byId.get(id);
        if (!s) throw notFound(id);
        fn = s.rec.function;
        if (s.rec.status !== 'dead') throw new HearthError('CONFLICT', `cannot redrive event ${id}: it is ${s.rec.status}; only dead events can be redriven`);
        if (this.depth + 1 > this.settings.maxQueued) throw tooManyRequests(this.depth, 1, this.settings.maxQueued, this.settings.retryAfterS);
        const now = this.clock.now();
        Object.assign(s.rec, {
          status: 'queued',
          attempts: 0,
          notBefore: now,
          startedAt: null,
          finishedAt: null,
          leaseUntil: null,
          result: null,
          error: null,
          expiresAt: s.rec.expiresAt === null ? null : now + (s.rec.expiresAt - s.rec.createdAt),
        });
        this.addPending(s);
      },
      () => [fn],
    );
  }

  stats(): Promise<QueueStats> {
    return this.op(() => {
      const total = emptyCounts();
      const functions: QueueStats['functions'] = {};
      for (const s of this.byId.values()) {
        const c = (functions[s.rec.function] ??= emptyCounts());
        c[s.rec.status]++;
        total[s.rec.status]++;
      }
      for (const c of [total, ...Object.values(functions)]) c.depth = c.queued + c.failed;
      return { total, functions, maxQueued: this.settings.maxQueued };
    });
  }

  nextDueAt(fn?: string): Promise<number | null> {
    return this.op(() => {
      let t: number | null = null;
      const lists = fn === undefined ? [...this.pending.values()] : [this.pending.get(fn) ?? []];
      for (const list of lists) for (const s of list) if (t === null || s.rec.notBefore < t) t = s.rec.notBefore;
      return t;
    });
  }

  recoverRunning(opts?: { expiredOnly?: boolean }): Promise<RecoverResult> {
    const fns = new Set<string>();
    return this.op(
      () => {
        const now = this.clock.now();
        const out: RecoverResult = { requeued: [], dead: [] };
        for (const s of this.all) {
          const r = s.rec;
          if (r.status !== 'running' || !this.byId.has(r.id)) continue;
          if (opts?.expiredOnly && !(r.leaseUntil !== null && r.leaseUntil <= now)) continue;
          const { dead, error } = recoveryOf(r, now);
          if (dead) {
            Object.assign(r, { status: 'dead', finishedAt: now, leaseUntil: null, error });
            out.dead.push(r.id);
          } else {
            Object.assign(r, { status: 'failed', notBefore: now, leaseUntil: null, error });
            this.addPending(s);
            fns.add(r.function);
            out.requeued.push(r.id);
          }
        }
        return out;
      },
      () => fns,
    );
  }

  prune(): Promise<PruneResult> {
    return this.op(() => {
      const now = this.clock.now();
      let events = 0;
      for (const [id, s] of this.byId) {
        if (s.rec.status === 'succeeded' && s.rec.finishedAt !== null && s.rec.finishedAt < now - this.settings.retentionMs) {
          this.byId.delete(id);
          events++;
        }
      }
      this.compact();
      let idempotencyKeys = 0;
      for (const [k, v] of this.idem) {
        if (v.createdAt < now - this.settings.idempotencyWindowMs) {
          this.idem.delete(k);
          idempotencyKeys++;
        }
      }
      return { events, idempotencyKeys };
    });
  }

  purgeFunction(fn: string): Promise<number> {
    return this.op(() => {
      let n = 0;
      for (const [id, s] of this.byId) {
        if (s.rec.function !== fn) continue;
        this.removePending(s);
        this.byId.delete(id);
        n++;
      }
      this.compact();
      for (const k of [...this.idem.keys()]) if (k.startsWith(`${fn}\u0000`)) this.idem.delete(k);
      this.schedules.delete(fn);
      return n;
    });
  }
}
