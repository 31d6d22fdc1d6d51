/**
 * Prometheus metrics, written with prom-client on a registry of our own (never the global one).
 * Counters and histograms follow the dispatcher's feeds (one InvocationRecord per finished
 * invocation, one DeadLetter per event that ended dead); gauges are read from the ObservedState at
 * scrape time. Label values are bounded: `function` is a deployed function (series of a function
 * that is gone are removed at the next scrape), every other label is from a fixed set.
 *
 * The families with a `function` label keep one prom-client metric per function and cache its
 * rendered lines until they change (family-text.ts): a scrape renders only the functions that ran,
 * or whose gauges moved, since the one before.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { OUTCOMES, TRIGGERS, type DeadLetter, type InvocationRecord } from '../dispatch/invocations.js';
import { EVENT_STATUSES } from '../queue/event-queue.js';
import { FunctionFamily } from './family-text.js';
import type { ObservedState } from './state.js';

/**
 * Seconds: 100 µs (a warm call's run) to 15 min (the longest timeout), fine below 10 ms where warm
 * calls fall, coarse above. Every function has one series per bucket, so their number is what a
 * scrape of many functions costs (BENCHMARKS.md).
 */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5, 30, 900];
/** Seconds: a start is warm (0), a generic specialisation (sub-ms to ms) or a cold start (tens of ms to seconds). */
export const START_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const NEWLINE = Buffer.from('\n');

type InvocationLabels = 'function' | 'start' | 'outcome' | 'trigger';

/** The `start` label's values; a cell of a function's invocation counts is start × outcome × trigger. */
const STARTS = ['cold', 'generic', 'warm', 'none'] as const;
const startIndex: Record<string, number> = { cold: 0, generic: 1, warm: 2, none: 3 };
const outcomeIndex: Record<string, number> = Object.fromEntries(OUTCOMES.map((o, i) => [o, i]));
const triggerIndex: Record<string, number> = Object.fromEntries(TRIGGERS.map((t, i) => [t, i]));
const CELLS = STARTS.length * OUTCOMES.length * TRIGGERS.length;

/**
 * One function's counting state. Invocations are counted into plain numbers (`pending`, by cell)
 * and handed to its prom-client counter when a scrape comes (`flush`), so that an invocation does
 * not make prom-client hash a label object; the histogram is observed at once, through a label
 * object made once.
 */
interface Counted {
  fn: string;
  /** Invocations since the last flush, by cell. */
  pending: Float64Array;
  /** Cells with pending invocations, in the order they got their first. */
  cells: number[];
  /** In the list of functions to flush. */
  dirty: boolean;
  labels: { function: string };
  duration: Histogram<'function'> | undefined;
}

export class HearthMetrics {
  /** The families that are not per function (start kinds, memory, Node's process metrics). */
  readonly registry = new Registry();
  private readonly startDuration: Histogram<'kind'>;
  private readonly memoryBytes: Gauge;
  private readonly memoryBudgetBytes: Gauge;
  private readonly functions: Gauge;
  // Per function: counted from the feeds.
  private readonly invocations: FunctionFamily<Counter<InvocationLabels>>;
  private readonly duration: FunctionFamily<Histogram<'function'>>;
  private readonly deadLetters: FunctionFamily<Counter<'function'>>;
  // Per function: read from the state at scrape time.
  private readonly concurrent: FunctionFamily<Gauge<'function'>>;
  private readonly queueEvents: FunctionFamily<Gauge<'function' | 'status'>>;
  private readonly instances: FunctionFamily<Gauge<'function' | 'runtime' | 'state'>>;
  private readonly keepAlive: FunctionFamily<Gauge<'function'>>;
  private readonly prewarmAt: FunctionFamily<Gauge<'function'>>;
  private readonly target: FunctionFamily<Gauge<'function'>>;
  private readonly families: Array<FunctionFamily<Counter<string> | Gauge<string> | Histogram<string>>>;
  private readonly counted = new Map<string, Counted>();
  /** Functions counted since the last flush. */
  private readonly dirty: Counted[] = [];
  private readonly kindLabels = { cold: { kind: 'cold' }, generic: { kind: 'generic' }, warm: { kind: 'warm' } } as const;

  constructor(private readonly state: ObservedState) {
    const registers = [this.registry];
    const perFunction = <M extends Counter<string> | Gauge<string> | Histogram<string>>(name: string, make: (name: string) => M) =>
      new FunctionFamily(name, () => make(name));
    this.invocations = perFunction(
      'hearth_invocations_total',
      (name) =>
        new Counter({
          name,
          help: 'Finished invocations by function, start kind (cold|generic|warm, none when it never got an instance), outcome and trigger.',
          labelNames: ['function', 'start', 'outcome', 'trigger'],
          registers: [],
        }),
    );
    this.duration = perFunction(
      'hearth_invocation_duration_seconds',
      (name) =>
        new Histogram({
          name,
          help: 'Run time of the handler (after init) per function; a throttled invocation is not observed.',
          labelNames: ['function'],
          buckets: DURATION_BUCKETS,
          registers: [],
        }),
    );
    this.startDuration = new Histogram({
      name: 'hearth_start_duration_seconds',
      help: 'Time to get a ready instance, by start kind: 0 for warm, specialisation for generic, spawn and init for cold.',
      labelNames: ['kind'],
      buckets: START_BUCKETS,
      registers,
    });
    this.deadLetters = perFunction(
      'hearth_dead_letters_total',
      (name) =>
        new Counter({
          name,
          help: 'Queued events that ended dead (attempts or maximum age used up, bad payload, function gone).',
          labelNames: ['function'],
          registers: [],
        }),
    );
    this.concurrent = perFunction(
      'hearth_concurrent_executions',
      (name) => new Gauge({ name, help: 'Invocations running now per function.', labelNames: ['function'], registers: [] }),
    );
    this.queueEvents = perFunction(
      'hearth_queue_events',
      (name) =>
        new Gauge({
          name,
          help: 'Events in the durable queue by function and status (succeeded ones until pruned).',
          labelNames: ['function', 'status'],
          registers: [],
        }),
    );
    this.instances = perFunction(
      'hearth_pool_instances',
      (name) =>
        new Gauge({
          name,
          help: 'Live instances by function (empty for generic instances), runtime and state (generic|idle|busy).',
          labelNames: ['function', 'runtime', 'state'],
          registers: [],
        }),
    );
    this.memoryBytes = new Gauge({ name: 'hearth_pool_memory_bytes', help: 'Memory limits of all live instances together.', registers });
    this.memoryBudgetBytes = new Gauge({ name: 'hearth_pool_memory_budget_bytes', help: 'The memory budget for all instances.', registers });
    this.functions = new Gauge({ name: 'hearth_functions', help: 'Deployed functions.', registers });
    this.keepAlive = perFunction(
      'hearth_model_keep_alive_seconds',
      (name) =>
        new Gauge({
          name,
          help: "The policy's keep-alive now for an instance of the function that becomes idle (+Inf: until memory is needed).",
          labelNames: ['function'],
          registers: [],
        }),
    );
    this.prewarmAt = perFunction(
      'hearth_model_prewarm_at_seconds',
      (name) =>
        new Gauge({
          name,
          help: 'When the policy wants an instance of the function ready (Unix time); absent when it plans none.',
          labelNames: ['function'],
          registers: [],
        }),
    );
    this.target = perFunction(
      'hearth_model_target_instances',
      (name) =>
        new Gauge({
          name,
          help: 'Instances the policy predicts the function needs at once in the near future.',
          labelNames: ['function'],
          registers: [],
        }),
    );
    this.families = [
      this.invocations,
      this.duration,
      this.deadLetters,
      this.concurrent,
      this.queueEvents,
      this.instances,
      this.keepAlive,
      this.prewarmAt,
      this.target,
    ];
    collectDefaultMetrics({ register: this.registry });
    // prom-client also exports these sums of nodejs_active_{handles,requests,resources}{type} as
    // gauges named *_total, which Prometheus' naming rules (promtool) reserve for counters.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Series (function, family) whose text the last render had to produce anew. */
  get lastRendered(): number {
    return this.families.reduce((n, f) => n + f.rendered, 0);
  }

  /** Counts one finished invocation (the dispatcher's invocation feed). */
  onInvocation(r: InvocationRecord): void {
    const fn = r.function;
    let c = this.counted.get(fn);
    if (!c) {
      c = { fn, pending: new Float64Array(CELLS), cells: [], dirty: false, labels: { function: fn }, duration: undefined };
      this.counted.set(fn, c);
    }
    const cell = (startIndex[r.start ?? 'none'] * OUTCOMES.length + outcomeIndex[r.outcome]) * TRIGGERS.length + triggerIndex[r.trigger];
    if (c.pending[cell]++ === 0) c.cells.push(cell);
    if (!c.dirty) {
      c.dirty = true;
      this.dirty.push(c);
    }
    if (r.start === null) return;
    c.duration ??= this.duration.metric(fn);
    c.duration.observe(c.labels, r.durationMs / 1000);
    this.duration.changed(fn);
    this.startDuration.observe(this.kindLabels[r.start], r.initMs / 1000);
  }

  /** Hands the invocations counted since the last scrape to prom-client (increments by cell). */
  private flush(): void {
    for (const c of this.dirty.splice(0)) {
      c.dirty = false;
      if (this.counted.get(c.fn) !== c) continue; // dropped since (its function is gone)
      if (!this.state.exists(c.fn)) {
        this.counted.delete(c.fn); // a late record of a deleted function
        continue;
      }
      // One prom-client counter per series (cell), so that a scrape renders only those that moved.
      for (const cell of c.cells) {
        const trigger = TRIGGERS[cell % TRIGGERS.length];
        const outcome = OUTCOMES[Math.floor(cell / TRIGGERS.length) % OUTCOMES.length];
        const start = STARTS[Math.floor(cell / (TRIGGERS.length * OUTCOMES.length))];
        const sub = String(cell);
        this.invocations.metric(c.fn, sub).inc({ function: c.fn, start, outcome, trigger }, c.pending[cell]);
        this.invocations.changed(c.fn, sub);
        c.pending[cell] = 0;
      }
      c.cells.length = 0;
    }
  }

  onDeadLetter(d: DeadLetter): void {
    this.deadLetters.metric(d.function).inc({ function: d.function });
    this.deadLetters.changed(d.function);
  }

  /** The exposition text, with the gauges read from the state now. */
  async render(): Promise<string> {
    return Buffer.concat(await this.renderChunks()).toString('utf8');
  }

  /**
   * The exposition text as the listener sends it (UTF-8), in chunks: the families, a blank line
   * between two. A family that did not change is the same buffer as at the last scrape, so a
   * scrape allocates little (a copy of megabytes at every scrape makes V8 collect its whole heap).
   */
  async renderChunks(): Promise<Buffer[]> {
    await this.refresh();
    const parts: Buffer[] = [Buffer.from(await this.registry.metrics())];
    for (const f of this.families) parts.push(NEWLINE, await f.bytes());
    return parts;
  }

  private async refresh(): Promise<void> {
    this.dropGone();
    this.flush();
    const fns = this.state.functions();
    this.functions.set(fns.length);

    const busy = new Map<string, number>();
    /** function -> "runtime\0state" -> count */
    const inst = new Map<string, Map<string, number>>();
    for (const i of this.state.instances()) {
      const fn = i.function ?? '';
      let m = inst.get(fn);
      if (!m) inst.set(fn, (m = new Map<string, number>()));
      const k = `${i.runtime}\0${i.state}`;
      m.set(k, (m.get(k) ?? 0) + 1);
      if (i.state === 'busy' && i.function) busy.set(i.function, (busy.get(i.function) ?? 0) + 1);
    }
    for (const fn of [...this.instances.functions()]) if (!inst.has(fn)) this.instances.delete(fn);
    for (const [fn, m] of inst) {
      if (fn !== '' && !this.state.exists(fn)) continue;
      const entries = [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this.instances.update(fn, entries.map(([k, n]) => `${k}\0${n}`).join('\n'), (g) => {
        for (const [k, n] of entries) {
          const [runtime, state] = k.split('\0');
          g.set({ function: fn, runtime, state }, n);
        }
      });
    }

    const mem = this.state.memory();
    this.memoryBytes.set(mem.inUseMb * 1024 * 1024);
    this.memoryBudgetBytes.set(mem.budgetMb * 1024 * 1024);

    for (const f of fns) {
      const fn = f.name;
      const labels = { function: fn };
      const n = busy.get(fn) ?? 0;
      this.concurrent.update(fn, String(n), (g) => g.set(labels, n));
      const d = this.state.decision(fn);
      const keepAlive = d.keepAliveMs === null ? Infinity : d.keepAliveMs / 1000;
      this.keepAlive.update(fn, String(keepAlive), (g) => g.set(labels, keepAlive));
      const prewarm = d.prewarmAt;
      this.prewarmAt.update(fn, String(prewarm), (g) => {
        if (prewarm !== null) g.set(labels, prewarm / 1000);
      });
      this.target.update(fn, String(d.targetInstances), (g) => g.set(labels, d.targetInstances));
    }

    const q = await this.state.queueStats();
    for (const fn of [...this.queueEvents.functions()]) if (!(fn in q.functions)) this.queueEvents.delete(fn);
    for (const [fn, counts] of Object.entries(q.functions)) {
      if (!this.state.exists(fn)) {
        this.queueEvents.delete(fn);
        continue;
      }
      this.queueEvents.update(fn, EVENT_STATUSES.map((s) => counts[s]).join(' '), (g) => {
        for (const status of EVENT_STATUSES) g.set({ function: fn, status }, counts[status]);
      });
    }
  }

  /** Removes every series of functions that are not deployed any more. */
  private dropGone(): void {
    for (const f of this.families)
      for (const fn of [...f.functions()])
        if (fn !== '' && !this.state.exists(fn)) {
          f.delete(fn);
          this.counted.delete(fn);
        }
  }
}
