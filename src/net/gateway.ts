/**
 * One gateway: a network namespace per network, made once when the network is created.
 *
 *   attach ns (host or /run/netns/NS)   gateway ns (/run/hearth/netns/<network>)      instance ns (fd only)
 *   bridge BR ── hg<hash> ═══ veth ═══ outer  (address, routes)
 *                                      inner  (bridge, 1st inner address) ── i<n> ═══ veth ═══ eth0 (<n>th address/32,
 *                                        └─ anchor ═══ anchor-peer (keeps the bridge UP)           default via inner)
 *
 * Instances hold a /32 with an on-link default route via the inner address; every inner address has
 * a fixed MAC (macForAddress) and both sides get PERMANENT neighbour entries, so no ARP runs and
 * nothing counts against the kernel's neighbour table limits, which are global across namespaces.
 * Instance ports on `inner` are isolated bridge ports (IFLA_BRPORT_ISOLATED): they can reach the
 * bridge itself (the gateway) but not each other, without br_netfilter. The nftables table
 * (ruleset.ts) forwards only instance -> allowed destination flows, SNATs them to `address` and
 * lets replies back. Per-instance work is one in-process netlink call (connectInstanceAsync).
 */
import fs from 'node:fs';
import path from 'node:path';
import { HearthError, badRequest } from '../errors.js';
import type { Logger } from '../log.js';
import { addressPrefixes, allocateInnerSubnet, InstanceAddresses, type InnerPoolConfig } from './address-plan.js';
import { ANCHOR_IF, attachNetnsPath, errCode, INNER_IF, INSTANCE_IF, macForAddress, OUTER_IF, removeGatewayNetns } from './gateway-netns.js';
import { containsPrefix, formatIp, formatPrefix, parseIp, type Prefix } from './ipv4.js';
import { connectInstanceReady, waitLinksUp, waitLinkUp } from './link-wait.js';
import type { NetBinding } from './native-binding.js';
import type { NftRunner } from './nft-runner.js';
import { buildRuleset } from './ruleset.js';
import type { ValidatedSpec } from './spec.js';

export { ANCHOR_IF, INNER_IF, INSTANCE_IF, macForAddress, OUTER_IF } from './gateway-netns.js';

/** A prepared instance namespace, owned by whoever holds it until release(). */
export interface InstanceNetns {
  /** Network namespace fd (O_CLOEXEC). Owned by the lease: setns() into it, never close it. */
  readonly netnsFd: number;
  /** The instance's address, taken from the gateway's inner subnet, as it holds it ("100.96.0.7/32"). */
  readonly address: string;
  /** Deletes the veth and closes netnsFd; idempotent. */
  release(): Promise<void>;
}

export interface GatewayDeps {
  binding: NetBinding;
  nft: NftRunner;
  log: Logger;
  /** Upper bound for waits on link state. */
  linkTimeoutMs: number;
}

export interface GatewayPlan {
  network: string;
  validated: ValidatedSpec;
  /** Bind mount of the gateway namespace. */
  netnsPath: string;
  /** Name of the outer leg's peer in the attach namespace. */
  peerName: string;
  pool: InnerPoolConfig;
  /** Inner subnets other gateways hold. */
  takenSubnets: Prefix[];
  /** Inner subnet to reuse if still free (after a restart). */
  preferredSubnet?: Prefix;
}

export class Gateway {
  private readonly leases = new Map<number, InstanceNetns>();
  /** Native work in flight that uses netnsFd; destroy() waits for it before closing the fd. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Released instance veths waiting for deletion, and the batch deleting them. */
  private readonly doomed: Array<{ name: string; n: number }> = [];
  private reaping: Promise<void> | undefined;
  private destroyed = false;
  private constructor(
    private readonly deps: GatewayDeps,
    readonly network: string,
    readonly netnsPath: string,
    readonly netnsFd: number,
    readonly innerSubnet: Prefix,
    private readonly addresses: InstanceAddresses,
    private readonly bridgeIndex: number,
  ) {}

  get instances(): number {
    return this.leases.size;
  }
  get capacity(): number {
    return this.addresses.capacity;
  }

  /**
   * Builds the gateway. Throws BAD_REQUEST for problems in the spec or the environment (missing
   * bridge or namespace, colliding addresses); anything built is removed again before it throws.
   */
  static async build(deps: GatewayDeps, plan: GatewayPlan): Promise<Gateway> {
    const { binding, log } = deps;
    const v = plan.validated;
    const spec = v.spec;
    const undo: Array<() => void> = [];
    const rollback = (): void => {
      for (const u of undo.reverse()) {
        try {
          u();
        } catch (e) {
          log.warn({ err: e, network: plan.network }, 'gateway rollback step failed');
        }
      }
    };
    let attachFd = -1;
    try {
      const attachPath = attachNetnsPath(spec.attach.netns);
      try {
        attachFd = binding.openNetns(attachPath);
      } catch (e) {
        throw badRequest(`attach.netns ${JSON.stringify(spec.attach.netns)}: no such network namespace (${attachPath})`);
      }
      const bridge = binding.getLink(attachFd, spec.attach.bridge);
      if (!bridge)
        throw badRequest(
          `attach.bridge ${spec.attach.bridge}: no such interface in ${spec.attach.netns ? `netns ${spec.attach.netns}` : 'the host namespace'}`,
        );
      if (bridge.kind !== 'bridge') throw badRequest(`attach.bridge ${spec.attach.bridge} is a ${bridge.kind || 'plain'} interface, not a bridge`);

      const attachAddrs = binding.listAddresses(attachFd).map((a) => ({ address: parseIp(a.address)!, prefixLen: a.prefixLen }));
      if (attachAddrs.some((a) => a.address === v.address)) {
        throw badRequest(`address ${formatIp(v.address)} is already used in the attach namespace`);
      }
      const hostAddrs =
        spec.attach.netns === undefined ? attachAddrs : binding.listAddresses(-1).map((a) => ({ address: parseIp(a.address)!, prefixLen: a.prefixLen }));

      const avoid: Prefix[] = [
        ...plan.takenSubnets,
        ...v.routes,
        ...v.allow.map((a) => a.prefix),
        v.connected,
        ...addressPrefixes(hostAddrs),
        ...addressPrefixes(attachAddrs),
      ];
      const inner =
        plan.preferredSubnet && !avoid.some((p) => p.len > 0 && (containsPrefix(p, plan.preferredSubnet!) || containsPrefix(plan.preferredSubnet!, p)))
          ? plan.preferredSubnet
          : allocateInnerSubnet(plan.pool, avoid);
      const addresses = new InstanceAddresses(inner);

      // A peer of ours left by a crash (its namespace was still being torn down): remove it.
      if (binding.getLink(attachFd, plan.peerName)) binding.deleteLink(attachFd, plan.peerName);

      const nsFd = binding.createNetns();
      undo.push(() => fs.closeSync(nsFd));
      fs.mkdirSync(path.dirname(plan.netnsPath), { recursive: true, mode: 0o755 });
      fs.writeFileSync(plan.netnsPath, '', { flag: 'wx', mode: 0o444 });
      undo.push(() => fs.unlinkSync(plan.netnsPath));
      binding.bindMount(`/proc/self/fd/${nsFd}`, plan.netnsPath);
      undo.push(() => binding.unmount(plan.netnsPath));

      binding.writeSysctl(nsFd, '/proc/sys/net/ipv6/conf/default/disable_ipv6', '1');
      binding.writeSysctl(nsFd, '/proc/sys/net/ipv6/conf/all/disable_ipv6', '1');
      binding.writeSysctl(nsFd, '/proc/sys/net/ipv4/conf/all/send_redirects', '0');
      binding.writeSysctl(nsFd, '/proc/sys/net/ipv4/conf/default/send_redirects', '0');
      binding.setLink(nsFd, 'lo', { up: true });

      // Inner side: a bridge with a fixed MAC (a bridge otherwise takes its ports' lowest MAC and
      // instances' neighbour entries would go stale) and an anchor port that keeps it UP with no
      // instance attached (else the first instance waits for the bridge's carrier).
      const g = addresses.gatewayAddress;
      const mac = macForAddress(g);
      binding.createBridge(nsFd, INNER_IF, mac);
      binding.createVeth(nsFd, ANCHOR_IF, -1, `${ANCHOR_IF}-peer`); // a veth: `dummy` may not be built into the kernel
      binding.setLink(nsFd, `${ANCHOR_IF}-peer`, { up: true });
      binding.setLink(nsFd, ANCHOR_IF, { master: INNER_IF, up: true });
      binding.setBridgePortIsolated(nsFd, ANCHOR_IF, true);
      binding.addAddress(nsFd, INNER_IF, formatIp(g), inner.len);
      binding.setLink(nsFd, INNER_IF, { up: true });

      // Outer leg.
      binding.createVeth(nsFd, OUTER_IF, attachFd, plan.peerName);
      undo.push(() => binding.deleteLink(nsFd, OUTER_IF)); // takes the peer with it, synchronously
      binding.setLink(attachFd, plan.peerName, { master: spec.attach.bridge, up: true });
      binding.addAddress(nsFd, OUTER_IF, formatIp(v.address), v.connected.len);
      binding.setLink(nsFd, OUTER_IF, { up: true });
      for (const r of v.routes) {
        if (containsPrefix(v.connected, r)) continue; // directly connected
        binding.addRoute(nsFd, formatIp(r.base), r.len, formatIp(v.gateway!), OUTER_IF);
      }

      await deps.nft(
        plan.netnsPath,
        buildRuleset({
          innerIf: INNER_IF,
          outerIf: OUTER_IF,
          innerSubnet: inner,
          outerAddress: v.address,
          allow: v.allow,
          deny: hostAddrs.map((a) => a.address),
        }),
      );
      binding.writeSysctl(nsFd, '/proc/sys/net/ipv4/ip_forward', '1'); // only once the rules stand

      await waitLinksUp(
        binding,
        [
          { nsFd, name: INNER_IF, forwarding: false },
          { nsFd, name: OUTER_IF, forwarding: false },
        ],
        deps.linkTimeoutMs,
      );
      try {
        await waitLinkUp(binding, attachFd, plan.peerName, true, deps.linkTimeoutMs);
      } catch (e) {
        // A bridge running STP keeps new ports learning for its forward delay; not our failure.
        if (errCode(e) !== 'ETIMEDOUT') throw e;
        log.warn({ network: plan.network, bridge: spec.attach.bridge }, 'outer port not forwarding yet (STP on the attach bridge?)');
      }
      const bridgeIndex = binding.getLink(nsFd, INNER_IF)!.index;
      log.info({ network: plan.network, inner: formatPrefix(inner), netns: plan.netnsPath }, 'gateway up');
      return new Gateway(deps, plan.network, plan.netnsPath, nsFd, inner, addresses, bridgeIndex);
    } catch (e) {
      rollback();
      if (e instanceof HearthError) throw e;
      const code = errCode(e);
      if (code === 'EEXIST' || code === 'EADDRINUSE') {
        throw badRequest(`cannot build the gateway for network ${plan.network}: ${(e as Error).message}`, e);
      }
      throw new HearthError('INTERNAL', `cannot build the gateway for network ${plan.network}: ${(e as Error).message}`, { cause: e });
    } finally {
      if (attachFd >= 0) fs.closeSync(attachFd);
    }
  }

  /**
   * Takes over a gateway a previous daemon left at plan.netnsPath (after a crash) when it is
   * intact: same outer address, inner subnet (plan.preferredSubnet) and attach bridge, and no
   * instance ports left (their holders may still be running). Re-applies rules and sysctls.
   * Returns undefined when there is nothing to adopt or it does not match; the caller then
   * removes it and builds anew.
   */
  static async adopt(deps: GatewayDeps, plan: GatewayPlan): Promise<Gateway | undefined> {
    const { binding, log } = deps;
    const v = plan.validated;
    const inner = plan.preferredSubnet;
    if (!inner || !fs.existsSync(plan.netnsPath)) return undefined;
    let fd = -1;
    let attachFd = -1;
    let adopted: Gateway | undefined;
    try {
      fd = binding.openNetns(plan.netnsPath);
      attachFd = binding.openNetns(attachNetnsPath(v.spec.attach.netns));
      const links = binding.listLinks(fd);
      const byName = new Map(links.map((l) => [l.name, l]));
      const outer = byName.get(OUTER_IF);
      const br = byName.get(INNER_IF);
      const anchor = byName.get(ANCHOR_IF);
      const bridge = binding.getLink(attachFd, v.spec.attach.bridge);
      const peer = binding.getLink(attachFd, plan.peerName);
      const addrs = binding.listAddresses(fd);
      const addresses = new InstanceAddresses(inner);
      const intact =
        outer !== undefined &&
        br?.kind === 'bridge' &&
        anchor?.master === br.index &&
        bridge?.kind === 'bridge' &&
        peer?.master === bridge.index &&
        !links.some((l) => /^i[0-9]+$/.test(l.name)) &&
        addrs.some((a) => a.index === outer.index && a.address === formatIp(v.address) && a.prefixLen === v.connected.len) &&
        addrs.some((a) => a.index === br.index && a.address === formatIp(addresses.gatewayAddress) && a.prefixLen === inner.len);
      if (!intact) return undefined;
      const hostAddrs = binding.listAddresses(-1).map((a) => parseIp(a.address)!);
      await deps.nft(
        plan.netnsPath,
        buildRuleset({ innerIf: INNER_IF, outerIf: OUTER_IF, innerSubnet: inner, outerAddress: v.address, allow: v.allow, deny: hostAddrs }),
      );
      binding.writeSysctl(fd, '/proc/sys/net/ipv4/ip_forward', '1');
      log.info({ network: plan.network, inner: formatPrefix(inner), netns: plan.netnsPath }, 'gateway adopted');
      adopted = new Gateway(deps, plan.network, plan.netnsPath, fd, inner, addresses, br.index);
      return adopted;
    } catch (e) {
      log.warn({ err: e, network: plan.network }, 'cannot adopt the existing gateway; rebuilding it');
      return undefined;
    } finally {
      if (!adopted && fd >= 0) fs.closeSync(fd);
      if (attachFd >= 0) fs.closeSync(attachFd);
    }
  }

  /** A new instance namespace connected to this gateway (link up before it resolves). */
  async prepareInstance(): Promise<InstanceNetns> {
    if (this.destroyed) throw new HearthError('UNAVAILABLE', `network ${this.network} is being removed`);
    const n = this.addresses.take();
    if (n === undefined) throw new HearthError('UNAVAILABLE', `network ${this.network} has no free instance address (${this.capacity} in use)`);
    const gwIfName = `i${n}`;
    const address = this.addresses.address(n);
    let res;
    try {
      res = await this.track(
        connectInstanceReady(
          this.deps.binding,
          {
            gwNetnsFd: this.netnsFd,
            bridgeIndex: this.bridgeIndex,
            gwIfName,
            instIfName: INSTANCE_IF,
            address: formatIp(address),
            gateway: formatIp(this.addresses.gatewayAddress),
          },
          this.deps.linkTimeoutMs,
        ),
      );
    } catch (e) {
      this.addresses.give(n);
      throw new HearthError('INTERNAL', `cannot connect an instance to network ${this.network}: ${(e as Error).message}`, { cause: e });
    }
    if (this.destroyed) {
      fs.closeSync(res.netnsFd); // the gateway namespace (and the veth in it) is gone or going
      throw new HearthError('UNAVAILABLE', `network ${this.network} was removed`);
    }
    let released = false;
    const lease: InstanceNetns = {
      netnsFd: res.netnsFd,
      address: `${formatIp(address)}/32`,
      release: async () => {
        if (released) return;
        released = true;
        this.leases.delete(n);
        fs.closeSync(res.netnsFd);
        if (this.destroyed) return; // the gateway namespace takes every veth with it
        this.doomed.push({ name: gwIfName, n });
        await this.reap();
      },
    };
    this.leases.set(n, lease);
    return lease;
  }

  /**
   * Deletes released instance veths in batches: a veth deletion waits for RCU grace periods in
   * the kernel (~30 ms here), once per batch instead of once per link. An address is reused only
   * after its veth is gone. Resolves when everything queued so far is deleted.
   */
  private reap(): Promise<void> {
    this.reaping ??= (async () => {
      while (this.doomed.length > 0 && !this.destroyed) {
        const batch = this.doomed.splice(0);
        try {
          await this.track(
            this.deps.binding.deleteLinksAsync(
              this.netnsFd,
              batch.map((b) => b.name),
            ),
          );
          for (const b of batch) this.addresses.give(b.n);
        } catch (e) {
          this.deps.log.warn({ err: e, network: this.network, links: batch.length }, 'instance veths not deleted; their addresses stay out of use');
        }
      }
    })().finally(() => {
      this.reaping = undefined;
    });
    return this.reaping;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = (): void => void this.inFlight.delete(p);
    void p.then(done, done);
    return p;
  }

  /** Releases every instance lease (their fds are closed). */
  async releaseAll(): Promise<void> {
    for (const l of [...this.leases.values()]) await l.release();
  }

  /** Removes the namespace, its links (the outer peer leaves the attach bridge now) and rules. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.releaseAll(); // closes fds only: the namespace's removal takes the veths
    await Promise.allSettled([...this.inFlight]);
    Gateway.removeNetns(this.deps.binding, this.netnsPath, this.netnsFd, this.deps.log);
    fs.closeSync(this.netnsFd);
  }

  /** Removes a gateway namespace bind-mounted at netnsPath (gateway-netns.ts removeGatewayNetns). */
  static removeNetns(binding: NetBinding, netnsPath: string, fd: number | undefined, log: Logger): void {
    removeGatewayNetns(binding, netnsPath, fd, log);
  }
}
