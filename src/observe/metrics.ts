/**
 * Prometheus metrics, written with prom-client on a registry of our own (never the global one).
 * Counters and histograms follow the dispatcher's feeds (one InvocationRecord per finished
 * invocation, one DeadLetter per event that ended dead); gauges are read from the ObservedState at
 * scrape time. Label values are bounded: `function` is a deployed function (series of a function
 * that is gone are removed at the next scrape), every other label is from a fixed set.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeadLetter, InvocationRecord } from '../dispatch/invocations.js';
import { EVENT_STATUSES } from '../queue/event-queue.js';
import type { ObservedState } from './state.js';

/**
 * Seconds: 100 µs (a warm call's run) to 15 min (the longest timeout), fine below 10 ms where warm
 * calls fall, coarse above. Every function has one series per bucket, so their number is what a
 * scrape of many functions costs (BENCHMARKS.md).
 */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5, 30, 900];
/** Seconds: a start is warm (0), a generic specialisation (sub-ms to ms) or a cold start (tens of ms to seconds). */
export const START_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type InvocationLabels = 'function' | 'start' | 'outcome' | 'trigger';

export class HearthMetrics {
  readonly registry = new Registry();
  private readonly invocations: Counter<InvocationLabels>;
  private readonly duration: Histogram<'function'>;
  private readonly startDuration: Histogram<'kind'>;
  private readonly deadLetters: Counter<'function'>;
  private readonly concurrent: Gauge<'function'>;
  private readonly queueEvents: Gauge<'function' | 'status'>;
  private readonly instances: Gauge<'function' | 'runtime' | 'state'>;
  private readonly memoryBytes: Gauge;
  private readonly memoryBudgetBytes: Gauge;
  private readonly functions: Gauge;
  private readonly keepAlive: Gauge<'function'>;
  private readonly prewarmAt: Gauge<'function'>;
  private readonly target: Gauge<'function'>;
  /** Per function: the label sets its counters and histograms hold, and their cached children. */
  private readonly seen = new Map<string, Map<string, Counter.Internal>>();
  private readonly durationChild = new Map<string, Histogram.Internal<'function'>>();

  constructor(private readonly state: ObservedState) {
    const registers = [this.registry];
    this.invocations = new Counter({
      name: 'hearth_invocations_total',
      help: 'Finished invocations by function, start kind (cold|generic|warm, none when it never got an instance), outcome and trigger.',
      labelNames: ['function', 'start', 'outcome', 'trigger'],
      registers,
    });
    this.duration = new Histogram({
      name: 'hearth_invocation_duration_seconds',
      help: 'Run time of the handler (after init) per function; a throttled invocation is not observed.',
      labelNames: ['function'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.startDuration = new Histogram({
      name: 'hearth_start_duration_seconds',
      help: 'Time to get a ready instance, by start kind: 0 for warm, specialisation for generic, spawn and init for cold.',
      labelNames: ['kind'],
      buckets: START_BUCKETS,
      registers,
    });
    this.deadLetters = new Counter({
      name: 'hearth_dead_letters_total',
      help: 'Queued events that ended dead (attempts or maximum age used up, bad payload, function gone).',
      labelNames: ['function'],
      registers,
    });
    this.concurrent = new Gauge({ name: 'hearth_concurrent_executions', help: 'Invocations running now per function.', labelNames: ['function'], registers });
    this.queueEvents = new Gauge({
      name: 'hearth_queue_events',
      help: 'Events in the durable queue by function and status (succeeded ones until pruned).',
      labelNames: ['function', 'status'],
      registers,
    });
    this.instances = new Gauge({
      name: 'hearth_pool_instances',
      help: 'Live instances by function (empty for generic instances), runtime and state (generic|idle|busy).',
      labelNames: ['function', 'runtime', 'state'],
      registers,
    });
    this.memoryBytes = new Gauge({ name: 'hearth_pool_memory_bytes', help: 'Memory limits of all live instances together.', registers });
    this.memoryBudgetBytes = new Gauge({ name: 'hearth_pool_memory_budget_bytes', help: 'The memory budget for all instances.', registers });
    this.functions = new Gauge({ name: 'hearth_functions', help: 'Deployed functions.', registers });
    this.keepAlive = new Gauge({
      name: 'hearth_model_keep_alive_seconds',
      help: "The policy's keep-alive now for an instance of the function that becomes idle (+Inf: until memory is needed).",
      labelNames: ['function'],
      registers,
    });
    this.prewarmAt = new Gauge({
      name: 'hearth_model_prewarm_at_seconds',
      help: 'When the policy wants an instance of the function ready (Unix time); absent when it plans none.',
      labelNames: ['function'],
      registers,
    });
    this.target = new Gauge({
      name: 'hearth_model_target_instances',
      help: 'Instances the policy predicts the function needs at once in the near future.',
      labelNames: ['function'],
      registers,
    });
    collectDefaultMetrics({ register: this.registry });
    // prom-client also exports these sums of nodejs_active_{handles,requests,resources}{type} as
    // gauges named *_total, which Prometheus' naming rules (promtool) reserve for counters.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts one finished invocation (the dispatcher's invocation feed). */
  onInvocation(r: InvocationRecord): void {
    const start = r.start ?? 'none';
    const key = `${start}\0${r.outcome}\0${r.trigger}`;
    let children = this.seen.get(r.function);
    if (!children) this.seen.set(r.function, (children = new Map<string, Counter.Internal>()));
    let child = children.get(key);
    if (!child) children.set(key, (child = this.invocations.labels({ function: r.function, start, outcome: r.outcome, trigger: r.trigger })));
    child.inc();
    if (r.start === null) return;
    let d = this.durationChild.get(r.function);
    if (!d) this.durationChild.set(r.function, (d = this.duration.labels({ function: r.function })));
    d.observe(r.durationMs / 1000);
    this.startDuration.observe({ kind: r.start }, r.initMs / 1000);
  }

  onDeadLetter(d: DeadLetter): void {
    if (!this.seen.has(d.function)) this.seen.set(d.function, new Map());
    this.deadLetters.inc({ function: d.function });
  }

  /** The exposition text, with the gauges read from the state now. */
  async render(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  private async refresh(): Promise<void> {
    this.dropGone();
    const fns = this.state.functions();
    this.functions.set(fns.length);

    const busy = new Map<string, number>();
    const inst = new Map<string, { function: string; runtime: string; state: string; n: number }>();
    for (const i of this.state.instances()) {
      const fn = i.function ?? '';
      const k = `${fn}\0${i.runtime}\0${i.state}`;
      const e = inst.get(k);
      if (e) e.n++;
      else inst.set(k, { function: fn, runtime: i.runtime, state: i.state, n: 1 });
      if (i.state === 'busy' && i.function) busy.set(i.function, (busy.get(i.function) ?? 0) + 1);
    }
    this.instances.reset();
    for (const e of inst.values()) this.instances.set({ function: e.function, runtime: e.runtime, state: e.state }, e.n);

    const mem = this.state.memory();
    this.memoryBytes.set(mem.inUseMb * 1024 * 1024);
    this.memoryBudgetBytes.set(mem.budgetMb * 1024 * 1024);

    this.concurrent.reset();
    this.keepAlive.reset();
    this.prewarmAt.reset();
    this.target.reset();
    for (const f of fns) {
      const labels = { function: f.name };
      this.concurrent.set(labels, busy.get(f.name) ?? 0);
      const d = this.state.decision(f.name);
      this.keepAlive.set(labels, d.keepAliveMs === null ? Infinity : d.keepAliveMs / 1000);
      if (d.prewarmAt !== null) this.prewarmAt.set(labels, d.prewarmAt / 1000);
      this.target.set(labels, d.targetInstances);
    }

    const q = await this.state.queueStats();
    this.queueEvents.reset();
    for (const [fn, counts] of Object.entries(q.functions)) {
      if (!this.state.exists(fn)) continue;
      for (const status of EVENT_STATUSES) this.queueEvents.set({ function: fn, status }, counts[status]);
    }
  }

  /** Removes the counter and histogram series of functions that are not deployed any more. */
  private dropGone(): void {
    for (const [fn, children] of this.seen) {
      if (this.state.exists(fn)) continue;
      for (const key of children.keys()) {
        const [start, outcome, trigger] = key.split('\0');
        this.invocations.remove({ function: fn, start, outcome, trigger });
      }
      this.duration.remove({ function: fn });
      this.deadLetters.remove({ function: fn });
      this.durationChild.delete(fn);
      this.seen.delete(fn);
    }
  }
}
