/**
 * Routing of synchronous invokes across hosts: the layer between control and dispatch. An invoke
 * runs, in this order of preference:
 *   1. here, when this host has an idle warm instance of the function;
 *   2. on another live host that has one (the least busy), by NATS request/reply to that host;
 *   3. here, when this host has a free generic instance of the function's runtime;
 *   4. on the least busy other host that has one;
 *   5. on another host with a warm instance that was busy at its last heartbeat (heartbeats are a
 *      second apart: a host running the function now and then often shows none idle; sending it
 *      there beats a cold start here, and costs at worst the same cold start there);
 *   6. here.
 * Functions on a private network always run here (each host has its own gateway). A remote host
 * runs the invoke through its own dispatcher, never routing it again. When the chosen host has no
 * listener ("no responders": it just went away) the invoke runs here; any other broker failure is
 * UNAVAILABLE, because the remote host may have started it.
 *
 * Arrivals: each host publishes the functions its dispatcher ran (core NATS, fire and forget), and
 * feeds the arrivals other hosts ran to its own policy (`onRemoteArrival`), so that each host's pool
 * is sized for the cluster's arrivals, not its share of them. They go out gathered, one message per
 * `arrivalsFlushMs` (20 ms) with counts per function, not one per invocation: under load that is
 * one wake-up of every host per 20 ms instead of one per invocation (the policy's clock is in
 * seconds, so 20 ms late changes nothing it decides).
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { SyncInvokeOptions, SyncInvokeResult } from '../dispatch/dispatcher.js';
import type { InvocationRecord } from '../dispatch/invocations.js';
import { HearthError, isHearthError, type ErrorCode } from '../errors.js';
import type { ClusterConnection } from './connection.js';
import type { HostDirectory, HostInfo, HostLoad } from './hosts.js';
import type { ClusterLogger } from './jetstream-registry.js';

export interface RouterOptions {
  connection: Pick<ClusterConnection, 'connection' | 'onReady' | 'hostId' | 'connected'>;
  hosts: Pick<HostDirectory, 'hosts'>;
  /** Runs an invoke on this host (the dispatcher). */
  local: (name: string, event: unknown, opts?: SyncInvokeOptions) => Promise<SyncInvokeResult>;
  /** This host's load right now. */
  load: () => HostLoad;
  /** What routing needs of a function; undefined for an unknown one (run here: it says not found). */
  describe: (name: string) => { runtime: string; timeoutMs: number; network?: string } | undefined;
  /** An arrival another host ran (feed it to the policy). */
  onRemoteArrival: (fn: string) => void;
  /** Subscribes to this host's finished invocations (the dispatcher's feed). */
  subscribeInvocations: (listener: (r: InvocationRecord) => void) => () => void;
  log: ClusterLogger;
  /** Subject prefix (default `hearth`). */
  prefix?: string;
  /** How long arrivals are gathered before they are published (default 20 ms). */
  arrivalsFlushMs?: number;
}

interface Reply {
  ok?: SyncInvokeResult;
  error?: { code: ErrorCode; message: string };
}

export interface RouteStats {
  local: number;
  remote: number;
  fallbacks: number;
  served: number;
}

export class InvokeRouter {
  readonly stats: RouteStats = { local: 0, remote: 0, fallbacks: 0, served: 0 };
  private readonly subs: Subscription[] = [];
  private unsubscribeFeed: (() => void) | undefined;
  private readonly prefix: string;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  /** Arrivals not yet published: function -> count. */
  private readonly arrivals = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RouterOptions) {
    this.prefix = opts.prefix ?? 'hearth';
  }

  start(): void {
    this.opts.connection.onReady((nc) => this.attach(nc));
  }

  async stop(): Promise<void> {
    this.unsubscribeFeed?.();
    this.unsubscribeFeed = undefined;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.arrivals.clear();
    for (const s of this.subs.splice(0)) await s.drain().catch(() => undefined);
  }

  /** Where an invoke of `name` should run: undefined for here, else the host. */
  choose(name: string): HostInfo | undefined {
    const fn = this.opts.describe(name);
    if (!fn || fn.network || !this.opts.connection.connected) return undefined;
    const here = this.opts.load();
    if ((here.idleWarm[name] ?? 0) > 0) return undefined;
    const others = this.opts.hosts.hosts().filter((h) => h.hostId !== this.opts.connection.hostId);
    const leastBusy = (hs: HostInfo[]): HostInfo | undefined => hs.sort((a, b) => a.load.busy - b.load.busy)[0];
    const warm = leastBusy(others.filter((h) => (h.load.idleWarm[name] ?? 0) > 0));
    if (warm) return warm;
    if ((here.freeGeneric[fn.runtime] ?? 0) > 0) return undefined;
    return (
      leastBusy(others.filter((h) => (h.load.freeGeneric[fn.runtime] ?? 0) > 0)) ??
      leastBusy(others.filter((h) => (h.load.warm?.[name] ?? 0) > 0 && (here.warm?.[name] ?? 0) === 0))
    );
  }

  /** Runs a sync invoke where it is best run (see the module comment). */
  async invokeSync(name: string, event: unknown, opts: SyncInvokeOptions = {}): Promise<SyncInvokeResult> {
    const target = this.choose(name);
    const nc = this.opts.connection.connection;
    if (!target || !nc) {
      this.stats.local++;
      return this.opts.local(name, event, opts);
    }
    return this.remote(nc, target.hostId, name, event, opts);
  }

  /** Runs an invoke on `hostId` (tests and benchmarks call it directly). */
  async remote(nc: NatsConnection, hostId: string, name: string, event: unknown, opts: SyncInvokeOptions = {}): Promise<SyncInvokeResult> {
    const timeoutMs = (this.opts.describe(name)?.timeoutMs ?? 3000) + 5000;
    let msg;
    try {
      msg = await nc.request(`${this.prefix}.invoke.${hostId}`, this.enc.encode(JSON.stringify({ name, event, opts })), { timeout: timeoutMs });
    } catch (err) {
      if (/no responders/i.test((err as Error).message)) {
        this.stats.fallbacks++;
        return this.opts.local(name, event, opts);
      }
      throw new HearthError('UNAVAILABLE', `invoke of ${name} on host ${hostId}: ${(err as Error).message}`, { cause: err });
    }
    this.stats.remote++;
    const reply = JSON.parse(this.dec.decode(msg.data)) as Reply;
    if (reply.error) throw new HearthError(reply.error.code, reply.error.message);
    return reply.ok!;
  }

  private attach(nc: NatsConnection): void {
    const self = this.opts.connection.hostId;
    const invokes = nc.subscribe(`${this.prefix}.invoke.${self}`, {
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          let reply: Reply;
          try {
            const req = JSON.parse(this.dec.decode(msg.data)) as { name: string; event: unknown; opts?: SyncInvokeOptions };
            this.stats.served++;
            reply = { ok: await this.opts.local(req.name, req.event, req.opts) };
          } catch (e) {
            reply = { error: isHearthError(e) ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: (e as Error).message } };
          }
          msg.respond(this.enc.encode(JSON.stringify(reply)));
        })();
      },
    });
    const arrivals = nc.subscribe(`${this.prefix}.arrivals`, {
      callback: (err, msg) => {
        if (err) return;
        try {
          const a = JSON.parse(this.dec.decode(msg.data)) as { host: string; fn?: string; fns?: Record<string, number> };
          if (a.host === self) return;
          if (typeof a.fn === 'string') this.opts.onRemoteArrival(a.fn); // one arrival (hosts of an earlier version)
          for (const [fn, n] of Object.entries(a.fns ?? {})) for (let i = 0; i < Math.min(n, 10_000); i++) this.opts.onRemoteArrival(fn);
        } catch {
          /* not ours to read */
        }
      },
    });
    this.subs.push(invokes, arrivals);
    const flush = (): void => {
      this.flushTimer = undefined;
      if (this.arrivals.size === 0 || !this.opts.connection.connected) return this.arrivals.clear();
      nc.publish(`${this.prefix}.arrivals`, this.enc.encode(JSON.stringify({ host: self, fns: Object.fromEntries(this.arrivals) })));
      this.arrivals.clear();
    };
    this.unsubscribeFeed = this.opts.subscribeInvocations((r) => {
      this.arrivals.set(r.function, (this.arrivals.get(r.function) ?? 0) + 1);
      this.flushTimer ??= setTimeout(flush, this.opts.arrivalsFlushMs ?? 20);
    });
  }
}
