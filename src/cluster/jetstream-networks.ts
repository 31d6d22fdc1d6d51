/**
 * Network definitions of a cluster (`SharedNetworkDefinitions`, src/net/definitions.ts) in a
 * JetStream key-value bucket, `hearth-networks`: one key per network, the definition as JSON.
 *
 * - `create` is a compare-and-set "key absent": two hosts creating one name at once, one wins and
 *   the other gets CONFLICT. `delete` is compare-and-set on the revision this host saw.
 * - Every host watches the bucket; the follower (the host's NetworkManager) hears every change,
 *   its own included, and builds or removes its own gateway.
 * - An entry that does not parse or validate is refused with a log line naming key and revision;
 *   the previous definition, if any, stays.
 * - Until the broker is first reached, writes are UNAVAILABLE and nothing is loaded; the follower
 *   gets `load` once it is, holding every definition acknowledged before (the load ends on a write
 *   of its own, `hearth.load`, coming back through the watch: KvMirror in watched-kv.ts, issue 14).
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { HearthError, notFound } from '../errors.js';
import type { NetworkDefinition, NetworkDefinitionFollower, SharedNetworkDefinitions } from '../net/definitions.js';
import { validateNetworkName, validateSpec } from '../net/spec.js';
import { brokerError, defaultReplicas, isCasFailure } from './buckets.js';
import type { ClusterConnection } from './connection.js';
import type { ClusterLogger } from './jetstream-registry.js';
import { KvMirror } from './watched-kv.js';

export interface JetStreamNetworksOptions {
  connection: Pick<ClusterConnection, 'connection' | 'onReady' | 'servers'>;
  log: ClusterLogger;
  /** Bucket name (default `hearth-networks`). */
  bucket?: string;
  /** Replicas of a new bucket (default 3 on a cluster, else 1). */
  replicas?: number;
}

export class JetStreamNetworkDefinitions implements SharedNetworkDefinitions {
  readonly bucket: string;
  private readonly mirror: KvMirror;
  private follower: NetworkDefinitionFollower | undefined;
  private readonly defs = new Map<string, NetworkDefinition>();
  private readonly revs = new Map<string, number>();
  /** The follower has had `load`: later changes go to it one by one. */
  private loaded = false;
  /** Changes are delivered one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: JetStreamNetworksOptions) {
    this.bucket = opts.bucket ?? 'hearth-networks';
    this.mirror = new KvMirror({
      connection: opts.connection,
      log: opts.log,
      spec: (nc) => ({
        name: this.bucket,
        description: 'Hearth private network definitions',
        history: 1,
        maxAgeMs: 0,
        replicas: opts.replicas ?? defaultReplicas(nc),
      }),
      onEntry: (e) => {
        const changed = this.apply(e);
        if (changed && this.loaded) void this.deliver(() => this.follower?.change(changed.name, changed.def));
      },
      onLoaded: () => {
        this.loaded = true;
        this.opts.log.info({ bucket: this.bucket, networks: this.defs.size }, 'network definitions attached to JetStream');
        const all = this.list();
        void this.deliver(() => this.follower?.load(all));
      },
    });
  }

  get attached(): boolean {
    return this.mirror.kv !== undefined;
  }

  follow(f: NetworkDefinitionFollower): void {
    this.follower = f;
  }

  async start(): Promise<void> {
    await this.mirror.start();
  }

  async stop(): Promise<void> {
    await this.mirror.stop();
    this.loaded = false;
    await this.chain;
  }

  list(): NetworkDefinition[] {
    return [...this.defs.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  private deliver(fn: () => Promise<void> | void): Promise<void> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch((err: unknown) => this.opts.log.error({ err, bucket: this.bucket }, 'network change not applied'));
    return run;
  }

  /** Applies an entry to the view; returns what changed (undefined: nothing, a repeat or a refused entry). */
  private apply(e: KvEntry): { name: string; def: NetworkDefinition | undefined } | undefined {
    const name = e.key;
    if (e.revision <= (this.revs.get(name) ?? 0)) return undefined;
    this.revs.set(name, e.revision);
    if (e.operation !== 'PUT') {
      return this.defs.delete(name) ? { name, def: undefined } : undefined;
    }
    let def: NetworkDefinition;
    try {
      let raw: unknown;
      try {
        raw = e.json();
      } catch (err) {
        throw new Error(`not JSON (${(err as Error).message})`, { cause: err });
      }
      def = parseDefinition(raw, name);
    } catch (err) {
      const prev = this.defs.has(name);
      this.opts.log.error(
        { bucket: this.bucket, key: name, revision: e.revision, reason: (err as Error).message },
        `refusing network definition ${JSON.stringify(name)} (revision ${e.revision}) from the broker: ${(err as Error).message}; ${prev ? 'the previous definition stays' : 'the network is not served'}`,
      );
      return undefined;
    }
    this.defs.set(name, def);
    return { name, def };
  }

  private requireKv(): KV {
    const kv = this.mirror.kv;
    if (!kv) throw new HearthError('UNAVAILABLE', `networks: not connected to the NATS broker (${this.opts.connection.servers.join(', ')}); retrying`);
    return kv;
  }

  async create(def: NetworkDefinition): Promise<void> {
    const kv = this.requireKv();
    try {
      const rev = await kv.create(def.name, JSON.stringify(def));
      // Seen here before the watch echoes it: list() shows it at once on this host.
      if (rev > (this.revs.get(def.name) ?? 0)) {
        this.revs.set(def.name, rev);
        this.defs.set(def.name, def);
      }
    } catch (err) {
      if (isCasFailure(err) || /key exists/i.test((err as Error)?.message ?? '')) throw new HearthError('CONFLICT', `network ${def.name} already exists`);
      throw brokerError(err, `network ${def.name}: the NATS broker did not store it`);
    }
  }

  async delete(name: string): Promise<void> {
    const kv = this.requireKv();
    if (!this.defs.has(name)) throw notFound('NETWORK_NOT_FOUND', `no network named ${JSON.stringify(name)}`);
    try {
      await kv.delete(name, { previousSeq: this.revs.get(name) ?? 0 });
    } catch (err) {
      if (isCasFailure(err))
        throw new HearthError('CONFLICT', `network ${name} was changed on another host at the same time; nothing was changed here, try again`);
      throw brokerError(err, `network ${name}: the NATS broker did not delete it`);
    }
    this.defs.delete(name);
  }
}

/** A definition read from the broker, checked as if a user had submitted it. Throws with the reason. */
export function parseDefinition(raw: unknown, key: string): NetworkDefinition {
  if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
  const o = raw as Record<string, unknown>;
  if (o['name'] !== key) throw new Error(`it names network ${JSON.stringify(o['name'])}`);
  validateNetworkName(key);
  if (typeof o['createdAt'] !== 'string' || Number.isNaN(Date.parse(o['createdAt']))) throw new Error('createdAt is not a date');
  const spec = validateSpec(o['spec']).spec;
  return { name: key, spec, createdAt: o['createdAt'] };
}
