/**
 * Event-driven replay of a trace through one Policy, on a virtual clock (ms from the trace start).
 *
 * Replay rule (issue 4): the k-th (k = 0..n−1) of n invocations in minute m (1-based) starts at
 * (m − 1 + (k + 0.5)/n) × 60 s and runs for the function's `Average` ms; an instance reserves its
 * app's memory and serves one invocation at a time; an arrival takes the most recently used idle
 * instance of its function, and one that finds none is a cold start and gets a new instance at
 * once; idle time counts until the instance is ended or the trace ends (minutes × 60 s).
 *
 * At equal times events run in this order: finishes, keep-alive expiries, pre-warms, arrivals.
 * So an instance whose keep-alive ends at t is gone for an arrival at t, and one pre-warmed at t
 * serves it. An arrival cancels its function's pending pre-warm. A pre-warm finding an idle
 * instance of the function does nothing.
 *
 * Memory cap (optional): when a new instance does not fit, the policy chooses idle victims; if it
 * still does not fit, a cold start goes ahead anyway (counted in `overCapStarts`; an invocation is
 * never dropped) and a pre-warm is skipped.
 */
import type { IdleCause, Policy, PoolCounts } from '../../src/model/policy.js';
import { percentile } from '../../src/stats/percentile.js';
import { EventQueue, type TimedEvent } from './event-queue.js';
import type { Trace, TraceFunction } from './trace.js';

const FINISH = 0;
const EXPIRE = 1;
const PREWARM = 2;
const ARRIVAL = 3;
const MINUTE = 4;

interface SimEvent extends TimedEvent {
  fn: number;
  inst: Instance | null;
  token: number;
  minute: number;
}

interface Instance {
  id: number;
  fn: number;
  memoryMb: number;
  busy: boolean;
  alive: boolean;
  idleSince: number;
  /** Bumped whenever the instance changes state, so stale expiry events are ignored. */
  version: number;
  prewarmed: boolean;
}

interface FnState {
  f: TraceFunction;
  /** Idle instances, most recently used last (lazy deletion: skip dead or busy entries). */
  idle: Instance[];
  idleCount: number;
  busyCount: number;
  invocations: number;
  coldStarts: number;
  prewarmToken: number;
  wastedMbMs: number;
}

export interface SimOptions {
  /** Memory cap for all instances, MB (default: none). */
  memoryCapMb?: number;
  /** Called when an instance is created: for a cold start (prewarm false) or a pre-warm. */
  onCreate?: (t: number, prewarm: boolean) => void;
  /** Called at the start of every trace minute, before its arrivals. */
  onMinute?: (t: number) => void;
}

export interface FunctionResult {
  id: string;
  invocations: number;
  coldStarts: number;
  wastedMemoryGBs: number;
}

export interface SimResult {
  name: string;
  invocations: number;
  coldStarts: number;
  coldStartRatio: number;
  p75FunctionColdStartRatio: number;
  wastedMemoryGBs: number;
  peakMemoryMB: number;
  /** Extra facts, not part of the JSON contract. */
  details: {
    traceEndMs: number;
    instancesCreated: number;
    prewarms: number;
    prewarmsUsed: number;
    evictions: number;
    overCapStarts: number;
    memoryCapMb: number | null;
    functions: FunctionResult[];
  };
}

export function simulate(trace: Trace, policy: Policy, options: SimOptions = {}): SimResult {
  const cap = options.memoryCapMb ?? Infinity;
  const traceEnd = trace.minutes * 60_000;
  const fns: FnState[] = trace.functions.map((f) => ({
    f,
    idle: [],
    idleCount: 0,
    busyCount: 0,
    invocations: 0,
    coldStarts: 0,
    prewarmToken: 0,
    wastedMbMs: 0,
  }));
  for (const s of fns) {
    policy.describe(s.f.id, { memoryMb: s.f.memoryMb, coldStartMs: s.f.coldStartMs, group: s.f.app });
  }
  const q = new EventQueue<SimEvent>();
  const allIdle = new Set<Instance>();
  let nextId = 1;
  let memory = 0;
  let peak = 0;
  let wastedMbMs = 0;
  /** Event counts for the result's details. */
  const count = { created: 0, prewarms: 0, prewarmsUsed: 0, evictions: 0, overCap: 0 };

  const counts = (s: FnState): PoolCounts => ({ idle: s.idleCount, busy: s.busyCount });

  /** Ends idle time accounting of an idle instance at t. */
  const leaveIdle = (inst: Instance, t: number): void => {
    const from = Math.min(inst.idleSince, traceEnd);
    const to = Math.min(t, traceEnd);
    if (to > from) {
      wastedMbMs += inst.memoryMb * (to - from);
      fns[inst.fn].wastedMbMs += inst.memoryMb * (to - from);
    }
    allIdle.delete(inst);
    fns[inst.fn].idleCount--;
  };

  const endInstance = (inst: Instance, t: number): void => {
    if (!inst.alive) return;
    if (!inst.busy) leaveIdle(inst, t);
    inst.alive = false;
    inst.version++;
    memory -= inst.memoryMb;
  };

  /** Makes room for mb under the cap; returns whether it fits now. */
  const makeRoom = (mb: number, t: number): boolean => {
    if (memory + mb <= cap) return true;
    const candidates = [...allIdle].map((i) => ({
      id: String(i.id),
      fn: fns[i.fn].f.id,
      memoryMb: i.memoryMb,
      idleSince: i.idleSince,
    }));
    const byId = new Map([...allIdle].map((i) => [String(i.id), i]));
    const victims = policy.chooseVictims(candidates, memory + mb - cap, t);
    for (const v of victims) {
      const inst = byId.get(v);
      if (inst && inst.alive && !inst.busy) {
        endInstance(inst, t);
        count.evictions++;
      }
    }
    return memory + mb <= cap;
  };

  const newInstance = (s: FnState, fnIndex: number): Instance => {
    const inst: Instance = {
      id: nextId++,
      fn: fnIndex,
      memoryMb: s.f.memoryMb,
      busy: false,
      alive: true,
      idleSince: 0,
      version: 0,
      prewarmed: false,
    };
    memory += inst.memoryMb;
    if (memory > peak) peak = memory;
    count.created++;
    return inst;
  };

  /** Puts an idle instance under the policy's keep-alive decision. */
  const becomeIdle = (s: FnState, inst: Instance, t: number, cause: IdleCause): void => {
    inst.busy = false;
    inst.idleSince = t;
    inst.version++;
    s.idle.push(inst);
    s.idleCount++;
    allIdle.add(inst);
    const ka = policy.keepAliveMs(s.f.id, t, { ...counts(s), cause });
    if (!(ka > 0)) {
      endInstance(inst, t);
      return;
    }
    if (Number.isFinite(ka) && t + ka < traceEnd) {
      q.push({ t: t + ka, kind: EXPIRE, fn: inst.fn, inst, token: inst.version, minute: 0 });
    }
  };

  const askPrewarm = (s: FnState, fnIndex: number, t: number): void => {
    const at = policy.prewarmAt(s.f.id, t);
    if (at === null || !(at >= t) || at > traceEnd) return;
    s.prewarmToken++;
    q.push({ t: at, kind: PREWARM, fn: fnIndex, inst: null, token: s.prewarmToken, minute: 0 });
  };

  const popIdle = (s: FnState): Instance | undefined => {
    while (s.idle.length > 0) {
      const inst = s.idle.pop()!;
      if (inst.alive && !inst.busy) return inst;
    }
    return undefined;
  };

  if (trace.minutes > 0) q.push({ t: 0, kind: MINUTE, fn: -1, inst: null, token: 0, minute: 1 });

  for (let ev = q.pop(); ev !== undefined; ev = q.pop()) {
    const t = ev.t;
    if (t > traceEnd) break;
    switch (ev.kind) {
      case MINUTE: {
        const m = ev.minute;
        const base = (m - 1) * 60_000;
        options.onMinute?.(base);
        for (let i = 0; i < fns.length; i++) {
          const n = fns[i].f.perMinute[m - 1];
          for (let k = 0; k < n; k++) {
            q.push({ t: base + ((k + 0.5) / n) * 60_000, kind: ARRIVAL, fn: i, inst: null, token: 0, minute: 0 });
          }
        }
        if (m < trace.minutes) q.push({ t: m * 60_000, kind: MINUTE, fn: -1, inst: null, token: 0, minute: m + 1 });
        break;
      }
      case ARRIVAL: {
        const s = fns[ev.fn];
        policy.onArrival(s.f.id, t, counts(s));
        s.prewarmToken++; // cancels a pending pre-warm
        s.invocations++;
        let inst = popIdle(s);
        if (inst) {
          leaveIdle(inst, t);
          if (inst.prewarmed) {
            count.prewarmsUsed++;
            inst.prewarmed = false;
          }
        } else {
          s.coldStarts++;
          if (!makeRoom(s.f.memoryMb, t)) count.overCap++;
          inst = newInstance(s, ev.fn);
          options.onCreate?.(t, false);
        }
        inst.busy = true;
        inst.version++;
        s.busyCount++;
        q.push({ t: t + s.f.durationMs, kind: FINISH, fn: ev.fn, inst, token: 0, minute: 0 });
        break;
      }
      case FINISH: {
        const s = fns[ev.fn];
        const inst = ev.inst!;
        s.busyCount--;
        policy.onFinish(s.f.id, t, s.f.durationMs, { idle: s.idleCount + 1, busy: s.busyCount });
        becomeIdle(s, inst, t, 'finish');
        askPrewarm(s, ev.fn, t);
        break;
      }
      case EXPIRE: {
        const inst = ev.inst!;
        if (!inst.alive || inst.busy || inst.version !== ev.token) break;
        endInstance(inst, t);
        const s = fns[ev.fn];
        askPrewarm(s, ev.fn, t);
        break;
      }
      case PREWARM: {
        const s = fns[ev.fn];
        if (ev.token !== s.prewarmToken) break;
        const want = policy.prewarmCount?.(s.f.id, t) ?? 1;
        while (s.idleCount < want) {
          if (!makeRoom(s.f.memoryMb, t)) break;
          const inst = newInstance(s, ev.fn);
          inst.prewarmed = true;
          count.prewarms++;
          options.onCreate?.(t, true);
          const before = s.idleCount;
          becomeIdle(s, inst, t, 'prewarm');
          if (s.idleCount <= before) break; // the policy ended it at once: loading more would repeat that
        }
        break;
      }
    }
  }
  for (const inst of [...allIdle]) leaveIdle(inst, traceEnd);

  const perFn = fns.filter((s) => s.invocations > 0);
  const invocations = perFn.reduce((a, s) => a + s.invocations, 0);
  const coldStarts = perFn.reduce((a, s) => a + s.coldStarts, 0);
  return {
    name: policy.name,
    invocations,
    coldStarts,
    coldStartRatio: invocations > 0 ? coldStarts / invocations : 0,
    p75FunctionColdStartRatio:
      perFn.length > 0
        ? percentile(
            perFn.map((s) => s.coldStarts / s.invocations),
            0.75,
          )
        : 0,
    wastedMemoryGBs: wastedMbMs / 1000 / 1024,
    peakMemoryMB: peak,
    details: {
      traceEndMs: traceEnd,
      instancesCreated: count.created,
      prewarms: count.prewarms,
      prewarmsUsed: count.prewarmsUsed,
      evictions: count.evictions,
      overCapStarts: count.overCap,
      memoryCapMb: Number.isFinite(cap) ? cap : null,
      functions: fns.map((s) => ({
        id: s.f.id,
        invocations: s.invocations,
        coldStarts: s.coldStarts,
        wastedMemoryGBs: s.wastedMbMs / 1000 / 1024,
      })),
    },
  };
}

/**
 * Peak memory of running invocations alone under the replay rule: the least memory any policy
 * needs (used to size the FaaSCache cap). Streams minute by minute with a heap of finish times.
 */
export function peakBusyMemoryMb(trace: Trace): number {
  const finishes = new EventQueue<TimedEvent & { mb: number }>();
  let cur = 0;
  let peak = 0;
  for (let m = 0; m < trace.minutes; m++) {
    const starts: [number, number, number][] = [];
    for (const f of trace.functions) {
      const n = f.perMinute[m];
      for (let k = 0; k < n; k++) starts.push([(m + (k + 0.5) / n) * 60_000, f.memoryMb, f.durationMs]);
    }
    starts.sort((a, b) => a[0] - b[0]);
    for (const [t, mb, d] of starts) {
      // Finishes at the same instant come first (they free memory before the start).
      for (let e = finishes.peek(); e !== undefined && e.t <= t; e = finishes.peek()) {
        cur -= finishes.pop()!.mb;
      }
      cur += mb;
      if (cur > peak) peak = cur;
      finishes.push({ t: t + d, kind: 0, mb });
    }
  }
  return peak;
}
