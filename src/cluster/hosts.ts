/**
 * Cluster membership and load: every host puts a heartbeat (its load) into the `hearth-hosts` KV
 * bucket every `intervalMs`; the bucket's max age drops a silent host's entry, and a host not heard
 * from for `deadAfterMs` counts as gone at once (a kill -9 is noticed within a few seconds). A host
 * that stops deletes its entry. Every host watches the bucket, so `hosts()` is a local read: what
 * the router and `/v1/health` use.
 */
import { KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/nats-core';
import type { PoolInstanceView } from '../pool/types.js';
import { defaultReplicas, ensureKv } from './buckets.js';
import type { ClusterConnection } from './connection.js';
import type { ClusterLogger } from './jetstream-registry.js';

/** What a host tells the others about itself. */
export interface HostLoad {
  /** Instances running an invocation. */
  busy: number;
  /** Idle specialised instances per function. */
  idleWarm: Record<string, number>;
  /** Specialised instances per function, idle or busy (absent in heartbeats of earlier versions). */
  warm?: Record<string, number>;
  /** Generic instances ready per runtime (on no private network). */
  freeGeneric: Record<string, number>;
  memoryInUseMb: number;
}

export interface HostInfo {
  hostId: string;
  load: HostLoad;
  /** When this host last heard the heartbeat (local clock, ms). */
  seenAt: number;
}

/** A host's load from its pool's instance list. */
export function loadOf(instances: readonly PoolInstanceView[], memoryInUseMb: number): HostLoad {
  const warm: Record<string, number> = {};
  const load: HostLoad = { busy: 0, idleWarm: {}, warm, freeGeneric: {}, memoryInUseMb };
  for (const i of instances) {
    if (i.function && (i.state === 'idle' || i.state === 'busy')) warm[i.function] = (warm[i.function] ?? 0) + 1;
    if (i.state === 'busy') load.busy++;
    else if (i.state === 'idle' && i.function) load.idleWarm[i.function] = (load.idleWarm[i.function] ?? 0) + 1;
    else if (i.state === 'generic' && !i.network) load.freeGeneric[i.runtime] = (load.freeGeneric[i.runtime] ?? 0) + 1;
  }
  return load;
}

export interface HostDirectoryOptions {
  connection: Pick<ClusterConnection, 'connection' | 'onReady' | 'hostId'>;
  /** This host's load right now. */
  load: () => HostLoad;
  log: ClusterLogger;
  bucket?: string;
  intervalMs?: number;
  deadAfterMs?: number;
  replicas?: number;
}

export class HostDirectory {
  private kv: KV | undefined;
  private watcher: QueuedIterator<KvEntry> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly seen = new Map<string, HostInfo>();
  private failing = false;

  constructor(private readonly opts: HostDirectoryOptions) {}

  get hostId(): string {
    return this.opts.connection.hostId;
  }

  start(): void {
    this.opts.connection.onReady((nc) => this.attach(nc));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.watcher?.stop();
    await this.kv?.delete(this.hostId).catch(() => undefined);
    this.kv = undefined;
  }

  /** When a heartbeat of `hostId` was last heard here (local clock, ms), dead or alive; undefined if never since start. */
  lastSeen(hostId: string): number | undefined {
    return this.seen.get(hostId)?.seenAt;
  }

  /** Live hosts (this one included once its heartbeat went round), sorted by id. */
  hosts(now = Date.now()): HostInfo[] {
    const dead = this.opts.deadAfterMs ?? 3000;
    return [...this.seen.values()].filter((h) => now - h.seenAt <= dead).sort((a, b) => (a.hostId < b.hostId ? -1 : 1));
  }

  private async attach(nc: NatsConnection): Promise<void> {
    const interval = this.opts.intervalMs ?? 1000;
    const kv = await ensureKv(nc, {
      name: this.opts.bucket ?? 'hearth-hosts',
      description: 'Hearth hosts: heartbeats with load',
      history: 1,
      maxAgeMs: Math.max(10_000, interval * 10),
      replicas: this.opts.replicas ?? defaultReplicas(nc),
    });
    if (this.stopped) return;
    this.kv = kv;
    const watcher = await kv.watch({ include: KvWatchInclude.LastValue });
    this.watcher = watcher;
    void (async () => {
      for await (const e of watcher) this.heard(e);
    })().catch((err: unknown) => this.opts.log.error({ err }, 'host watch ended'));
    await this.beat();
    this.timer = setInterval(() => void this.beat(), interval);
    this.timer.unref();
  }

  private heard(e: KvEntry): void {
    if (e.operation !== 'PUT') {
      this.seen.delete(e.key);
      return;
    }
    try {
      const v = e.json<{ load: HostLoad }>();
      this.seen.set(e.key, { hostId: e.key, load: v.load, seenAt: Date.now() });
    } catch (err) {
      this.opts.log.warn({ key: e.key, err: (err as Error).message }, 'ignoring a host heartbeat that does not parse');
    }
  }

  private async beat(): Promise<void> {
    const kv = this.kv;
    if (!kv || this.stopped) return;
    try {
      await kv.put(this.hostId, JSON.stringify({ load: this.opts.load(), at: new Date().toISOString() }), { timeout: 1000 });
      if (this.failing) this.opts.log.info({}, 'heartbeats go through again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.opts.log.warn({ err: (err as Error).message }, 'heartbeat not stored; other hosts will count this host as gone until it is');
      this.failing = true;
    }
  }
}
