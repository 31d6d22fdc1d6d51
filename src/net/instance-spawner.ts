/**
 * The pool's `Spawner` with private networks: an instance without a network is spawned by the
 * sandbox driver as is; one on a network gets its network namespace prepared first (a veth joined
 * to the network's gateway, see NetworkManager.prepareInstanceNetns), the runtime starts inside
 * it, and the lease is released (veth removed) when the process is gone or the spawn failed.
 *
 * Errors: UNAVAILABLE when networks are disabled on this host (the reason is named), otherwise
 * whatever preparing the namespace or spawning throws. Spawns may run concurrently.
 */
import type { Logger } from '../log.js';
import type { Spawner } from '../pool/types.js';
import type { Runtime } from '../runtimes/types.js';
import type { InstanceLimits, SandboxProcess } from '../sandbox/types.js';
import type { InstanceSpawnOptions } from '../sandbox/sandbox-driver.js';
import { HearthError } from '../errors.js';
import type { InstanceNetns } from './gateway.js';

/** The sandbox driver's spawning part (src/sandbox/sandbox-driver.ts). */
export interface InstanceSandbox {
  spawnNode(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess>;
  spawnPython(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess>;
  spawnProvided(id: string, limits: InstanceLimits, opts?: InstanceSpawnOptions): Promise<SandboxProcess>;
}

/** The network manager's part (src/net/network-manager.ts). */
export interface InstanceNetworks {
  prepareInstanceNetns(network: string): Promise<InstanceNetns>;
}

export interface InstanceSpawnerOptions {
  sandbox: InstanceSandbox;
  networks: InstanceNetworks;
  /** Why private networks are unavailable here (e.g. nftables missing); unset when they work. */
  networksDisabled?: string;
  log: Logger;
}

export class InstanceSpawner implements Spawner {
  constructor(private readonly opts: InstanceSpawnerOptions) {}

  async spawn(runtime: Runtime, id: string, limits: InstanceLimits, opts?: { network?: string; forRequest?: boolean }): Promise<SandboxProcess> {
    const base: InstanceSpawnOptions = { forRequest: opts?.forRequest === true };
    if (!opts?.network) return this.start(runtime, id, limits, base);
    if (this.opts.networksDisabled !== undefined) {
      throw new HearthError('UNAVAILABLE', `private networks are unavailable: ${this.opts.networksDisabled}`);
    }
    const lease = await this.opts.networks.prepareInstanceNetns(opts.network);
    try {
      const proc = await this.start(runtime, id, limits, { ...base, netnsFd: lease.netnsFd });
      void proc.exited.finally(() => lease.release().catch((err: unknown) => this.opts.log.error({ err, instance: id }, 'cannot release instance network')));
      return proc;
    } catch (err) {
      await lease.release().catch(() => undefined);
      throw err;
    }
  }

  private start(runtime: Runtime, id: string, limits: InstanceLimits, opts: InstanceSpawnOptions): Promise<SandboxProcess> {
    const sb = this.opts.sandbox;
    if (runtime === 'node') return sb.spawnNode(id, limits, opts);
    return runtime === 'provided' ? sb.spawnProvided(id, limits, opts) : sb.spawnPython(id, limits, opts);
  }
}
