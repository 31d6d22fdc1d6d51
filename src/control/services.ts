/**
 * The control API's services (`ApiServices`, routes.ts) built from the components the daemon
 * wired: each call goes one way down, to the function service (deploys), the catalogue (reads),
 * the dispatcher (invocations), the queue (events), the pool (its view) or the network manager.
 * Nothing here holds state except the start time.
 *
 * Errors: FUNCTION_NOT_FOUND / NETWORK_NOT_FOUND for unknown names, UNAVAILABLE when private
 * networks are disabled on this host, CONFLICT for a network that exists or is in use; the
 * components' own coded errors pass through.
 */
import type { Clock } from '../clock.js';
import type { Dispatcher, SyncInvokeOptions, SyncInvokeResult } from '../dispatch/dispatcher.js';
import { HearthError } from '../errors.js';
import type { Policy } from '../model/policy.js';
import type { NetworkManager } from '../net/index.js';
import type { Pool } from '../pool/pool.js';
import { RUNTIMES } from '../registry/function-spec.js';
import { toEventView, type EventQueue, type EventStatus } from '../queue/event-queue.js';
import type { CatalogueEntry, FunctionCatalogue } from '../registry/catalogue.js';
import type { FunctionService } from '../registry/function-service.js';
import type { FunctionRecord } from '../registry/function-spec.js';
import type { InvocationHistory } from '../observe/observability.js';
import type { AccessKeys } from './access-keys.js';
import type { ApiServices } from './routes.js';

export interface ServiceComponents {
  functions: FunctionService;
  catalogue: FunctionCatalogue;
  dispatcher: Dispatcher;
  queue: EventQueue;
  pool: Pool;
  policy: Policy;
  networks: NetworkManager;
  /** Lambda API access keys. */
  keys: AccessKeys;
  /** Why private networks are unavailable (see InstanceSpawner); unset when they work. */
  networksDisabled?: string;
  /** Deadlines and event expiry. */
  clock: Clock;
  /** The time the policy sees (model explanations). */
  policyClock: Clock;
  memoryBudgetMb: number;
  cgroupVersion: 1 | 2;
  /** Reply-polling counters, when polling is on. */
  replyPollStats?: () => object;
  /** Stored invocation records and output (src/observe). */
  history?: InvocationHistory;
  /**
   * With many hosts (--nats): the broker link and the cluster's hosts. `ready` false (no broker
   * reached yet, or the functions not loaded) makes `/v1/health` say `"status":"not ready"`.
   */
  cluster?: () => { ready: boolean } & Record<string, unknown>;
  /** With many hosts: sync invokes go through the cluster's router (src/cluster/router.ts) instead of the dispatcher. */
  invokeSync?: (name: string, event: unknown, opts?: SyncInvokeOptions) => Promise<SyncInvokeResult>;
}

export function buildServices(c: ServiceComponents): ApiServices {
  const startedAt = Date.now();
  const target = (name: string): CatalogueEntry => {
    const t = c.catalogue.lookup(name);
    if (!t) throw new HearthError('FUNCTION_NOT_FOUND', `no function named ${JSON.stringify(name)}`);
    return t;
  };
  const eventOpts = (r: FunctionRecord): { maxAttempts: number; expiresAt: number } => ({
    maxAttempts: r.retries + 1,
    expiresAt: c.clock.now() + r.maxEventAgeS * 1000,
  });
  const history = (): InvocationHistory => {
    if (!c.history) throw new HearthError('UNAVAILABLE', 'this daemon keeps no invocation records');
    return c.history;
  };
  const networksUp = (): void => {
    if (c.networksDisabled !== undefined) throw new HearthError('UNAVAILABLE', `private networks are unavailable: ${c.networksDisabled}`);
  };

  return {
    health: () => ({
      status: !c.cluster || c.cluster().ready ? 'ok' : 'not ready',
      ...(c.cluster ? { cluster: c.cluster() } : {}),
      uptimeS: Math.round((Date.now() - startedAt) / 1000),
      functions: c.catalogue.size,
      instances: c.pool.list().length,
      cgroups: c.cgroupVersion,
    }),
    putFunction: async (name, body) => {
      const out = await c.functions.deploy(name, body);
      return { record: out.record, created: out.created };
    },
    reconfigureFunction: async (name, body) => (await c.functions.reconfigure(name, body)).record,
    listFunctions: () => c.catalogue.records(),
    getFunction: (name) => target(name).record,
    deleteFunction: async (name) => {
      await c.functions.delete(name);
    },
    invoke: (name, event, opts) => (c.invokeSync ? c.invokeSync(name, event, opts) : c.dispatcher.invokeSync(name, event, opts)),
    pool: () => ({
      instances: c.pool.list(),
      memoryInUseMb: c.pool.memoryInUseMb(),
      memoryBudgetMb: c.memoryBudgetMb,
      prewarms: c.pool.prewarmSchedule(),
      replyPoll: c.replyPollStats ? c.replyPollStats() : null,
    }),
    model: (name) => {
      target(name);
      const now = c.policyClock.now();
      const e = c.policy.explain(name, now);
      return {
        ...e,
        now: new Date(now).toISOString(),
        decisions: { ...e.decisions, prewarmAt: e.decisions.prewarmAt === null ? null : new Date(e.decisions.prewarmAt).toISOString() },
        pool: { idle: c.pool.idleCount(name), prewarmArmed: c.pool.prewarmSchedule()[name] ?? null },
      };
    },
    submitEvent: async (name, payload, key) => {
      const t = target(name);
      const r = await c.queue.submit(name, payload, { ...(key ? { idempotencyKey: key } : {}), ...eventOpts(t.record) });
      if (!r.duplicate) c.dispatcher.noteAccepted([r.id]);
      return { id: r.id };
    },
    submitBatch: async (name, payloads) => {
      const t = target(name);
      const r = await c.queue.submitBatch(name, payloads, eventOpts(t.record));
      if (!r.duplicate) c.dispatcher.noteAccepted(r.ids);
      return { ids: r.ids };
    },
    getEvent: async (id) => toEventView(await c.queue.get(id)),
    listEvents: async (f) =>
      (
        await c.queue.list({
          ...(f.function ? { function: f.function } : {}),
          ...(f.status ? { status: f.status as EventStatus } : {}),
          limit: f.limit,
        })
      ).map(toEventView),
    redriveEvent: async (id) => {
      await c.queue.redrive(id);
      return toEventView(await c.queue.get(id));
    },
    queueStats: async () => ({ ...(await c.queue.stats()), queueToStartMs: c.dispatcher.queueToStart.summary() }),
    invocations: async (name, last) => {
      target(name);
      return history().invocations(name, last);
    },
    logs: async (name, since) => {
      target(name);
      return history().logs(name, 'ageMs' in since ? c.clock.now() - since.ageMs : since.atMs);
    },
    putNetwork: async (name, body) => {
      networksUp();
      if (c.networks.get(name)) throw new HearthError('CONFLICT', `network '${name}' exists; delete it first to change it`);
      return { record: await c.networks.create(name, body as never), created: true };
    },
    listNetworks: () => (c.networksDisabled !== undefined ? [] : c.networks.list()),
    deleteNetwork: async (name) => {
      if (c.networksDisabled !== undefined || !c.networks.get(name)) throw new HearthError('NETWORK_NOT_FOUND', `no network named ${JSON.stringify(name)}`);
      const users = c.catalogue.usersOf(name);
      if (users.length) throw new HearthError('CONFLICT', `network '${name}' is used by ${users.join(', ')}; delete or redeploy them first`);
      // Generic instances prepared on it hold leases; end them first.
      for (const rt of RUNTIMES) c.pool.setGenericTarget(rt, 0, name);
      await c.pool.drainNetwork(name);
      await c.networks.delete(name);
    },
    createKey: (name) => c.keys.create(name),
    listKeys: () => c.keys.list(),
    deleteKey: (id) => c.keys.remove(id),
  };
}
