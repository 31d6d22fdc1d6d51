/**
 * The dashboard's one JSON document (GET /api/dashboard on the metrics listener): per function
 * the recent rate, start kinds, latency, errors, instances and the policy's decision; generic
 * pools; the queue; recent failures; and a per-second series for the charts.
 */
import type { Failure, RecentInvocations, Series } from './recent.js';
import type { ObservedState } from './state.js';

export interface DashboardFunction {
  name: string;
  runtime: string;
  perMinute: number;
  starts: { cold: number; generic: number; warm: number };
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  total: number;
  instances: { idle: number; busy: number };
  decision: { keepAliveS: number | null; prewarmAt: string | null; targetInstances: number };
  queue: { depth: number; running: number; dead: number };
}

export interface Dashboard {
  now: string;
  policy: string | null;
  functions: DashboardFunction[];
  generic: Array<{ runtime: string; network: string | null; count: number }>;
  memory: { inUseMb: number; budgetMb: number };
  queue: { depth: number; running: number; dead: number; maxQueued: number };
  failures: Failure[];
  series: Series;
}

export async function dashboardData(state: ObservedState, recent: RecentInvocations, now: number): Promise<Dashboard> {
  const perFn = new Map<string, { idle: number; busy: number }>();
  const generic = new Map<string, { runtime: string; network: string | null; count: number }>();
  for (const i of state.instances()) {
    if (i.state === 'generic' || !i.function) {
      const k = `${i.runtime}\0${i.network ?? ''}`;
      const g = generic.get(k);
      if (g) g.count++;
      else generic.set(k, { runtime: i.runtime, network: i.network, count: 1 });
      continue;
    }
    let c = perFn.get(i.function);
    if (!c) perFn.set(i.function, (c = { idle: 0, busy: 0 }));
    c[i.state]++;
  }
  const q = await state.queueStats();
  let policy: string | null = null;
  const functions = state.functions().map((f): DashboardFunction => {
    const d = state.decision(f.name);
    policy = d.policy;
    const qc = q.functions[f.name];
    const w = recent.window(f.name, now);
    // Written out, not spread: spreading two objects into a literal took microseconds per
    // function (V8's slow path), most of the document's cost with 1,000 functions.
    return {
      name: f.name,
      runtime: f.runtime,
      perMinute: w.perMinute,
      starts: w.starts,
      p50Ms: w.p50Ms,
      p99Ms: w.p99Ms,
      errors: w.errors,
      total: w.total,
      instances: perFn.get(f.name) ?? { idle: 0, busy: 0 },
      decision: {
        keepAliveS: d.keepAliveMs === null ? null : Math.round(d.keepAliveMs / 1000),
        prewarmAt: d.prewarmAt === null ? null : new Date(d.prewarmAt).toISOString(),
        targetInstances: d.targetInstances,
      },
      queue: { depth: qc?.depth ?? 0, running: qc?.running ?? 0, dead: qc?.dead ?? 0 },
    };
  });
  return {
    now: new Date(now).toISOString(),
    policy,
    functions,
    generic: [...generic.values()],
    memory: state.memory(),
    queue: { depth: q.total.depth, running: q.total.running, dead: q.total.dead, maxQueued: q.maxQueued },
    failures: recent.recentFailures(),
    series: recent.series(now),
  };
}
