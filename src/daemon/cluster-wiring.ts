/**
 * With `--nats`: the parts of a cluster beyond the stores, wired to this host's pool, dispatcher
 * and policy: heartbeats (src/cluster/hosts.ts), the scheduler lease (src/cluster/lease.ts) and the
 * router of sync invokes (src/cluster/router.ts). Wiring only.
 */
import type { Clock } from '../clock.js';
import type { ClusterConnection } from '../cluster/connection.js';
import { HostDirectory, loadOf } from '../cluster/hosts.js';
import { ClusterLease } from '../cluster/lease.js';
import { InvokeRouter } from '../cluster/router.js';
import { HostTakeover } from '../cluster/takeover.js';
import type { RecoverResult } from '../queue/event-queue.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import type { Logger } from '../log.js';
import type { Policy } from '../model/policy.js';
import type { Pool } from '../pool/pool.js';
import type { FunctionCatalogue } from '../registry/catalogue.js';

type StopsWith = (name: string, stop: () => Promise<void> | void) => void;

/** The scheduler lease: started now, so the scheduler can be built with `fires: () => lease.held()`. */
export function scheduleLease(cluster: ClusterConnection, log: Logger, stopsWith: StopsWith, replicas?: number): ClusterLease {
  const lease = new ClusterLease({ connection: cluster, name: 'scheduler', log: log.child({ component: 'lease' }), ...(replicas ? { replicas } : {}) });
  stopsWith('scheduler lease', () => lease.stop());
  lease.start();
  return lease;
}

export interface ClusterParts {
  router: InvokeRouter;
  hosts: HostDirectory;
  /** What `/v1/health` shows. */
  status(): { ready: boolean } & Record<string, unknown>;
}

export function joinCluster(o: {
  cluster: ClusterConnection;
  lease: ClusterLease;
  loaded: () => boolean;
  /** Whether the shared event queue is attached to the brokers. */
  queueReady: () => boolean;
  /** The shared queue's take-back of dead hosts' events (ClusterQueue.recoverHeldBy). */
  recoverHeldBy: (gone: (holder: string) => boolean) => Promise<RecoverResult>;
  pool: Pool;
  dispatcher: Dispatcher;
  catalogue: FunctionCatalogue;
  policy: Policy;
  policyClock: Clock;
  log: Logger;
  stopsWith: StopsWith;
  replicas?: number;
}): ClusterParts {
  const load = () => loadOf(o.pool.list(), o.pool.memoryInUseMb());
  const hosts = new HostDirectory({ connection: o.cluster, load, log: o.log.child({ component: 'hosts' }), ...(o.replicas ? { replicas: o.replicas } : {}) });
  o.stopsWith('hosts', () => hosts.stop());
  hosts.start();
  const takeover = new HostTakeover({
    hostId: o.cluster.hostId,
    lastSeen: (h) => hosts.lastSeen(h),
    recoverHeldBy: o.recoverHeldBy,
    log: o.log.child({ component: 'takeover' }),
  });
  o.stopsWith('takeover', () => takeover.stop());
  takeover.start();
  const router = new InvokeRouter({
    connection: o.cluster,
    hosts,
    load,
    local: (name, event, opts) => o.dispatcher.invokeSync(name, event, opts),
    describe: (name) => {
      const e = o.catalogue.lookup(name);
      return e ? { runtime: e.fn.runtime, timeoutMs: e.fn.timeoutMs, ...(e.fn.network ? { network: e.fn.network } : {}) } : undefined;
    },
    onRemoteArrival: (fn) => {
      if (!o.catalogue.lookup(fn)) return;
      let idle = 0;
      let busy = 0;
      for (const i of o.pool.list()) {
        if (i.function !== fn) continue;
        if (i.state === 'idle') idle++;
        else if (i.state === 'busy') busy++;
      }
      o.policy.onArrival(fn, o.policyClock.now(), { idle, busy });
    },
    subscribeInvocations: (l) => o.dispatcher.invocations.subscribe(l),
    log: o.log.child({ component: 'router' }),
  });
  o.stopsWith('router', () => router.stop());
  router.start();
  return {
    router,
    hosts,
    status: () => {
      const now = Date.now();
      return {
        ready: o.cluster.connected && o.loaded() && o.queueReady(),
        broker: o.cluster.status(),
        functionsLoaded: o.loaded(),
        queueAttached: o.queueReady(),
        hosts: hosts.hosts(now).map((h) => ({ hostId: h.hostId, lastSeenMsAgo: now - h.seenAt, ...h.load })),
        schedulerLease: o.lease.held(now),
        routing: { ...router.stats },
        eventsTakenOver: takeover.taken,
      };
    },
  };
}
