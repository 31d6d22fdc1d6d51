/**
 * A lease held by at most one host of the cluster at a time (the scheduler's: each schedule tick
 * fires once in the cluster, on the holder). One key in the `hearth-leases` KV bucket, whose max
 * age is the lease time: the holder renews it with compare-and-set every quarter of that; when the
 * holder dies its entry ages out and another host's create succeeds. A host counts itself holder
 * only for half the lease time after its last successful renew, so two hosts never both think they
 * hold it (a host cut off from the broker stops holding before its entry can expire).
 */
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { defaultReplicas, ensureKv } from './buckets.js';
import type { ClusterConnection } from './connection.js';
import type { ClusterLogger } from './jetstream-registry.js';

export interface LeaseOptions {
  connection: Pick<ClusterConnection, 'connection' | 'onReady' | 'hostId'>;
  log: ClusterLogger;
  /** The lease's name (a key). */
  name: string;
  /** Lease time (default 8 s): the bucket's max age. */
  ttlMs?: number;
  bucket?: string;
  replicas?: number;
}

export class ClusterLease {
  private kv: KV | undefined;
  private rev = 0;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly ttl: number;

  constructor(private readonly opts: LeaseOptions) {
    this.ttl = opts.ttlMs ?? 8000;
  }

  /** Whether this host holds the lease now. */
  held(now = Date.now()): boolean {
    return now < this.validUntil;
  }

  start(): void {
    this.opts.connection.onReady((nc) => this.attach(nc));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const kv = this.kv;
    this.kv = undefined;
    if (kv && this.held()) await kv.delete(this.opts.name, { previousSeq: this.rev }).catch(() => undefined);
    this.validUntil = 0;
  }

  private async attach(nc: NatsConnection): Promise<void> {
    const kv = await ensureKv(nc, {
      name: this.opts.bucket ?? 'hearth-leases',
      description: 'Hearth leases (one holder in the cluster)',
      history: 1,
      maxAgeMs: this.ttl,
      replicas: this.opts.replicas ?? defaultReplicas(nc),
    });
    if (this.stopped) return;
    this.kv = kv;
    await this.renew();
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttl / 4)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const kv = this.kv;
    if (!kv || this.stopped) return;
    const asked = Date.now();
    const value = JSON.stringify({ host: this.opts.connection.hostId, at: new Date(asked).toISOString() });
    const was = this.held(asked);
    try {
      this.rev = this.rev > 0 ? await kv.update(this.opts.name, value, this.rev, 1000) : await kv.create(this.opts.name, value);
      this.validUntil = asked + this.ttl / 2;
      if (!was) this.opts.log.info({ lease: this.opts.name }, `this host now holds the ${this.opts.name} lease`);
    } catch {
      // Held by another host (or the broker is away): try to create it once it ages out.
      this.rev = 0;
      if (was && !this.held()) this.opts.log.info({ lease: this.opts.name }, `this host no longer holds the ${this.opts.name} lease`);
    }
  }
}
