/**
 * What leasing and lease recovery decide, the same for every EventQueue backend: which functions
 * are served in which order, how many events each may take, the state a leased event enters, and
 * what becomes of a running event whose lease is given up. Pure code: the backends keep only the
 * storage (arrays in memory, rows in SQLite).
 */
import type { EventError, EventRecord, LeaseRequest } from './event-queue.js';

/** Default cap on the events one lease call claims, over all functions. */
export const DEFAULT_LEASE_LIMIT = 1000;

/** Sorted function names, starting after `last` and wrapping: leases over all functions go round-robin. */
export function rotateAfter(sorted: string[], last: string): string[] {
  const i = sorted.findIndex((f) => f > last);
  return i <= 0 ? sorted : [...sorted.slice(i), ...sorted.slice(0, i)];
}

/** How many events a lease request allows for one function. */
export function leaseSlots(p: LeaseRequest['perFunction'], fn: string): number {
  if (p === undefined) return 1;
  if (typeof p === 'number') return Math.max(0, Math.floor(p));
  return Math.max(0, Math.floor(p[fn] ?? 0));
}

/**
 * One lease call's walk over the functions: `req.functions` in their order, else every function
 * with waiting events (`pendingSorted`, ascending) round-robin after `lastServed`. `take(fn, want)`
 * leases up to `want` (≥ 1) of fn's due events and returns them; the walk stops at the request's
 * limit. Returns the leased events and the last function that got any (the next call's start).
 */
export function leaseRoundRobin(
  req: LeaseRequest,
  pendingSorted: () => string[],
  lastServed: string,
  take: (fn: string, want: number) => EventRecord[],
): { leased: EventRecord[]; lastServed: string } {
  const limit = req.limit ?? DEFAULT_LEASE_LIMIT;
  const leased: EventRecord[] = [];
  let last = lastServed;
  for (const fn of req.functions ?? rotateAfter(pendingSorted(), lastServed)) {
    if (leased.length >= limit) break;
    const want = Math.min(leaseSlots(req.perFunction, fn), limit - leased.length);
    if (want <= 0) continue;
    const got = take(fn, want);
    if (got.length > 0) last = fn;
    leased.push(...got);
  }
  return { leased, lastServed: last };
}

/** The fields a leased event takes at `now`: running, one more attempt, held for leaseMs. */
export function leasedFields(
  rec: Pick<EventRecord, 'attempts'>,
  now: number,
  leaseMs: number,
): Pick<EventRecord, 'status' | 'attempts' | 'startedAt' | 'finishedAt' | 'leaseUntil'> {
  return { status: 'running', attempts: rec.attempts + 1, startedAt: now, finishedAt: null, leaseUntil: now + leaseMs };
}

/**
 * What becomes of a running event whose attempt is given up at `now` (daemon restart, expired
 * lease): dead when it has used all its attempts or passed its maximum age, else failed and due
 * again at once. `error` is what the event records either way.
 */
export function recoveryOf(rec: Pick<EventRecord, 'attempts' | 'maxAttempts' | 'expiresAt'>, now: number): { dead: boolean; error: EventError } {
  if (rec.attempts >= rec.maxAttempts) return { dead: true, error: interruptedError(rec.attempts) };
  if (rec.expiresAt !== null && rec.expiresAt <= now) return { dead: true, error: expiredError(rec.expiresAt) };
  return { dead: false, error: interruptedError(rec.attempts) };
}

/** True when an event with this expiry may no longer start at `now`. */
export function isExpired(expiresAt: number | null, now: number): expiresAt is number {
  return expiresAt !== null && expiresAt <= now;
}

export function interruptedError(attempt: number): EventError {
  return { type: 'Interrupted', message: `attempt ${attempt} was interrupted (daemon stopped or lease expired) before it finished` };
}

export function expiredError(expiresAt: number): EventError {
  return { type: 'Expired', message: `event passed its maximum age at ${new Date(expiresAt).toISOString()} before it could run` };
}
