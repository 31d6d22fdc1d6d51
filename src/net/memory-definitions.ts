/**
 * `SharedNetworkDefinitions` in memory, for tests: several instances on one `MemoryNetworkBus` behave
 * as the hosts of one cluster (each hears the others' writes), with the same contract as the
 * JetStream bucket (test/conformance/network-definitions.ts).
 */
import { conflict, HearthError, notFound } from '../errors.js';
import type { NetworkDefinition, NetworkDefinitionFollower, SharedNetworkDefinitions } from './definitions.js';

export class MemoryNetworkBus {
  readonly defs = new Map<string, NetworkDefinition>();
  readonly members = new Set<MemoryNetworkDefinitions>();
}

export class MemoryNetworkDefinitions implements SharedNetworkDefinitions {
  private follower: NetworkDefinitionFollower | undefined;
  private started = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** While false, writes are UNAVAILABLE and nothing is loaded (a broker not reached yet). */
  reachable = true;

  constructor(private readonly bus: MemoryNetworkBus = new MemoryNetworkBus()) {}

  get attached(): boolean {
    return this.started && this.reachable;
  }

  follow(f: NetworkDefinitionFollower): void {
    this.follower = f;
  }

  async start(): Promise<void> {
    this.started = true;
    this.bus.members.add(this);
    const all = this.list();
    await this.deliver(() => this.follower?.load(all));
  }

  async stop(): Promise<void> {
    this.started = false;
    this.bus.members.delete(this);
    await this.chain.catch(() => undefined);
  }

  /** Resolves once every change delivered so far was applied by the follower. */
  idle(): Promise<unknown> {
    return this.chain.catch(() => undefined);
  }

  list(): NetworkDefinition[] {
    return this.attached ? [...this.bus.defs.values()].sort((a, b) => a.name.localeCompare(b.name)) : [];
  }

  private deliver(fn: () => Promise<void> | void): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private up(): void {
    if (!this.attached) throw new HearthError('UNAVAILABLE', 'networks: not connected to the broker; retrying');
  }

  private tellOthers(name: string, def: NetworkDefinition | undefined): void {
    for (const m of this.bus.members) if (m !== this && m.attached) void m.deliver(() => m.follower?.change(name, def));
  }

  create(def: NetworkDefinition): Promise<void> {
    this.up();
    if (this.bus.defs.has(def.name)) return Promise.reject(conflict(`network ${def.name} already exists`));
    const copy = structuredClone(def);
    this.bus.defs.set(def.name, copy);
    this.tellOthers(def.name, copy);
    return Promise.resolve();
  }

  delete(name: string): Promise<void> {
    this.up();
    if (!this.bus.defs.delete(name)) return Promise.reject(notFound('NETWORK_NOT_FOUND', `no network named ${JSON.stringify(name)}`));
    this.tellOthers(name, undefined);
    return Promise.resolve();
  }
}
