/**
 * Network definitions as users write them, and their validation (pure; no I/O). Every rejection is
 * a HearthError BAD_REQUEST whose message says what is wrong.
 */
import { badRequest } from '../errors.js';
import { NETWORK_NAME_PATTERN } from '../names.js';
import { containsIp, containsPrefix, formatIp, formatPrefix, mask, overlaps, parseCidr, parseIp, type Prefix } from './ipv4.js';

/** A private network as submitted (PUT /v1/networks/{name}). */
export interface NetworkSpec {
  /** Where the gateway's outer leg is plugged in: a bridge, in a named netns (/run/netns/NAME) or the host's. */
  attach: { bridge: string; netns?: string };
  /** The gateway's address on the private network, with its prefix: "10.77.0.2/24". */
  address: string;
  /** Destinations reachable through the gateway ("10.77.0.0/24"); non-overlapping. */
  routes: string[];
  /** Next hop for routes outside the address's own subnet. */
  gateway?: string;
  /** Allowed destinations, "CIDR" or "CIDR:PORT" (TCP and UDP); default: all of `routes`. */
  allow?: string[];
  /**
   * Many hosts: a host's own gateway address ("10.77.0.3/24", same subnet as `address`) by host id,
   * for hosts whose gateways share one segment of the private network; a host not listed uses `address`.
   */
  hostAddresses?: Record<string, string>;
}

export interface AllowRule {
  prefix: Prefix;
  /** TCP and UDP destination port; undefined = any protocol, any port. */
  port?: number;
}

/** A validated spec in numeric form, plus the normalised user-facing copy. */
export interface ValidatedSpec {
  spec: NetworkSpec;
  address: number;
  /** The subnet the outer leg is directly connected to. */
  connected: Prefix;
  routes: Prefix[];
  gateway?: number;
  allow: AllowRule[];
}

const HOST_ID = /^[A-Za-z0-9_-]{1,64}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NETNS_NAME = /^[A-Za-z0-9_.-]{1,200}$/;

/** Network names: lowercase letters, digits and inner dashes, at most 63 characters. */
export function validateNetworkName(name: string): void {
  if (typeof name !== 'string' || !NETWORK_NAME_PATTERN.test(name)) {
    throw badRequest(`invalid network name ${JSON.stringify(name)}: use 1-63 lowercase letters, digits and inner dashes`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(where: string, o: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw badRequest(`${where}: unknown field ${JSON.stringify(k)}`);
}

function stringArray(where: string, v: unknown): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw badRequest(`${where} must be an array of strings`);
  return v;
}

/** Parses one allow entry: "CIDR", "CIDR:PORT", or a bare address (= /32, optionally :PORT). */
export function parseAllow(entry: string): AllowRule | undefined {
  const m = /^([0-9.]+(?:\/[0-9]{1,2})?)(?::([0-9]{1,5}))?$/.exec(entry);
  if (!m) return undefined;
  const c = parseCidr(m[1], { strict: true, defaultLen: 32 });
  if (!c) return undefined;
  if (m[2] === undefined) return { prefix: c.prefix };
  const port = Number(m[2]);
  if (!/^[1-9][0-9]*$/.test(m[2]) || port < 1 || port > 65535) return undefined;
  return { prefix: c.prefix, port };
}

export function formatAllow(a: AllowRule): string {
  return a.port === undefined ? formatPrefix(a.prefix) : `${formatPrefix(a.prefix)}:${a.port}`;
}

/** Validates a submitted spec; throws BAD_REQUEST with the reason. */
export function validateSpec(raw: unknown): ValidatedSpec {
  if (!isObject(raw)) throw badRequest('network spec must be a JSON object');
  checkKeys('network', raw, ['attach', 'address', 'routes', 'gateway', 'allow', 'hostAddresses']);

  const attach = raw['attach'];
  if (!isObject(attach)) throw badRequest('attach must be an object {bridge, netns?}');
  checkKeys('attach', attach, ['bridge', 'netns']);
  const bridge = attach['bridge'];
  if (typeof bridge !== 'string' || !IFNAME.test(bridge) || bridge === '.' || bridge === '..') {
    throw badRequest(`attach.bridge must be an interface name (1-15 of A-Z a-z 0-9 _ . -), got ${JSON.stringify(bridge)}`);
  }
  const netns = attach['netns'];
  if (netns !== undefined && (typeof netns !== 'string' || !NETNS_NAME.test(netns) || netns === '.' || netns === '..')) {
    throw badRequest(`attach.netns must be a network namespace name under /run/netns, got ${JSON.stringify(netns)}`);
  }

  const addressRaw = raw['address'];
  if (typeof addressRaw !== 'string') throw badRequest('address is required: the gateway address with prefix, e.g. "10.77.0.2/24"');
  const addr = parseCidr(addressRaw, { strict: false });
  if (!addr) throw badRequest(`address ${JSON.stringify(addressRaw)} is not an IPv4 address with a prefix length (a.b.c.d/len)`);
  if (addr.prefix.len === 0 || addr.prefix.len > 30) throw badRequest(`address ${addressRaw}: prefix length must be 1..30`);
  const broadcast = (addr.prefix.base | ~mask(addr.prefix.len)) >>> 0;
  if (addr.address === addr.prefix.base || addr.address === broadcast) {
    throw badRequest(`address ${addressRaw} is the network or broadcast address of its subnet`);
  }
  const connected = addr.prefix;

  let gateway: number | undefined;
  const gatewayRaw = raw['gateway'];
  if (gatewayRaw !== undefined) {
    if (typeof gatewayRaw !== 'string') throw badRequest('gateway must be an IPv4 address string');
    gateway = parseIp(gatewayRaw);
    if (gateway === undefined) throw badRequest(`gateway ${JSON.stringify(gatewayRaw)} is not an IPv4 address`);
    if (!containsIp(connected, gateway)) throw badRequest(`gateway ${gatewayRaw} is not inside the address's subnet ${formatPrefix(connected)}`);
    if (gateway === addr.address) throw badRequest(`gateway ${gatewayRaw} is the gateway's own address`);
  }

  const routesRaw = stringArray('routes', raw['routes']);
  if (routesRaw.length === 0) throw badRequest('routes must list at least one destination prefix');
  const routes: Prefix[] = [];
  for (const r of routesRaw) {
    const c = parseCidr(r, { strict: true });
    if (!c) throw badRequest(`route ${JSON.stringify(r)} is not a valid prefix (a.b.c.d/len with zero host bits)`);
    for (const o of routes) {
      if (overlaps(o, c.prefix)) throw badRequest(`routes ${formatPrefix(o)} and ${r} overlap`);
    }
    if (!containsPrefix(connected, c.prefix) && gateway === undefined) {
      throw badRequest(`route ${r} is not inside the directly connected subnet ${formatPrefix(connected)}: give a gateway`);
    }
    routes.push(c.prefix);
  }

  let allow: AllowRule[];
  const allowRaw = raw['allow'];
  if (allowRaw === undefined) {
    allow = routes.map((prefix) => ({ prefix }));
  } else {
    allow = [];
    for (const a of stringArray('allow', allowRaw)) {
      const rule = parseAllow(a);
      if (!rule) throw badRequest(`allow entry ${JSON.stringify(a)} is not CIDR or CIDR:PORT (port 1-65535)`);
      if (!routes.some((r) => containsPrefix(r, rule.prefix))) throw badRequest(`allow entry ${a} is outside every route`);
      allow.push(rule);
    }
  }

  let hostAddresses: Record<string, string> | undefined;
  const hostAddressesRaw = raw['hostAddresses'];
  if (hostAddressesRaw !== undefined) {
    if (!isObject(hostAddressesRaw)) throw badRequest('hostAddresses must be an object {"<host id>": "a.b.c.d/len"}');
    hostAddresses = {};
    const used = new Map<number, string>([[addr.address, 'address']]);
    for (const [host, v] of Object.entries(hostAddressesRaw).sort(([x], [y]) => x.localeCompare(y))) {
      if (!HOST_ID.test(host)) throw badRequest(`hostAddresses: ${JSON.stringify(host)} is not a host id (1 to 64 of A-Z a-z 0-9 _ -)`);
      const h = typeof v === 'string' ? parseCidr(v, { strict: false }) : undefined;
      if (!h) throw badRequest(`hostAddresses.${host}: ${JSON.stringify(v)} is not an IPv4 address with a prefix length (a.b.c.d/len)`);
      if (h.prefix.len !== connected.len || h.prefix.base !== connected.base) {
        throw badRequest(`hostAddresses.${host}: ${String(v)} is not in the address's subnet ${formatPrefix(connected)}`);
      }
      if (h.address === connected.base || h.address === broadcast) throw badRequest(`hostAddresses.${host}: ${String(v)} is the network or broadcast address`);
      if (h.address === gateway) throw badRequest(`hostAddresses.${host}: ${String(v)} is the next hop (gateway)`);
      const twin = used.get(h.address);
      if (twin !== undefined) throw badRequest(`hostAddresses.${host}: ${String(v)} is already used by ${twin}`);
      used.set(h.address, `hostAddresses.${host}`);
      hostAddresses[host] = `${formatIp(h.address)}/${connected.len}`;
    }
  }

  const spec: NetworkSpec = {
    attach: netns === undefined ? { bridge } : { bridge, netns: netns },
    address: `${formatIp(addr.address)}/${connected.len}`,
    routes: routes.map(formatPrefix),
    ...(gateway !== undefined ? { gateway: formatIp(gateway) } : {}),
    allow: allow.map(formatAllow),
    ...(hostAddresses !== undefined ? { hostAddresses } : {}),
  };
  return { spec, address: addr.address, connected, routes, ...(gateway !== undefined ? { gateway } : {}), allow };
}

/**
 * The spec one host builds its gateway from: `address` is that host's (its `hostAddresses` entry,
 * else `address`), without the per-host table. Unchanged when there is no table.
 */
export function specForHost(spec: NetworkSpec, hostId: string | undefined): NetworkSpec {
  if (spec.hostAddresses === undefined) return spec;
  const { hostAddresses, ...rest } = spec;
  const own = hostId !== undefined ? hostAddresses[hostId] : undefined;
  return own !== undefined ? { ...rest, address: own } : rest;
}
