/**
 * Networks as a resource: definitions persisted under <stateDir>/networks/<name>.json, one gateway
 * per network (gateway.ts), instance namespaces prepared on demand.
 *
 * Life: construct -> start() (removes gateways of unknown networks left by a crashed daemon, adopts
 * intact ones of defined networks, rebuilds the rest) -> stop() (releases every instance namespace,
 * removes every gateway; the definitions stay). stop() is safe after a failed or partial start().
 * create/delete/start/stop are serialised; prepareInstanceNetns may run concurrently with anything.
 *
 * Many hosts (`shared`, --nats): definitions live in the cluster (definitions.ts), the files are this
 * host's cache (with its own inner subnets). A network created elsewhere is listed at once
 * (`pending`) and gets its gateway here at first use, from the spec with this host's address
 * (`hostAddresses`, spec.ts); one deleted elsewhere loses its gateway here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';

import { systemClock, type Clock } from '../clock.js';
import { conflict, HearthError, notFound } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { DEFAULT_INNER_POOL, parsePool, type InnerPoolConfig } from './address-plan.js';
import { Gateway, type InstanceNetns } from './gateway.js';
import { runNft, type NftRunner } from './nft-runner.js';
import { formatPrefix, parseCidr, type Prefix } from './ipv4.js';
import { loadNetBinding, type NetBinding } from './native-binding.js';
import { specForHost, validateNetworkName, validateSpec, type NetworkSpec } from './spec.js';
import type { NetworkDefinition, SharedNetworkDefinitions } from './definitions.js';
import { readDefinitionFiles, removeDefinitionFile, writeDefinitionFile, type PersistedNetwork } from './definition-files.js';

export type { NetworkSpec } from './spec.js';
export type { InstanceNetns } from './gateway.js';

export interface NetworkRecord {
  name: string;
  /** The normalised definition (allow filled in, prefixes canonical). */
  spec: NetworkSpec;
  /** The instances' subnet inside the gateway ("100.96.0.0/22"). */
  innerSubnet: string;
  /**
   * 'failed' when the gateway could not be (re)built (see error); prepare then fails. 'pending'
   * (many hosts only): defined in the cluster, no gateway on this host yet; built at first use.
   */
  state: 'ready' | 'failed' | 'pending';
  error?: string;
  /** Instance namespaces currently handed out. */
  instances: number;
  capacity: number;
  createdAt: string;
}

export interface NetworkManagerOptions {
  /** Definitions go to <stateDir>/networks/. */
  stateDir: string;
  /** Gateway namespaces are bind-mounted at <runDir>/netns/<network>. Default /run/hearth. */
  runDir?: string;
  innerPool?: InnerPoolConfig;
  binding?: NetBinding;
  nft?: NftRunner;
  log?: Logger;
  clock?: Clock;
  /** Bound on waits for link state (default 3000 ms). */
  linkTimeoutMs?: number;
  /** Many hosts: the cluster's definitions (started and stopped with this manager). */
  shared?: SharedNetworkDefinitions;
  /** Many hosts: this host's id, which picks its gateway address from a spec's `hostAddresses`. */
  hostId?: string;
}

type Persisted = PersistedNetwork;

interface Entry {
  persisted: Persisted;
  gateway?: Gateway;
  error?: string;
}

/**
 * Name of the outer leg's peer in the attach namespace (often the host's, shared by every daemon):
 * `hg` + 10 hex digits of sha256(scope, network), 12 chars (IFNAMSIZ allows 15). The scope is the
 * daemon's runtime dir, so two daemons on one host with a network of the same name get distinct
 * peers; stable across restarts of one daemon (adoption after a crash finds its peer).
 */
export function outerPeerName(network: string, scope: string): string {
  return `hg${createHash('sha256').update(`${scope}\n${network}`).digest('hex').slice(0, 10)}`;
}

export class NetworkManager {
  private readonly networksDir: string;
  private readonly netnsDir: string;
  /** The runtime dir, which scopes host-visible names (outerPeerName) to this manager. */
  private readonly scope: string;
  private readonly pool: InnerPoolConfig;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly nft: NftRunner;
  private readonly linkTimeoutMs: number;
  private bindingValue: NetBinding | undefined;
  private readonly entries = new Map<string, Entry>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: NetworkManagerOptions) {
    this.networksDir = path.join(opts.stateDir, 'networks');
    this.scope = path.resolve(opts.runDir ?? '/run/hearth');
    this.netnsDir = path.join(this.scope, 'netns');
    this.pool = opts.innerPool ?? DEFAULT_INNER_POOL;
    parsePool(this.pool);
    this.log = (opts.log ?? silentLogger()).child({ component: 'net' });
    this.clock = opts.clock ?? systemClock;
    this.nft = opts.nft ?? runNft;
    this.linkTimeoutMs = opts.linkTimeoutMs ?? 3000;
    this.bindingValue = opts.binding;
    this.shared = opts.shared;
    this.hostId = opts.hostId;
  }

  private readonly shared: SharedNetworkDefinitions | undefined;
  private readonly hostId: string | undefined;

  private get binding(): NetBinding {
    if (!this.bindingValue) {
      try {
        this.bindingValue = loadNetBinding();
      } catch (e) {
        throw new HearthError('UNAVAILABLE', `private networks are unavailable: ${(e as Error).message}`, { cause: e });
      }
    }
    return this.bindingValue;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Name of the outer leg's peer of `network`'s gateway in its attach namespace. */
  peerName(network: string): string {
    return outerPeerName(network, this.scope);
  }

  private netnsPath(name: string): string {
    return path.join(this.netnsDir, name);
  }

  /**
   * Removes gateway namespaces of unknown networks (a crashed daemon's), takes over intact
   * gateways of defined networks (a crash leaves them running) and rebuilds the others.
   */
  start(): Promise<void> {
    return this.serial(async () => {
      const defined = readDefinitionFiles(this.networksDir, this.log);
      this.cleanupAllNow(new Set(defined.map((d) => d.name)));
      for (const persisted of defined) {
        const entry: Entry = { persisted };
        this.entries.set(persisted.name, entry);
        try {
          const preferred = parseCidr(persisted.innerSubnet, { strict: true })?.prefix;
          entry.gateway = await this.buildGateway(persisted.name, persisted.spec, preferred, true);
          entry.persisted = { ...persisted, innerSubnet: formatPrefix(entry.gateway.innerSubnet) };
          if (entry.persisted.innerSubnet !== persisted.innerSubnet) writeDefinitionFile(this.networksDir, entry.persisted);
        } catch (e) {
          entry.error = (e as Error).message;
          this.log.error({ err: e, network: persisted.name }, 'cannot rebuild gateway');
        }
      }
    }).then(async () => {
      if (!this.shared) return;
      this.shared.follow({
        load: (defs) => this.serial(() => this.loadShared(defs)),
        change: (name, def) => this.serial(() => this.applyShared(name, def)),
      });
      await this.shared.start();
    });
  }

  /** The cluster's definitions, once read: this host drops what is gone and lists what is new. */
  private async loadShared(defs: NetworkDefinition[]): Promise<void> {
    const names = new Set(defs.map((d) => d.name));
    for (const name of [...this.entries.keys()]) if (!names.has(name)) await this.applyShared(name, undefined);
    for (const d of defs) await this.applyShared(d.name, d);
  }

  /** A definition made, changed or removed on another host (or found at load). */
  private async applyShared(name: string, def: NetworkDefinition | undefined): Promise<void> {
    const entry = this.entries.get(name);
    if (entry && def && JSON.stringify(entry.persisted.spec) === JSON.stringify(def.spec)) return;
    if (entry) {
      this.log.info({ network: name }, `network ${def ? 'redefined' : 'deleted'} in the cluster; its gateway here is removed`);
      await this.dropLocal(name, entry);
    }
    if (def) this.entries.set(name, { persisted: { name, spec: def.spec, innerSubnet: '', createdAt: def.createdAt } });
  }

  /** Removes this host's gateway of a network (instances released) and its cached definition. */
  private async dropLocal(name: string, entry: Entry): Promise<void> {
    try {
      await entry.gateway?.destroy();
    } catch (e) {
      this.log.error({ err: e, network: name }, 'gateway removal failed');
    }
    this.entries.delete(name);
    removeDefinitionFile(this.networksDir, name);
  }

  /** Releases every instance namespace and removes every gateway. Definitions are kept. */
  async stop(): Promise<void> {
    await this.shared?.stop();
    return this.serial(async () => {
      for (const [name, entry] of this.entries) {
        try {
          await entry.gateway?.destroy();
        } catch (e) {
          this.log.error({ err: e, network: name }, 'gateway removal failed');
        }
      }
      this.entries.clear();
      this.cleanupAllNow();
    });
  }

  /**
   * Removes every gateway namespace under <runDir>/netns, whatever made it (a crashed run of this
   * daemon: the runtime dir is per daemon, so another daemon's gateways are never touched): outer
   * legs, rules and instance links go with their namespace.
   */
  cleanupAll(): Promise<void> {
    return this.serial(async () => this.cleanupAllNow());
  }

  /** Removes gateway namespaces not held by a live gateway here (and not in `keep`). */
  private cleanupAllNow(keep: Set<string> = new Set()): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.netnsDir);
    } catch {
      return;
    }
    const live = new Set([...this.entries.values()].filter((e) => e.gateway).map((e) => e.persisted.name));
    for (const n of names) {
      if (keep.has(n)) continue;
      if (live.has(n)) continue;
      this.log.info({ netns: this.netnsPath(n) }, 'removing leftover gateway namespace');
      Gateway.removeNetns(this.binding, this.netnsPath(n), undefined, this.log);
    }
  }

  private takenSubnets(except?: string): Prefix[] {
    const out: Prefix[] = [];
    for (const [n, e] of this.entries) {
      if (n === except) continue;
      const p = e.gateway?.innerSubnet ?? parseCidr(e.persisted.innerSubnet, { strict: true })?.prefix;
      if (p) out.push(p);
    }
    return out;
  }

  /** Builds a gateway; with `adopt`, first tries to take over one a previous daemon left behind. */
  private async buildGateway(name: string, spec: NetworkSpec, preferred: Prefix | undefined, adopt = false): Promise<Gateway> {
    const validated = validateSpec(specForHost(spec, this.hostId));
    const deps = { binding: this.binding, nft: this.nft, log: this.log, linkTimeoutMs: this.linkTimeoutMs };
    const plan = {
      network: name,
      validated,
      netnsPath: this.netnsPath(name),
      peerName: this.peerName(name),
      pool: this.pool,
      takenSubnets: this.takenSubnets(name),
      ...(preferred ? { preferredSubnet: preferred } : {}),
    };
    if (adopt) {
      const adopted = await Gateway.adopt(deps, plan);
      if (adopted) return adopted;
    }
    if (fs.existsSync(plan.netnsPath)) Gateway.removeNetns(this.binding, plan.netnsPath, undefined, this.log);
    return Gateway.build(deps, plan);
  }

  /**
   * Creates a network and its gateway. BAD_REQUEST: invalid spec, missing bridge/namespace,
   * colliding addresses; CONFLICT: the name is taken, or another network already holds this
   * address on the same attach point. Nothing is left behind on failure.
   */
  create(name: string, spec: NetworkSpec): Promise<NetworkRecord> {
    return this.serial(async () => {
      validateNetworkName(name);
      const validated = validateSpec(spec);
      if (this.entries.has(name)) throw conflict(`network ${name} already exists`);
      const mine = specForHost(validated.spec, this.hostId);
      for (const [other, e] of this.entries) {
        const s = specForHost(e.persisted.spec, this.hostId);
        if (s.attach.bridge === mine.attach.bridge && s.attach.netns === mine.attach.netns && s.address.split('/')[0] === mine.address.split('/')[0]) {
          throw conflict(`address ${mine.address.split('/')[0]} on bridge ${s.attach.bridge} is already used by network ${other}`);
        }
      }
      const gateway = await this.buildGateway(name, validated.spec, undefined);
      const persisted: Persisted = {
        name,
        spec: validated.spec,
        innerSubnet: formatPrefix(gateway.innerSubnet),
        createdAt: new Date(this.clock.now()).toISOString(),
      };
      try {
        writeDefinitionFile(this.networksDir, persisted);
      } catch (e) {
        await gateway.destroy();
        throw new HearthError('INTERNAL', `cannot persist network ${name}: ${(e as Error).message}`, { cause: e });
      }
      if (this.shared) {
        // The cluster decides: another host may have taken the name (CONFLICT), or the broker is away (UNAVAILABLE).
        try {
          await this.shared.create({ name, spec: persisted.spec, createdAt: persisted.createdAt });
        } catch (e) {
          await gateway.destroy();
          removeDefinitionFile(this.networksDir, name);
          throw e;
        }
      }
      const entry: Entry = { persisted, gateway };
      this.entries.set(name, entry);
      return this.record(entry);
    });
  }

  /**
   * Deletes a network: its gateway and definition. CONFLICT while instance namespaces of it are
   * handed out, unless force (then they are released: their fds closed, their links deleted).
   */
  delete(name: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.serial(async () => {
      const entry = this.entries.get(name);
      if (!entry) throw notFound('NETWORK_NOT_FOUND', `no network named ${JSON.stringify(name)}`);
      const busy = entry.gateway?.instances ?? 0;
      if (busy > 0 && !opts.force) throw conflict(`network ${name} has ${busy} instance namespace(s) in use`);
      await this.shared?.delete(name);
      await entry.gateway?.destroy();
      this.entries.delete(name);
      removeDefinitionFile(this.networksDir, name);
    });
  }

  list(): NetworkRecord[] {
    return [...this.entries.values()].map((e) => this.record(e)).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): NetworkRecord | undefined {
    const e = this.entries.get(name);
    return e ? this.record(e) : undefined;
  }

  private record(e: Entry): NetworkRecord {
    return {
      name: e.persisted.name,
      spec: e.persisted.spec,
      innerSubnet: e.persisted.innerSubnet,
      state: e.gateway ? 'ready' : e.error !== undefined || !this.shared ? 'failed' : 'pending',
      ...(e.error !== undefined && !e.gateway ? { error: e.error } : {}),
      instances: e.gateway?.instances ?? 0,
      capacity: e.gateway?.capacity ?? 0,
      createdAt: e.persisted.createdAt,
    };
  }

  /**
   * Prepares (off the request path: ~1-2 ms of netlink on a pool thread) a network namespace
   * connected to the gateway of `name`, its link up. The caller owns the result until release():
   * it setns()es into netnsFd (never closes it) and calls release() when the instance is gone.
   * NETWORK_NOT_FOUND: no such network; UNAVAILABLE: its gateway failed or it is full.
   */
  async prepareInstanceNetns(name: string): Promise<InstanceNetns> {
    let entry = this.entries.get(name);
    if (!entry) throw notFound('NETWORK_NOT_FOUND', `no network named ${JSON.stringify(name)}`);
    if (!entry.gateway && this.shared) {
      // Many hosts: this host's gateway of a cluster network is built when first needed (and retried after a failure).
      await this.serial(() => this.ensureGateway(name));
      entry = this.entries.get(name);
      if (!entry) throw notFound('NETWORK_NOT_FOUND', `no network named ${JSON.stringify(name)}`);
    }
    if (!entry.gateway) throw new HearthError('UNAVAILABLE', `network ${name} has no gateway: ${entry.error ?? 'not built'}`);
    return entry.gateway.prepareInstance();
  }

  private async ensureGateway(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry || entry.gateway) return;
    try {
      const preferred = entry.persisted.innerSubnet ? parseCidr(entry.persisted.innerSubnet, { strict: true })?.prefix : undefined;
      entry.gateway = await this.buildGateway(name, entry.persisted.spec, preferred, true);
      entry.error = undefined;
      entry.persisted = { ...entry.persisted, innerSubnet: formatPrefix(entry.gateway.innerSubnet) };
      writeDefinitionFile(this.networksDir, entry.persisted);
      this.log.info({ network: name, innerSubnet: entry.persisted.innerSubnet }, 'gateway built for a network of the cluster');
    } catch (e) {
      entry.error = (e as Error).message;
      this.log.error({ err: e, network: name }, 'cannot build gateway');
    }
  }
}
