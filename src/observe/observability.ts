/**
 * Observability as one component: it subscribes to the dispatcher's feeds and turns each record
 * into what the operator reads (instrument once, export many):
 *
 *   invocation log  always: per-function records and output on disk (`hearth logs`, `hearth invocations`)
 *   metrics         with a listener: prom-client counters and histograms, gauges read at scrape time
 *   recent window   with a listener: the dashboard's last minutes
 *
 * It follows the function registry: a deleted function's records and series go with it.
 * Life: construct -> start() -> stop() (works after a failed start).
 */
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { DeadLetter, Feed, InvocationRecord } from '../dispatch/invocations.js';
import type { Logger } from '../log.js';
import type { FunctionRegistry } from '../registry/registry.js';
import { dashboardData } from './dashboard-data.js';
import { InvocationLog, type LogLine, type StoredInvocation } from './invocation-log.js';
import { MetricsListener } from './listener.js';
import { HearthMetrics } from './metrics.js';
import { RecentInvocations } from './recent.js';
import type { ObservedState } from './state.js';

/** What the control API reads: a function's recent invocations and its output. */
export interface InvocationHistory {
  /** The last `n` invocations, newest first. */
  invocations(fn: string, n: number): Promise<StoredInvocation[]>;
  /** Output lines of invocations that ended at or after `sinceMs`, oldest first. */
  logs(fn: string, sinceMs: number): Promise<LogLine[]>;
}

export interface ObservabilityOptions {
  stateDir: string;
  state: ObservedState;
  feeds: { invocations: Feed<InvocationRecord>; deadLetters: Feed<DeadLetter> };
  registry: Pick<FunctionRegistry, 'onChange'>;
  /** Serve /metrics and the dashboard here; unset: no listener, no metrics. */
  listen?: { host: string; port: number };
  clock: Clock;
  log: Logger;
}

export class Observability implements InvocationHistory {
  readonly invocationLog: InvocationLog;
  readonly metrics: HearthMetrics | undefined;
  private readonly recent: RecentInvocations | undefined;
  private readonly listener: MetricsListener | undefined;
  private readonly offs: Array<() => void> = [];

  constructor(private readonly opts: ObservabilityOptions) {
    this.invocationLog = new InvocationLog({
      dir: join(opts.stateDir, 'invocations'),
      exists: (fn) => opts.state.exists(fn),
      onError: (err, fn) => opts.log.error({ err, fn }, 'cannot write invocation records'),
    });
    if (opts.listen) {
      const metrics = new HearthMetrics(opts.state);
      const recent = new RecentInvocations();
      this.metrics = metrics;
      this.recent = recent;
      // Scrapes that arrive while one is being rendered share its text.
      let rendering: Promise<Buffer[]> | undefined;
      const render = (): Promise<Buffer[]> => (rendering ??= metrics.renderChunks().finally(() => (rendering = undefined)));
      this.listener = new MetricsListener({
        ...opts.listen,
        log: opts.log,
        routes: {
          metrics: async () => ({ contentType: metrics.contentType, body: await render() }),
          dashboard: () => dashboardData(opts.state, recent, opts.clock.now()),
        },
      });
    }
  }

  async start(): Promise<void> {
    await this.invocationLog.start();
    const { invocations, deadLetters } = this.opts.feeds;
    this.offs.push(
      invocations.subscribe((r) => {
        this.invocationLog.record(r);
        this.metrics?.onInvocation(r);
        this.recent?.add(r);
      }),
    );
    if (this.metrics) {
      const m = this.metrics;
      this.offs.push(deadLetters.subscribe((d) => m.onDeadLetter(d)));
    }
    this.offs.push(
      this.opts.registry.onChange((name, record) => {
        if (record) return;
        this.recent?.forget(name);
        this.invocationLog.remove(name).catch((err: unknown) => this.opts.log.error({ err, fn: name }, 'cannot remove invocation records'));
      }),
    );
    await this.listener?.start();
  }

  /** Where the listener listens, when there is one. */
  listenAddress(): { host: string; port: number } | undefined {
    return this.listener?.address();
  }

  invocations(fn: string, n: number): Promise<StoredInvocation[]> {
    return this.invocationLog.last(fn, n);
  }

  logs(fn: string, sinceMs: number): Promise<LogLine[]> {
    return this.invocationLog.lines(fn, sinceMs);
  }

  async stop(): Promise<void> {
    await this.listener?.stop();
    for (const off of this.offs.splice(0)) off();
    await this.invocationLog.stop();
  }
}
