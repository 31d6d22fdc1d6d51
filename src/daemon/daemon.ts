/**
 * The one place that builds every component from config and starts and stops them (tailscale's
 * tsd idea). Nothing else reads config. Every component has the same life: construct -> start()
 * -> stop(), and stop() works after a failed start.
 *
 * Start order: state dir -> queue (refuses a corrupt DB) -> registry + code store -> sandbox
 * driver (removes what a crashed run left: cgroups and their processes) -> networks -> pool ->
 * dispatcher (re-queues events left running) -> scheduler -> control socket. Stop is the reverse:
 * the socket closes first, running invocations drain, then instances, networks and cgroups go.
 */
import { chmodSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type net from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { Config } from '../config.js';
import { ControlServer } from '../control/server.js';
import { buildRoutes, type ApiServices } from '../control/routes.js';
import { Dispatcher, type DispatchTarget } from '../dispatch/dispatcher.js';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import { FixedKeepAlivePolicy } from '../model/fixed-keep-alive.js';
import { HearthPolicy } from '../model/hearth-policy.js';
import type { Policy } from '../model/policy.js';
import { Pool, type PoolFunction } from '../pool/pool.js';
import { GenericPoolSizer } from '../pool/generic-sizer.js';
import type { Spawner } from '../pool/types.js';
import { toEventView, type EventQueue, type EventStatus } from '../queue/event-queue.js';
import { parseSchedule } from '../queue/schedule.js';
import { Scheduler } from '../queue/scheduler.js';
import { SqliteQueue } from '../queue/sqlite-queue.js';
import { PythonBytecodeCompiler } from '../registry/bytecode.js';
import { missingHandlerFunction } from '../registry/handler-check.js';
import { CodeStore } from '../registry/code-store.js';
import { FunctionService } from '../registry/function-service.js';
import type { FunctionRecord } from '../registry/function-spec.js';
import { FileRegistry } from '../registry/registry.js';
import { NetworkManager } from '../net/index.js';
import { InstanceConnection } from '../runtimes/instance-connection.js';
import { ReplyPoller } from '../runtimes/reply-poller.js';
import { binding } from '../sandbox/binding.js';
import { SandboxDriver } from '../sandbox/sandbox-driver.js';

interface Component {
  name: string;
  stop(): Promise<void> | void;
}

export class Daemon {
  private readonly started: Component[] = [];
  private readonly functions = new Map<string, DispatchTarget & { record: FunctionRecord }>();
  private queue!: EventQueue & SqliteQueue;
  private registry!: FileRegistry;
  private store!: CodeStore;
  private service!: FunctionService;
  private pool!: Pool;
  private dispatcher!: Dispatcher;
  private scheduler!: Scheduler;
  private policy!: Policy;
  private sandbox!: SandboxDriver;
  private bytecode!: PythonBytecodeCompiler;
  private net!: NetworkManager;
  /** Why networks are unavailable (e.g. nftables missing), or undefined when they work. */
  private netDisabled: string | undefined;
  private replyPoller: ReplyPoller | undefined;
  private server!: ControlServer;
  private readonly startedAt = Date.now();
  private gcTimer: TimerHandle | undefined;

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
    // Last to stop: runtime directories the daemon made go when empty (the state dir stays).
    this.started.push({ name: 'run dirs', stop: () => removeEmptyDirs([join(c.runDir, 'netns'), c.runDir]) });
    mkdirSync(c.stateDir, { recursive: true, mode: 0o700 });
    chmodSync(c.stateDir, 0o700);

    this.queue = SqliteQueue.open({ stateDir: c.stateDir, clock: this.clock, maxQueued: c.maxQueuedEvents, onMaintenanceError: (err) => this.log.error({ err, component: 'queue' }, 'queue maintenance failed') });
    this.started.push({ name: 'queue', stop: () => this.queue.close() });

    // New bundles get Python bytecode, compiled in a sandbox (once the driver below is started).
    const bytecodeLog = this.log.child({ component: 'bytecode' });
    this.store = new CodeStore(join(c.stateDir, 'code'), {
      prepare: async (dir, opts) => {
        const r = await this.bytecode.compile(dir, opts);
        if (r.skipped && r.skipped !== 'no Python sources') bytecodeLog.warn({ dir, ...r }, 'bundle stored without Python bytecode');
        else if (r.compiled > 0) bytecodeLog.info({ dir, ...r }, 'compiled Python bytecode');
      },
    });
    await this.store.start();
    this.started.push({ name: 'code store', stop: () => this.store.stop() });
    this.registry = new FileRegistry({ stateDir: c.stateDir, log: this.log.child({ component: 'registry' }) });
    await this.registry.start();
    this.started.push({ name: 'registry', stop: () => this.registry.stop() });
    this.service = new FunctionService(this.store, this.registry, {
      validateSchedule: (e) => parseSchedule(e),
      networkExists: (n) => this.net?.get(n) !== undefined,
      findHandlerFault: (dir, handler, runtime) => missingHandlerFunction(dir, handler, runtime, this.bytecode),
    });

    this.sandbox = new SandboxDriver({
      stateDir: c.stateDir,
      cgroupName: c.cgroupName,
      uid: c.sandboxUid,
      gid: c.sandboxGid,
      eagerZygote: c.generic.python > 0,
      log: this.log.child({ component: 'sandbox' }),
    });
    this.started.push({ name: 'sandbox', stop: () => this.sandbox.stop() });
    await this.sandbox.start();
    this.bytecode = new PythonBytecodeCompiler(this.sandbox);

    this.net = new NetworkManager({ stateDir: c.stateDir, runDir: c.runDir, log: this.log });
    try {
      await this.net.start();
      this.started.push({ name: 'networks', stop: () => this.net.stop() });
    } catch (err) {
      // Networks are optional: without nftables or the net addon, functions without a network still run.
      this.netDisabled = (err as Error).message;
      this.log.error({ err }, 'private networks are unavailable');
    }

    this.policy = c.policy === 'model' ? new HearthPolicy() : new FixedKeepAlivePolicy(c.keepAliveMs);
    if (c.replyPollUs > 0) {
      const native = binding();
      this.replyPoller = new ReplyPoller({ maxSpinUs: c.replyPollUs, spin: (us) => native.spinUntilLoopEvent(us) });
    }
    const spawner: Spawner = {
      spawn: async (runtime, id, limits, opts) => {
        const base = { forRequest: opts?.forRequest === true };
        if (!opts?.network) return runtime === 'node' ? this.sandbox.spawnNode(id, limits, base) : this.sandbox.spawnPython(id, limits, base);
        // The instance's network namespace is prepared and connected to the gateway before the
        // runtime starts in it; the lease ends (veth removed) when the instance is gone.
        if (this.netDisabled) throw new HearthError('UNAVAILABLE', `private networks are unavailable: ${this.netDisabled}`);
        const lease = await this.net.prepareInstanceNetns(opts.network);
        try {
          const sopts = { ...base, netnsFd: lease.netnsFd };
          const proc = await (runtime === 'node' ? this.sandbox.spawnNode(id, limits, sopts) : this.sandbox.spawnPython(id, limits, sopts));
          void proc.exited.finally(() => lease.release().catch((err: unknown) => this.log.error({ err, instance: id }, 'cannot release instance network')));
          return proc;
        } catch (err) {
          await lease.release().catch(() => undefined);
          throw err;
        }
      },
    };
    this.pool = new Pool({
      spawner,
      connect: (socket: net.Socket) => new InstanceConnection(socket, this.replyPoller ? { replyWatch: this.replyPoller.watch() } : {}),
      clock: this.clock,
      log: this.log.child({ component: 'pool' }),
      policy: this.policy,
      policyClock: this.policyClock,
      lookup: (name) => this.functions.get(name),
      memoryBudgetMb: c.memoryBudgetMb,
      genericTarget: { ...c.generic },
      genericLimits: { memoryMb: c.genericMemoryMb, pids: c.pidsMax, cpuPercent: c.cpuPercent, tmpMb: c.tmpMb },
    });
    this.started.push({ name: 'pool', stop: () => this.pool.stop() });

    for (const r of await this.registry.list()) this.track(r.name, r);
    this.registry.onChange((name, record) => {
      this.pool.retire(name, record === undefined);
      this.track(name, record);
      void this.syncSchedules(name, record);
      if (!record) void this.queue.purgeFunction(name).catch((err: unknown) => this.log.error({ err, fn: name }, 'cannot purge events'));
      this.scheduleCodeGc();
    });

    this.pool.start();
    this.scheduleCodeGc(5_000);
    this.started.push({ name: 'code gc', stop: () => this.gcTimer && this.clock.clearTimeout(this.gcTimer) });
    const sizer = new GenericPoolSizer({
      pool: this.pool,
      clock: this.policyClock,
      base: { ...c.generic },
      predictedColdRatePerHour: (rt, now) => {
        const p = this.policy as Policy & { expectedColdRatePerHour?: (fn: string, now: number) => number };
        if (!p.expectedColdRatePerHour) return 0;
        let sum = 0;
        for (const f of this.functions.values()) if (f.fn.runtime === rt && !f.fn.network) sum += p.expectedColdRatePerHour(f.fn.name, now);
        return sum;
      },
    });
    sizer.start();
    this.started.push({ name: 'generic sizer', stop: () => sizer.stop() });

    this.dispatcher = new Dispatcher({ queue: this.queue, pool: this.pool, lookup: (n) => this.functions.get(n), clock: this.clock, log: this.log.child({ component: 'dispatcher' }) });
    this.started.push({ name: 'dispatcher', stop: () => this.dispatcher.stop() });
    await this.dispatcher.start();

    this.scheduler = new Scheduler({ queue: this.queue, state: this.queue, clock: this.clock, logger: this.log.child({ component: 'scheduler' }) });
    for (const f of this.functions.values()) await this.syncSchedules(f.record.name, f.record);
    await this.scheduler.start();
    this.started.push({ name: 'scheduler', stop: () => this.scheduler.stop() });

    this.server = new ControlServer({
      socketPath: c.socket,
      ...(c.socketGroup !== undefined ? { allowedGid: resolveGroup(c.socketGroup) } : {}),
      routes: buildRoutes(this.services()),
      peerCredentials: (socket) => binding().peerCredentials(socketFd(socket)),
      log: this.log.child({ component: 'control' }),
    });
    await this.server.start();
    this.started.push({ name: 'control', stop: () => this.server.stop() });
    this.log.info({ socket: c.socket, stateDir: c.stateDir, functions: this.functions.size, cgroups: this.sandbox.cgroupVersion }, 'hearth daemon ready');
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

  /**
   * Removes code bundles no function and no live instance uses, a while after a change (retired
   * instances end when their invocation finishes; a bundle is never removed while mounted).
   */
  private scheduleCodeGc(delayMs = 30_000): void {
    if (this.gcTimer) return;
    this.gcTimer = this.clock.setTimeout(() => {
      this.gcTimer = undefined;
      void this.service
        .gcCode(this.pool.liveCodeShas())
        .then((removed) => {
          if (removed.length) this.log.info({ removed: removed.length }, 'removed unused code bundles');
        })
        .catch((err: unknown) => this.log.error({ err }, 'code gc failed'));
    }, delayMs);
    this.gcTimer.unref?.();
  }

  private track(name: string, record: FunctionRecord | undefined): void {
    this.trackRecord(name, record);
    this.sizeNetworkPools();
  }

  /** One generic pool per (runtime, network) that has functions, sized `genericPerNetwork`. */
  private sizeNetworkPools(): void {
    const want = new Map<string, { runtime: 'node' | 'python'; network: string }>();
    for (const f of this.functions.values()) {
      if (f.fn.network) want.set(`${f.fn.runtime}@${f.fn.network}`, { runtime: f.fn.runtime, network: f.fn.network });
    }
    for (const key of Object.keys(this.pool.genericTargets())) {
      if (key.includes('@') && !want.has(key)) {
        const [rt, network] = key.split('@') as ['node' | 'python', string];
        this.pool.setGenericTarget(rt, 0, network);
      }
    }
    for (const w of want.values()) this.pool.setGenericTarget(w.runtime, this.config.genericPerNetwork, w.network);
  }

  private trackRecord(name: string, record: FunctionRecord | undefined): void {
    if (!record) {
      this.functions.delete(name);
      return;
    }
    const fn: PoolFunction = {
      name: record.name,
      runtime: record.runtime,
      handler: record.handler,
      memoryMb: record.memoryMb,
      timeoutMs: record.timeoutMs,
      env: record.env,
      concurrency: record.concurrency,
      codeSha256: record.codeSha256,
      updatedAt: record.updatedAt,
      ...(record.network ? { network: record.network } : {}),
    };
    this.policy.describe(name, { memoryMb: record.memoryMb });
    this.functions.set(name, { fn, codeDir: this.store.path(record.codeSha256), record });
  }

  private async syncSchedules(name: string, record: FunctionRecord | undefined): Promise<void> {
    try {
      if (!record || record.schedules.length === 0) await this.scheduler?.remove(name);
      else await this.scheduler?.set(name, record.schedules, { maxAttempts: record.retries + 1, maxEventAgeMs: record.maxEventAgeS * 1000 });
    } catch (err) {
      this.log.error({ err, fn: name }, 'cannot apply schedules');
    }
  }

  private target(name: string): DispatchTarget & { record: FunctionRecord } {
    const t = this.functions.get(name);
    if (!t) throw new HearthError('FUNCTION_NOT_FOUND', `no function named ${JSON.stringify(name)}`);
    return t;
  }

  private services(): ApiServices {
    return {
      health: () => ({ status: 'ok', uptimeS: Math.round((Date.now() - this.startedAt) / 1000), functions: this.functions.size, instances: this.pool.list().length, cgroups: this.sandbox.cgroupVersion }),
      putFunction: async (name, body) => {
        const out = await this.service.deploy(name, body);
        return { record: out.record, created: out.created };
      },
      listFunctions: () => [...this.functions.values()].map((f) => f.record).sort((a, b) => a.name.localeCompare(b.name)),
      getFunction: (name) => this.target(name).record,
      deleteFunction: async (name) => {
        await this.service.delete(name);
      },
      invoke: (name, event) => this.dispatcher.invokeSync(name, event),
      pool: () => ({
        instances: this.pool.list(),
        memoryInUseMb: this.pool.memoryInUseMb(),
        memoryBudgetMb: this.config.memoryBudgetMb,
        prewarms: this.pool.prewarmSchedule(),
        replyPoll: this.replyPoller ? { ...this.replyPoller.stats } : null,
      }),
      model: (name) => {
        this.target(name);
        const now = this.policyClock.now();
        const e = this.policy.explain(name, now);
        return {
          ...e,
          now: new Date(now).toISOString(),
          decisions: { ...e.decisions, prewarmAt: e.decisions.prewarmAt === null ? null : new Date(e.decisions.prewarmAt).toISOString() },
          pool: { idle: this.pool.idleCount(name), prewarmArmed: this.pool.prewarmSchedule()[name] ?? null },
        };
      },
      submitEvent: async (name, payload, key) => {
        const t = this.target(name);
        const r = await this.queue.submit(name, payload, { ...(key ? { idempotencyKey: key } : {}), ...this.eventOpts(t.record) });
        if (!r.duplicate) this.dispatcher.noteAccepted([r.id]);
        return { id: r.id };
      },
      submitBatch: async (name, payloads) => {
        const t = this.target(name);
        const r = await this.queue.submitBatch(name, payloads, this.eventOpts(t.record));
        if (!r.duplicate) this.dispatcher.noteAccepted(r.ids);
        return { ids: r.ids };
      },
      getEvent: async (id) => toEventView(await this.queue.get(id)),
      listEvents: async (f) => (await this.queue.list({ ...(f.function ? { function: f.function } : {}), ...(f.status ? { status: f.status as EventStatus } : {}), limit: f.limit })).map(toEventView),
      redriveEvent: async (id) => {
        await this.queue.redrive(id);
        return toEventView(await this.queue.get(id));
      },
      queueStats: async () => {
        const s = await this.queue.stats();
        return { ...s, queueToStartMs: this.dispatcher.queueToStart.summary() };
      },
      putNetwork: async (name, body) => {
        if (this.netDisabled) throw new HearthError('UNAVAILABLE', `private networks are unavailable: ${this.netDisabled}`);
        if (this.net.get(name)) throw new HearthError('CONFLICT', `network '${name}' exists; delete it first to change it`);
        return { record: await this.net.create(name, body as never), created: true };
      },
      listNetworks: () => (this.netDisabled ? [] : this.net.list()),
      deleteNetwork: async (name) => {
        if (this.netDisabled || !this.net.get(name)) throw new HearthError('NETWORK_NOT_FOUND', `no network named '${name}'`);
        const users = [...this.functions.values()].filter((f) => f.fn.network === name).map((f) => f.fn.name);
        if (users.length) throw new HearthError('CONFLICT', `network '${name}' is used by ${users.join(', ')}; delete or redeploy them first`);
        // Generic instances prepared on it hold leases; end them first.
        for (const rt of ['node', 'python'] as const) this.pool.setGenericTarget(rt, 0, name);
        await this.pool.drainNetwork(name);
        await this.net.delete(name);
      },
    };
  }

  private eventOpts(r: FunctionRecord): { maxAttempts: number; expiresAt: number } {
    return { maxAttempts: r.retries + 1, expiresAt: this.clock.now() + r.maxEventAgeS * 1000 };
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

function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('control connection has no file descriptor');
  return fd;
}

function resolveGroup(g: string | number): number {
  if (typeof g === 'number') return g;
  if (/^\d+$/.test(g)) return Number(g);
  const fs = require('node:fs') as typeof import('node:fs');
  for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === g && gid) return Number(gid);
  }
  throw new HearthError('CONFIG', `socketGroup: no group named '${g}' in /etc/group`);
}
