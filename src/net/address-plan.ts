/**
 * Address planning (pure): which inner subnet a new gateway gets from the pool, and which address
 * each instance gets inside it.
 */
import { badRequest } from '../errors.js';
import { formatPrefix, mask, nthAddress, overlaps, parseCidr, prefixSize, type Prefix } from './ipv4.js';

export interface InnerPoolConfig {
  /** Where inner subnets come from, e.g. "100.96.0.0/12" (shared address space, RFC 6598). */
  pool: string;
  /** Prefix length of each gateway's inner subnet, e.g. 22 (1021 instances). */
  subnetLen: number;
}

export const DEFAULT_INNER_POOL: InnerPoolConfig = { pool: '100.96.0.0/12', subnetLen: 22 };

export function parsePool(cfg: InnerPoolConfig): Prefix {
  const c = parseCidr(cfg.pool, { strict: true });
  if (!c) throw new Error(`inner pool ${cfg.pool} is not a prefix`);
  if (!Number.isInteger(cfg.subnetLen) || cfg.subnetLen < c.prefix.len || cfg.subnetLen > 29) {
    throw new Error(`inner subnet length ${cfg.subnetLen} must be between the pool's (${c.prefix.len}) and 29`);
  }
  return c.prefix;
}

/**
 * The first /subnetLen block of the pool that overlaps nothing in `avoid` (other gateways' inner
 * subnets, this network's routes, allow entries and connected subnet, the host's addresses and
 * subnets). Throws BAD_REQUEST naming the pool when every block collides.
 */
export function allocateInnerSubnet(cfg: InnerPoolConfig, avoid: Prefix[]): Prefix {
  const pool = parsePool(cfg);
  const blocks = 2 ** (cfg.subnetLen - pool.len);
  const step = 2 ** (32 - cfg.subnetLen);
  // A default route (/0) does not collide: the inner subnet is more specific inside the gateway.
  const relevant = avoid.filter((p) => p.len > 0 && overlaps(p, pool));
  for (let i = 0; i < blocks; i++) {
    const cand: Prefix = { base: (pool.base + i * step) >>> 0, len: cfg.subnetLen };
    if (!relevant.some((p) => overlaps(p, cand))) return cand;
  }
  throw badRequest(`no free inner subnet /${cfg.subnetLen} left in pool ${formatPrefix(pool)} that avoids the network's routes and the host's addresses`);
}

/**
 * Instance addresses inside one inner subnet. Address 1 is the gateway's; instances get 2..last-1.
 * Released addresses go to the back of the queue, so an address is reused as late as possible.
 */
export class InstanceAddresses {
  private readonly free: number[] = [];
  private head = 0;
  private readonly inUse = new Set<number>();
  constructor(readonly subnet: Prefix) {
    const size = prefixSize(subnet);
    for (let n = 2; n < size - 1; n++) this.free.push(n);
  }
  get gatewayAddress(): number {
    return nthAddress(this.subnet, 1);
  }
  get capacity(): number {
    return prefixSize(this.subnet) - 3;
  }
  get used(): number {
    return this.inUse.size;
  }
  /** The host number (offset in the subnet) of a free address, or undefined when full. */
  take(): number | undefined {
    if (this.head >= this.free.length) return undefined;
    const n = this.free[this.head++];
    if (this.head > 4096 && this.head * 2 > this.free.length) {
      this.free.splice(0, this.head);
      this.head = 0;
    }
    this.inUse.add(n);
    return n;
  }
  give(n: number): void {
    if (!this.inUse.delete(n)) return;
    this.free.push(n);
  }
  address(n: number): number {
    return nthAddress(this.subnet, n);
  }
}

/** Host routes and subnets of an address list, for `avoid`. */
export function addressPrefixes(addrs: { address: number; prefixLen: number }[]): Prefix[] {
  const out: Prefix[] = [];
  for (const a of addrs) {
    out.push({ base: a.address >>> 0, len: 32 });
    if (a.prefixLen > 0 && a.prefixLen < 32) out.push({ base: (a.address & mask(a.prefixLen)) >>> 0, len: a.prefixLen });
  }
  return out;
}
