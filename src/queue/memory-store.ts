/**
 * The state half of MemoryQueue (memory-queue.ts): the events, the per-function pending lists in
 * lease order, idempotency keys, schedule state, and the op wrapper that tells listeners. The
 * queue operations live in MemoryQueue, which extends this.
 */
import { systemClock } from '../clock.js';
import { asError, HearthError } from '../errors.js';
import { EventIdGenerator } from './event-id.js';
import {
  queueSettings,
  type AttemptFence,
  type AvailableListener,
  type EventRecord,
  type NowSource,
  type QueueSettings,
  type ScheduleStateStore,
} from './event-queue.js';

export interface MemoryQueueOptions extends Partial<QueueSettings> {
  clock?: NowSource;
}

export interface Stored {
  seq: number;
  rec: EventRecord;
}

export abstract class MemoryStore implements ScheduleStateStore {
  protected readonly clock: NowSource;
  protected readonly settings: QueueSettings;
  protected readonly ids: EventIdGenerator;
  protected readonly byId = new Map<string, Stored>();
  /** Events in arrival order (seq ascending); deletions leave the order intact. */
  protected readonly all: Stored[] = [];
  /** Per function: waiting events sorted by (priority desc, seq asc). */
  protected readonly pending = new Map<string, Stored[]>();
  protected readonly idem = new Map<string, { ids: string[]; batch: boolean; createdAt: number }>();
  protected readonly schedules = new Map<string, Map<string, number>>();
  protected readonly listeners = new Set<AvailableListener>();
  protected seq = 0;
  protected depth = 0;
  /** Round-robin start for leases over all functions. */
  protected lastServed = '';
  protected closed = false;

  protected constructor(opts: MemoryQueueOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.settings = queueSettings(opts);
    this.ids = new EventIdGenerator(this.clock);
  }

  protected op<T>(run: () => T, available?: () => Iterable<string>): Promise<T> {
    if (this.closed) return Promise.reject(new HearthError('UNAVAILABLE', 'the event queue is closed'));
    try {
      const v = run();
      const fns = available ? [...available()] : [];
      if (fns.length) {
        queueMicrotask(() => {
          for (const fn of fns)
            for (const l of this.listeners) {
              try {
                l(fn);
              } catch {
                /* listeners must not throw */
              }
            }
        });
      }
      return Promise.resolve(v);
    } catch (e) {
      return Promise.reject(asError(e));
    }
  }

  protected addPending(s: Stored): void {
    let list = this.pending.get(s.rec.function);
    if (!list) this.pending.set(s.rec.function, (list = []));
    // Binary search for the first element that should come after s.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = list[mid];
      if (m.rec.priority > s.rec.priority || (m.rec.priority === s.rec.priority && m.seq < s.seq)) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, s);
    this.depth++;
  }

  protected removePending(s: Stored): void {
    const list = this.pending.get(s.rec.function);
    const i = list ? list.indexOf(s) : -1;
    if (i >= 0) {
      list!.splice(i, 1);
      this.depth--;
      if (list!.length === 0) this.pending.delete(s.rec.function);
    }
  }

  protected running(id: string, fence: AttemptFence | undefined, what: string): Stored {
    const s = this.byId.get(id);
    if (!s) throw notFound(id);
    if (s.rec.status !== 'running') throw new HearthError('CONFLICT', `cannot ${what} event ${id}: it is ${s.rec.status}, not running`);
    if (fence?.attempt !== undefined && fence.attempt !== s.rec.attempts) {
      throw new HearthError('CONFLICT', `cannot ${what} event ${id}: attempt ${fence.attempt} is stale, the event is on attempt ${s.rec.attempts}`);
    }
    return s;
  }

  protected compact(): void {
    let w = 0;
    for (const s of this.all) if (this.byId.has(s.rec.id)) this.all[w++] = s;
    this.all.length = w;
  }

  onAvailable(listener: AvailableListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }

  getScheduleStates(fn: string): Promise<Map<string, number>> {
    return this.op(() => new Map(this.schedules.get(fn) ?? []));
  }

  setScheduleState(fn: string, expression: string, handledThrough: number): Promise<void> {
    return this.op(() => {
      let m = this.schedules.get(fn);
      if (!m) this.schedules.set(fn, (m = new Map<string, number>()));
      m.set(expression, handledThrough);
    });
  }

  deleteScheduleState(fn: string, expression?: string): Promise<void> {
    return this.op(() => {
      if (expression === undefined) this.schedules.delete(fn);
      else this.schedules.get(fn)?.delete(expression);
    });
  }
}

export function copy(r: EventRecord): EventRecord {
  return { ...r, error: r.error === null ? null : { ...r.error } };
}

export function notFound(id: string): HearthError {
  return new HearthError('EVENT_NOT_FOUND', `event ${id} not found`);
}
