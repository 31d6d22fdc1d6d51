/**
 * Which stores the daemon runs on, chosen from config: wiring only, no logic of its own.
 *
 * - One host (no `nats`): the event queue and schedule state in SQLite, functions as files, code
 *   bundles in a directory, all under the state directory (the embedded default).
 * - A cluster (`nats`): the broker connection first, then functions in a JetStream KV bucket and
 *   code in an Object Store bucket with a local cache under the state directory; a function another
 *   host deploys is announced here only once its code is in the local cache.
 */
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { replicasFault } from '../cluster/buckets.js';
import { ClusterQueue } from '../cluster/cluster-queue.js';
import { ClusterConnection } from '../cluster/connection.js';
import { JetStreamNetworkDefinitions } from '../cluster/jetstream-networks.js';
import { JetStreamRegistry } from '../cluster/jetstream-registry.js';
import { ObjectCodeStore } from '../cluster/object-code-store.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { SharedNetworkDefinitions } from '../net/definitions.js';
import type { EventQueue, ScheduleStateStore } from '../queue/event-queue.js';
import { SqliteQueue } from '../queue/sqlite-queue.js';
import type { CodeStore } from '../registry/code-store.js';
import { DirCodeStore, type DirCodeStoreOptions } from '../registry/dir-code-store.js';
import { FileRegistry } from '../registry/file-registry.js';
import type { FunctionRegistry } from '../registry/registry.js';

type StopsWith = (name: string, stop: () => Promise<void> | void) => void;

/** The broker connection with `--nats`, else undefined. Started (it keeps retrying in the background). */
export async function openCluster(c: Config, log: Logger, stopsWith: StopsWith): Promise<ClusterConnection | undefined> {
  if (!c.nats) return undefined;
  const clog = log.child({ component: 'cluster' });
  const cluster = new ClusterConnection({ servers: c.nats, hostId: c.hostId, log: clog });
  stopsWith('cluster connection', () => cluster.stop());
  await cluster.start();
  // A replica count this broker can never hold: refused at start when the broker answers then,
  // else said once it does (the stores then stay unattached, and /v1/health not ready).
  const fault = cluster.connection && c.natsReplicas !== undefined ? replicasFault(cluster.connection, c.natsReplicas) : undefined;
  if (fault) throw fault;
  cluster.onReady((nc) => {
    const late = c.natsReplicas !== undefined ? replicasFault(nc, c.natsReplicas) : undefined;
    if (late) clog.error({ err: late }, late.message);
  });
  return cluster;
}

export interface DaemonQueue {
  events: EventQueue;
  /** The scheduler's handled-through state (stays in the local SQLite file in every set-up). */
  scheduleState: ScheduleStateStore;
  /** With a cluster: whether the shared queue is attached to the brokers (else undefined). */
  ready?: () => boolean;
  /** With a cluster: takes back the running events of dead hosts (src/cluster/takeover.ts). */
  recoverHeldBy?: ClusterQueue['recoverHeldBy'];
}

/**
 * THE one place the event queue is chosen. One host: the SQLite queue. A cluster: the shared
 * JetStreamQueue (src/cluster/cluster-queue.ts holds it, answering UNAVAILABLE until the brokers
 * answer), while the schedule state stays in the local SQLite file.
 */
export function openQueue(c: Config, clock: Clock, log: Logger, stopsWith: StopsWith, cluster: ClusterConnection | undefined): DaemonQueue {
  const onMaintenanceError = (err: unknown): void => log.error({ err, component: 'queue' }, 'queue maintenance failed');
  // The dispatcher sweeps expired leases itself and reports the events that end dead: the queues' own sweeps only prune.
  const sqlite = SqliteQueue.open({ stateDir: c.stateDir, clock, maxQueued: c.maxQueuedEvents, onMaintenanceError, recoverLeases: false });
  stopsWith('queue', () => sqlite.close());
  if (!cluster) return { events: sqlite, scheduleState: sqlite };
  const events = new ClusterQueue({
    connection: cluster,
    queue: {
      hostId: c.hostId,
      clock,
      onMaintenanceError,
      recoverLeases: false,
      maxQueued: c.maxQueuedEvents,
      ...(c.natsReplicas !== undefined ? { replicas: c.natsReplicas } : {}),
    },
    log: log.child({ component: 'queue' }),
  });
  stopsWith('shared queue', () => events.close());
  events.start();
  return { events, scheduleState: sqlite, ready: () => events.ready(), recoverHeldBy: (gone) => events.recoverHeldBy(gone) };
}

export interface Stores {
  store: CodeStore;
  registry: FunctionRegistry;
  /** With a cluster: whether the registry has loaded the functions from the broker. */
  loaded?: () => boolean;
  /**
   * Starts the registry (loads the functions). Called once the sandbox driver is up: with a
   * cluster, loading fetches code bundles, whose preparation (Python bytecode) uses a sandbox.
   */
  startRegistry: () => Promise<void>;
}

/** Code store and function registry, started. `prepare`: the code store's per-bundle step (bytecode). */
export async function openStores(
  c: Config,
  log: Logger,
  stopsWith: StopsWith,
  cluster: ClusterConnection | undefined,
  prepare: DirCodeStoreOptions['prepare'],
): Promise<Stores> {
  const cacheDir = join(c.stateDir, 'code');
  if (!cluster) {
    const store = new DirCodeStore(cacheDir, { prepare });
    await store.start();
    stopsWith('code store', () => store.stop());
    const registry = new FileRegistry({ stateDir: c.stateDir, log: log.child({ component: 'registry' }) });
    const startRegistry = async (): Promise<void> => {
      await registry.start();
      stopsWith('registry', () => registry.stop());
    };
    return { store, registry, startRegistry };
  }
  const replicas = c.natsReplicas !== undefined ? { replicas: c.natsReplicas } : {};
  let bucketKeeps = (): Iterable<string> | undefined => undefined;
  const store = new ObjectCodeStore({
    connection: cluster,
    cacheDir,
    prepare,
    log: log.child({ component: 'code store' }),
    // Never empty the shared bucket from a host that does not know every function yet.
    bucketKeeps: () => bucketKeeps(),
    ...replicas,
  });
  stopsWith('code store', () => store.stop());
  await store.start();
  const registry = new JetStreamRegistry({
    connection: cluster,
    log: log.child({ component: 'registry' }),
    prepare: (r) => store.fetch(r.codeSha256),
    ...replicas,
  });
  bucketKeeps = () => (registry.attached ? registry.refusedCode() : undefined);
  const startRegistry = async (): Promise<void> => {
    stopsWith('registry', () => registry.stop());
    await registry.start();
  };
  return { store, registry, loaded: () => registry.attached, startRegistry };
}

/**
 * With a cluster: the network definitions in the cluster's bucket, for the NetworkManager (which
 * starts and stops them), and this host's id (its gateway address in a spec's `hostAddresses`).
 * One host: nothing (definitions stay in the state directory).
 */
export function networkDefinitions(c: Config, log: Logger, cluster: ClusterConnection | undefined): { shared?: SharedNetworkDefinitions; hostId?: string } {
  if (!cluster) return {};
  const shared = new JetStreamNetworkDefinitions({
    connection: cluster,
    log: log.child({ component: 'networks' }),
    ...(c.natsReplicas !== undefined ? { replicas: c.natsReplicas } : {}),
  });
  return { shared, hostId: c.hostId };
}
