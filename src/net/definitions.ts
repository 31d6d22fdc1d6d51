/**
 * Network definitions shared by the hosts of a cluster (with `--nats`; src/cluster/jetstream-networks.ts).
 * One host keeps them in its state directory (network-manager.ts) and needs none of this.
 *
 * The store holds what a user defined (name, spec, when); each host keeps its own gateway and
 * inner subnet. Contract (test/conformance/network-definitions.ts):
 * - `create` succeeds only when the name is free anywhere in the cluster, else CONFLICT;
 * - `delete` of an unknown name is NETWORK_NOT_FOUND;
 * - UNAVAILABLE (retry later) while the broker has not been reached, for writes;
 * - after a successful `create`/`delete` this host's `list()` shows it at once;
 * - `follow`: `load` with every definition once the store is attached (before any `change`), then
 *   `change` for later writes made on other hosts, one at a time, in order (this host's own writes
 *   may or may not be echoed: the follower treats a change it already has as nothing);
 *   an entry that does not parse or validate is refused (logged) and never announced.
 */
import type { NetworkSpec } from './spec.js';

export interface NetworkDefinition {
  name: string;
  /** The normalised spec (validateSpec's). */
  spec: NetworkSpec;
  createdAt: string;
}

export interface NetworkDefinitionFollower {
  load(defs: NetworkDefinition[]): Promise<void> | void;
  change(name: string, def: NetworkDefinition | undefined): Promise<void> | void;
}

export interface SharedNetworkDefinitions {
  /** Whether `load` has been delivered (the broker was reached and every definition read). */
  readonly attached: boolean;
  /** Registers the one follower; call before start(). */
  follow(f: NetworkDefinitionFollower): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every definition, as of the last `load`/`change` (empty until attached). */
  list(): NetworkDefinition[];
  create(def: NetworkDefinition): Promise<void>;
  delete(name: string): Promise<void>;
}
