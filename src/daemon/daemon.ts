/**
 * The one place that builds every component from config and starts and stops them (tailscale's
 * tsd idea); wiring only. Nothing else reads config. Every component has the same life:
 * construct -> start() -> stop(), and stop() works after a failed start.
 *
 * Start order: state dir -> broker connection (with --nats; src/daemon/stores.ts) -> queue
 * (refuses a corrupt DB) -> code store -> sandbox driver (removes what a crashed run left: cgroups
 * and their processes) -> function registry (with a cluster, loading fetches code bundles, which
 * are prepared in a sandbox) -> networks
 * (optional: without them, functions without a network still run) -> pool (spawning through the
 * network-aware InstanceSpawner) -> catalogue (loads every function: what the pool and the
 * dispatcher look up; follows registry changes) -> generic-pool sizer -> observability (invocation
 * records; with --metrics-listen, metrics and the dashboard's listener) -> dispatcher (re-queues
 * events left running) -> scheduler -> control socket.
 *
 * Stop is the reverse: the socket closes first, schedules stop, running invocations drain, the
 * catalogue stops following the registry, then instances, networks and cgroups go, then the
 * stores and the queue close, and the runtime directories the daemon made are removed when empty.
 *
 * An event goes one way, down: control (routes -> services) -> dispatcher -> pool -> sandbox
 * (InstanceSpawner) -> runtime connection; nothing calls back into this module.
 */
import { chmodSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import { AccessKeys } from '../control/access-keys.js';
import { ControlServer } from '../control/server.js';
import { buildRoutes } from '../control/routes.js';
import { buildServices } from '../control/services.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { LambdaServer } from '../lambda/lambda-server.js';
import type { Logger } from '../log.js';
import { FixedKeepAlivePolicy } from '../model/fixed-keep-alive.js';
import { HearthPolicy } from '../model/hearth-policy.js';
import type { Policy } from '../model/policy.js';
import { InstanceSpawner } from '../net/instance-spawner.js';
import { Observability } from '../observe/observability.js';
import { observedState } from '../observe/state.js';
import { NetworkManager } from '../net/index.js';
import { GenericPoolSizer } from '../pool/generic-sizer.js';
import { Pool } from '../pool/pool.js';
import { parseSchedule } from '../queue/schedule.js';
import { Scheduler } from '../queue/scheduler.js';
import { PythonBytecodeCompiler } from '../registry/bytecode.js';
import { FunctionCatalogue } from '../registry/catalogue.js';
import { missingHandlerFunction } from '../registry/handler-check.js';
import { FunctionService } from '../registry/function-service.js';
import { InstanceConnection } from '../runtimes/instance-connection.js';
import { ReplyPoller } from '../runtimes/reply-poller.js';
import { binding } from '../sandbox/binding.js';
import { SandboxDriver } from '../sandbox/sandbox-driver.js';
import type { UidMap } from '../sandbox/uid-map.js';
import { resolveGroup, socketFd } from './control-access.js';
import { joinCluster, scheduleLease } from './cluster-wiring.js';
import { networkDefinitions, openCluster, openQueue, openStores } from './stores.js';
import { claimUidRange } from './uid-range.js';

interface Component {
  name: string;
  stop(): Promise<void> | void;
}

export class Daemon {
  private readonly started: Component[] = [];
  /** Where the metrics listener listens once started (its port when 0 was asked for); unset without one. */
  metricsAddress: { host: string; port: number } | undefined;
  private lambdaServer: LambdaServer | undefined;

  /** Where the Lambda API listens, when it is served (its port when --lambda-listen asked for port 0). */
  lambdaAddress(): { address: string; port: number } | undefined {
    return this.lambdaServer?.address();
  }

  /**
   * `clock` drives deadlines, the queue and schedules; `policyClock` is the time the pool policy
   * sees (keep-alive, pre-warm), the same clock unless a test or a replay compresses time.
   */
  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
    private readonly policyClock: Clock = clock,
  ) {}

  async start(): Promise<void> {
    const c = this.config;
    const log = (component: string): Logger => this.log.child({ component });
    const stopsWith = (name: string, stop: () => Promise<void> | void): void => void this.started.push({ name, stop });

    stopsWith('run dirs', () => removeEmptyDirs([join(c.runDir, 'netns'), c.runDir]));
    mkdirSync(c.stateDir, { recursive: true, mode: 0o700 });
    chmodSync(c.stateDir, 0o700);

    // With --nats: the broker connection, then the stores on JetStream (src/daemon/stores.ts).
    const cluster = await openCluster(c, this.log, stopsWith);
    const { events: queue, scheduleState, ready: queueReady, recoverHeldBy } = openQueue(c, this.clock, this.log, stopsWith, cluster);

    // New bundles get Python bytecode, compiled in a sandbox (`bytecode` is declared once the driver below is started).
    const bytecodeLog = log('bytecode');
    const { store, registry, loaded, startRegistry } = await openStores(c, this.log, stopsWith, cluster, async (dir, opts) => {
      const r = await bytecode.compile(dir, opts);
      if (r.skipped && r.skipped !== 'no Python sources') bytecodeLog.warn({ dir, ...r }, 'bundle stored without Python bytecode');
      else if (r.compiled > 0) bytecodeLog.info({ dir, ...r }, 'compiled Python bytecode');
    });

    // A user namespace per instance: root inside maps to its function's host uid (docs/sandbox.md, Identity).
    let uids: UidMap | undefined;
    if (c.userns) {
      const claim = await claimUidRange({ stateDir: c.stateDir, explicit: c.uidRange }, log('uids'));
      stopsWith('uid range', () => claim.release());
      uids = claim.uids;
    }
    const sandbox = new SandboxDriver({
      stateDir: c.stateDir,
      cgroupName: c.cgroupName,
      uid: uids ? uids.poolId : c.sandboxUid,
      gid: uids ? uids.poolId : c.sandboxGid,
      userns: uids !== undefined,
      eagerZygote: c.generic.python > 0,
      log: log('sandbox'),
    });
    stopsWith('sandbox', () => sandbox.stop());
    await sandbox.start();
    const bytecode = new PythonBytecodeCompiler(sandbox);
    await startRegistry();

    // With a cluster, definitions are shared (src/daemon/stores.ts); each host builds its own gateways.
    const networks = new NetworkManager({ stateDir: c.stateDir, runDir: c.runDir, log: this.log, ...networkDefinitions(c, this.log, cluster) });
    let networksDisabled: string | undefined;
    try {
      await networks.start();
      stopsWith('networks', () => networks.stop());
    } catch (err) {
      networksDisabled = (err as Error).message;
      this.log.error({ err }, 'private networks are unavailable');
    }
    const functions = new FunctionService(store, registry, {
      validateSchedule: (e) => parseSchedule(e),
      networkExists: (n) => networks.get(n) !== undefined,
      findHandlerFault: (dir, handler, runtime) => missingHandlerFunction(dir, handler, runtime, bytecode),
    });

    if (uids) {
      uids.retain((await registry.list()).map((r) => r.name)); // deleted while the daemon was down
      const unsubscribe = registry.onChange((name, record) => {
        if (!record) uids.release(name);
      });
      stopsWith('uid map', async () => {
        unsubscribe();
        await uids.flush();
      });
    }

    const policy: Policy = c.policy === 'model' ? new HearthPolicy() : new FixedKeepAlivePolicy(c.keepAliveMs);
    const catalogue = new FunctionCatalogue({ registry, store, policy, clock: this.clock, log: log('catalogue'), genericPerNetwork: c.genericPerNetwork });
    const native = c.replyPollUs > 0 ? binding() : undefined;
    const replyPoller = native ? new ReplyPoller({ maxSpinUs: c.replyPollUs, spin: (us) => native.spinUntilLoopEvent(us) }) : undefined;
    const pool = new Pool({
      spawner: new InstanceSpawner({ sandbox, networks, ...(networksDisabled !== undefined ? { networksDisabled } : {}), log: log('spawner') }),
      connect: (socket) => new InstanceConnection(socket, replyPoller ? { replyWatch: replyPoller.watch() } : {}),
      clock: this.clock,
      log: log('pool'),
      policy,
      policyClock: this.policyClock,
      lookup: catalogue.lookup,
      memoryBudgetMb: c.memoryBudgetMb,
      genericTarget: { ...c.generic },
      genericLimits: { memoryMb: c.genericMemoryMb, pids: c.pidsMax, cpuPercent: c.cpuPercent, tmpMb: c.tmpMb },
      ...(uids ? { identity: (fn: string) => ({ uid: uids.uidFor(fn), gid: uids.uidFor(fn) }) } : {}),
    });
    stopsWith('pool', () => pool.stop());

    const dispatcher = new Dispatcher({ queue, pool, lookup: catalogue.lookup, clock: this.clock, log: log('dispatcher') });
    // Many hosts: each schedule tick fires on the holder of the cluster's scheduler lease only.
    const lease = cluster ? scheduleLease(cluster, this.log, stopsWith, c.natsReplicas) : undefined;
    const scheduler = new Scheduler({
      queue,
      state: scheduleState,
      clock: this.clock,
      logger: log('scheduler'),
      ...(lease ? { fires: () => lease.held() } : {}),
    });
    stopsWith('catalogue', () => catalogue.stop());
    await catalogue.start({ pool, queue, schedules: scheduler, gcCode: (live) => functions.gcCode(live) });

    pool.start();
    const sizer = new GenericPoolSizer({ pool, clock: this.policyClock, base: { ...c.generic }, predictedColdRatePerHour: catalogue.predictedColdRatePerHour });
    sizer.start();
    stopsWith('generic sizer', () => sizer.stop());

    // Observability follows the dispatcher's feeds from its first event (records, metrics, dashboard).
    const observe = new Observability({
      stateDir: c.stateDir,
      state: observedState({ catalogue, pool, queue, policy, policyClock: this.policyClock, memoryBudgetMb: c.memoryBudgetMb }),
      feeds: dispatcher,
      registry,
      ...(c.metricsListen ? { listen: c.metricsListen } : {}),
      clock: this.clock,
      log: log('observe'),
    });
    stopsWith('observe', () => observe.stop());
    await observe.start();
    this.metricsAddress = observe.listenAddress();

    stopsWith('dispatcher', () => dispatcher.stop());
    await dispatcher.start();
    await scheduler.start();
    stopsWith('scheduler', () => scheduler.stop());

    const keys = new AccessKeys(c.stateDir);
    await keys.start();
    const clusterParts =
      cluster && lease && loaded && queueReady && recoverHeldBy
        ? joinCluster({
            cluster,
            lease,
            loaded,
            queueReady,
            recoverHeldBy,
            pool,
            dispatcher,
            catalogue,
            policy,
            policyClock: this.policyClock,
            log: this.log,
            stopsWith,
            replicas: c.natsReplicas,
          })
        : undefined;
    const services = buildServices({
      ...{ functions, keys, catalogue, dispatcher, queue, pool, policy, networks, clock: this.clock, policyClock: this.policyClock },
      ...(networksDisabled !== undefined ? { networksDisabled } : {}),
      ...(replyPoller ? { replyPollStats: () => ({ ...replyPoller.stats }) } : {}),
      ...(clusterParts ? { cluster: () => clusterParts.status(), invokeSync: clusterParts.router.invokeSync.bind(clusterParts.router) } : {}),
      memoryBudgetMb: c.memoryBudgetMb,
      cgroupVersion: sandbox.cgroupVersion,
      history: observe,
    });
    const server = new ControlServer({
      socketPath: c.socket,
      ...(c.socketGroup !== undefined ? { allowedGid: resolveGroup(c.socketGroup) } : {}),
      routes: buildRoutes(services),
      peerCredentials: (socket) => binding().peerCredentials(socketFd(socket)),
      log: log('control'),
    });
    await server.start();
    stopsWith('control', () => server.stop());
    const listen = c.lambdaListen;
    if (listen) {
      const lambda = new LambdaServer({ ...listen, services, secretOf: keys.secretOf, clock: this.clock, log: log('lambda') });
      stopsWith('lambda API', () => lambda.stop());
      await lambda.start();
      this.lambdaServer = lambda;
      this.log.info({ address: lambda.address() }, 'lambda API listening');
    }
    this.log.info(
      { socket: c.socket, metrics: this.metricsAddress, stateDir: c.stateDir, functions: catalogue.size, cgroups: sandbox.cgroupVersion },
      'hearth daemon ready',
    );
  }

  /** Stops everything that started, in reverse order; safe after a failed start. */
  async stop(): Promise<void> {
    while (this.started.length) {
      const comp = this.started.pop()!;
      try {
        await comp.stop();
      } catch (err) {
        this.log.error({ err, component: comp.name }, 'stop failed');
      }
    }
  }
}

function removeEmptyDirs(dirs: string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      /* absent, not empty, or not ours to remove */
    }
  }
}
