/**
 * The local view of the cluster's event bucket that each JetStreamQueue keeps (fed by
 * jetstream-queue-kv.ts): every event record with its revision, per function the waiting events
 * in lease order, the arrival order for listing, idempotency keys and schedule states. Reads
 * (list, stats, nextDueAt) and the choice of what to lease come from here; every change is a
 * compare-and-set on the broker, so a view that lags only costs a lost race, never a double lease.
 */
import type { AvailableListener, EventRecord } from '../queue/event-queue.js';
import { scheduleExpression, type EventDoc, type IdemDoc, type Stored } from './jetstream-queue-kv.js';

export interface MirrorEvent extends Stored<EventDoc> {
  /** True while in its function's pending list. */
  pending: boolean;
}

const isWaiting = (r: EventRecord): boolean => r.status === 'queued' || r.status === 'failed';

/** Lease order within a function: higher priority first, then arrival (id) order. */
function before(a: EventRecord, b: EventRecord): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.id < b.id);
}

export class QueueMirror {
  readonly events = new Map<string, MirrorEvent>();
  /** Event ids ascending (arrival order); deleted ids are dropped lazily. */
  private order: string[] = [];
  private orderDirty = 0;
  readonly pending = new Map<string, MirrorEvent[]>();
  depth = 0;
  readonly idem = new Map<string, Stored<IdemDoc>>();
  /** fn -> expression -> handled-through. */
  readonly schedules = new Map<string, Map<string, number>>();
  readonly listeners = new Set<AvailableListener>();

  constructor(private readonly revisionOf: (key: string) => number) {}

  /** A change of one key (null: deleted), already ordered by revision. */
  apply(key: string, value: Uint8Array | null): void {
    const kind = key.slice(0, 2);
    const rest = key.slice(2);
    if (kind === 'e.') this.applyEvent(rest, value === null ? null : (JSON.parse(Buffer.from(value).toString()) as EventDoc), this.revisionOf(key));
    else if (kind === 'i.') {
      if (value === null) this.idem.delete(key);
      else this.idem.set(key, { doc: JSON.parse(Buffer.from(value).toString()) as IdemDoc, rev: this.revisionOf(key) });
    } else if (kind === 's.') {
      const fn = rest.slice(0, rest.indexOf('.'));
      const expr = scheduleExpression(key);
      let m = this.schedules.get(fn);
      if (value === null) {
        m?.delete(expr);
        if (m?.size === 0) this.schedules.delete(fn);
      } else {
        if (!m) this.schedules.set(fn, (m = new Map<string, number>()));
        m.set(expr, JSON.parse(Buffer.from(value).toString()) as number);
      }
    }
  }

  private applyEvent(id: string, doc: EventDoc | null, rev: number): void {
    const old = this.events.get(id);
    if (old?.pending) this.unpend(old);
    if (doc === null) {
      if (old) {
        this.events.delete(id);
        this.orderDirty++;
      }
      return;
    }
    const e: MirrorEvent = { doc, rev, pending: false };
    this.events.set(id, e);
    if (!old) this.insertOrder(id);
    if (isWaiting(doc.rec)) {
      this.pend(e);
      if (!old?.doc || !isWaiting(old.doc.rec) || old.doc.rec.notBefore !== doc.rec.notBefore) this.announce(doc.rec.function);
    }
  }

  private insertOrder(id: string): void {
    const o = this.order;
    if (o.length === 0 || o[o.length - 1] < id) {
      o.push(id);
      return;
    }
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (o[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    if (o[lo] !== id) o.splice(lo, 0, id);
  }

  /** Event ids newest first. */
  *newestFirst(): Generator<string> {
    if (this.orderDirty > 1000 && this.orderDirty > this.order.length / 4) {
      this.order = this.order.filter((id) => this.events.has(id));
      this.orderDirty = 0;
    }
    for (let i = this.order.length - 1; i >= 0; i--) if (this.events.has(this.order[i])) yield this.order[i];
  }

  private pend(e: MirrorEvent): void {
    const fn = e.doc.rec.function;
    let list = this.pending.get(fn);
    if (!list) this.pending.set(fn, (list = []));
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(list[mid].doc.rec, e.doc.rec)) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, e);
    e.pending = true;
    this.depth++;
  }

  /** Takes an event out of its pending list (it is being leased, or changed). */
  unpend(e: MirrorEvent): void {
    if (!e.pending) return;
    const fn = e.doc.rec.function;
    const list = this.pending.get(fn);
    const i = list ? list.indexOf(e) : -1;
    if (i >= 0) list!.splice(i, 1);
    if (list && list.length === 0) this.pending.delete(fn);
    e.pending = false;
    this.depth--;
  }

  /** Puts back an event taken by `unpend` whose lease was not made (lost race, broker error). */
  repend(id: string): void {
    const e = this.events.get(id);
    if (e && !e.pending && isWaiting(e.doc.rec)) this.pend(e);
  }

  private announce(fn: string): void {
    if (this.listeners.size === 0) return;
    queueMicrotask(() => {
      for (const l of this.listeners) {
        try {
          l(fn);
        } catch {
          /* listeners must not throw */
        }
      }
    });
  }
}
