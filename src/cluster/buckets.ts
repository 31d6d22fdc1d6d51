/**
 * The JetStream buckets Hearth keeps, created at first use or checked when they already exist:
 * an existing bucket whose settings Hearth depends on differ (history, max age) is refused with a
 * clear CONFIG error naming the bucket and both settings; a different replica count is only
 * logged (it changes durability, not meaning). Also the one mapping of broker errors to codes.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/nats-core';
import { HearthError, isHearthError } from '../errors.js';

/** Minimal logger (pino fits). */
export interface BucketLogger {
  warn(obj: object, msg?: string): void;
}

export interface KvSpec {
  name: string;
  description: string;
  history: number;
  /** Bucket-wide max age of an entry (0: none). nats-server 2.9 has no per-key TTL. */
  maxAgeMs: number;
  replicas: number;
}

/** Replicas for a new bucket: 3 on a cluster (the connected server names one), else 1. */
export function defaultReplicas(nc: NatsConnection): number {
  return nc.info?.cluster ? 3 : 1;
}

/**
 * A replica count this broker can never hold, as a CONFIG error (undefined when it may): more than
 * one replica on a broker that is not in a cluster. Too few brokers in a cluster shows only when a
 * bucket is placed (see replicasHint): a cluster still forming lists fewer peers than it will have.
 */
export function replicasFault(nc: NatsConnection, replicas: number): HearthError | undefined {
  if (replicas <= 1 || nc.info?.cluster) return undefined;
  return new HearthError(
    'CONFIG',
    `natsReplicas ${replicas} needs a JetStream cluster of at least ${replicas} brokers, but the broker at ${nc.getServer()} is not in a cluster: ` +
      `set natsReplicas to 1, or run 3 or 5 clustered brokers (docs/cluster.md)`,
  );
}

/** JetStream's refusals of a replica count, explained in Hearth's terms (undefined for other errors). */
export function replicasHint(err: unknown, replicas: number): string | undefined {
  const m = (err as Error)?.message ?? '';
  if (/non-clustered mode/i.test(m)) return `natsReplicas ${replicas}: the broker is not in a cluster, so only 1 replica is possible (${m})`;
  if (/no suitable peers|insufficient resources/i.test(m)) {
    return `natsReplicas ${replicas}: JetStream found fewer than ${replicas} brokers able to hold a replica (${m}); use at most as many replicas as brokers (1, 3 or 5), or bring the missing brokers up`;
  }
  return undefined;
}

/** How long a placement refusal is tried again: a cluster that is still forming lists fewer peers. */
const PLACEMENT_WAIT_MS = 15_000;

/** Broker failures that pass by themselves: a leader election, a reconnect, an API request that timed out. */
export const TRANSIENT_BROKER =
  /timeout|timed out|no responders|503|not enabled|jetstream not|disconnect|reconnect|connection|stream not found|leader|TIMEOUT/i;

/**
 * Runs `create` again while JetStream refuses to place the bucket for want of peers, or its API
 * fails transiently (a request timing out while a just-restarted broker rejoins), for up to
 * PLACEMENT_WAIT_MS: brokers started together join their cluster over a few seconds, and a host
 * started with them must not stop for that. Past the wait the refusal stands (too few brokers).
 */
export async function whilePlacing<T>(create: () => Promise<T>): Promise<T> {
  const until = Date.now() + PLACEMENT_WAIT_MS;
  for (;;) {
    try {
      return await create();
    } catch (err) {
      const message = (err as Error)?.message ?? '';
      if (!(/no suitable peers|insufficient resources/i.test(message) || TRANSIENT_BROKER.test(message)) || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export async function ensureKv(nc: NatsConnection, spec: KvSpec, log?: BucketLogger): Promise<KV> {
  let kv: KV;
  try {
    kv = await whilePlacing(() =>
      new Kvm(nc).create(spec.name, { description: spec.description, history: spec.history, ttl: spec.maxAgeMs, replicas: spec.replicas }),
    );
  } catch (err) {
    const hint = replicasHint(err, spec.replicas);
    throw brokerError(err, `cannot create or open the JetStream key-value bucket ${spec.name}${hint ? `: ${hint}` : ''}`);
  }
  const st = await kv.status();
  const faults: string[] = [];
  if (st.history !== spec.history) faults.push(`history ${st.history} (hearth needs ${spec.history})`);
  if (st.ttl !== spec.maxAgeMs) faults.push(`max age ${st.ttl} ms (hearth needs ${spec.maxAgeMs} ms)`);
  if (faults.length) {
    throw new HearthError(
      'CONFIG',
      `the JetStream key-value bucket ${spec.name} exists with other settings: ${faults.join(', ')}; ` +
        `remove it (nats kv rm ${spec.name}) or edit it to match, then start again`,
    );
  }
  if (st.replicas !== spec.replicas)
    log?.warn({ bucket: spec.name, replicas: st.replicas, wanted: spec.replicas }, 'bucket has another replica count; keeping it');
  return kv;
}

export interface ObjectSpec {
  name: string;
  description: string;
  replicas: number;
}

export async function ensureObjectStore(nc: NatsConnection, spec: ObjectSpec, log?: BucketLogger): Promise<ObjectStore> {
  let os: ObjectStore;
  try {
    os = await whilePlacing(() => new Objm(nc).create(spec.name, { description: spec.description, replicas: spec.replicas }));
  } catch (err) {
    const hint = replicasHint(err, spec.replicas);
    throw brokerError(err, `cannot create or open the JetStream object store ${spec.name}${hint ? `: ${hint}` : ''}`);
  }
  const st = await os.status();
  if (st.ttl !== 0) {
    throw new HearthError(
      'CONFIG',
      `the JetStream object store ${spec.name} exists with a max age of ${st.ttl} ns: code bundles must not expire; remove it or edit it (max age 0), then start again`,
    );
  }
  if (st.replicas !== spec.replicas)
    log?.warn({ bucket: spec.name, replicas: st.replicas, wanted: spec.replicas }, 'object store has another replica count; keeping it');
  return os;
}

/** JetStream's "wrong last sequence": a compare-and-set lost to another writer. */
export function isCasFailure(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? '');
}

/** A broker failure as a coded error: kept when already coded, else UNAVAILABLE (503). */
export function brokerError(err: unknown, what: string): HearthError {
  if (isHearthError(err)) return err;
  return new HearthError('UNAVAILABLE', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
