/**
 * The typed surface of build/Release/hearth_net.node (native/net/) and its one loader.
 * Namespaces are passed as fds; -1 means the daemon's own network namespace. Every function is
 * synchronous unless named *Async; failures throw Error with Node-style `code` ('EEXIST'),
 * `errno` (negative) and `syscall`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

export interface NativeLink {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'veth', 'bridge', '' ... */
  kind: string;
  /** 'bridge' when the link is a bridge port. */
  slaveKind: string;
  master: number;
  up: boolean;
  operUp: boolean;
  /** BR_STATE_* of a bridge port (3 = forwarding), -1 otherwise. */
  brportState: number;
}

export interface NativeAddress {
  index: number;
  address: string;
  prefixLen: number;
}

export interface ConnectInstanceSpec {
  gwNetnsFd: number;
  /** Inner bridge ifindex in the gateway namespace. */
  bridgeIndex: number;
  /** Gateway-side veth name, unique in the gateway namespace (<= 15 chars). */
  gwIfName: string;
  /** Instance-side name, e.g. 'eth0'. */
  instIfName: string;
  /** The instance's address; it gets it as a /32 with an on-link default route. */
  address: string;
  /** Default route next hop (the inner bridge address). */
  gateway: string;
  /** Upper bound for the wait until both ends are UP and the bridge port forwards. */
  timeoutMs: number;
}

export interface ConnectInstanceResult {
  /**
   * A new network namespace holding the instance end: lo and eth0 up, address/32, default route
   * via the gateway on-link, PERMANENT neighbour entries both ways (MACs 02:68:<address bytes>).
   */
  netnsFd: number;
  gwIfIndex: number;
  /** Microseconds spent waiting for link state. */
  waitUs: number;
}

export interface NetBinding {
  /** Opens a network namespace file (bind mount, /proc/PID/ns/net, /run/netns/NAME); EINVAL if it is not one. */
  openNetns(path: string): number;
  /** A new, empty network namespace held only by the returned fd. */
  createNetns(): number;
  getLink(nsFd: number, name: string): NativeLink | null;
  listLinks(nsFd: number): NativeLink[];
  /** IPv4 addresses. */
  listAddresses(nsFd: number): NativeAddress[];
  /** mac "aa:bb:cc:dd:ee:ff" fixes the bridge's address. */
  createBridge(nsFd: number, name: string, mac?: string): void;
  /** A link of a simple kind ('dummy'), down. */
  createLink(nsFd: number, name: string, kind: string): void;
  /** veth `name` in nsFd's namespace, its peer `peerName` in peerNsFd's (both down). */
  createVeth(nsFd: number, name: string, peerNsFd: number, peerName: string): void;
  /** master: a bridge name in the same namespace, or null to release. */
  setLink(nsFd: number, name: string, opts: { up?: boolean; master?: string | null }): void;
  setBridgePortIsolated(nsFd: number, name: string, isolated: boolean): void;
  addAddress(nsFd: number, name: string, address: string, prefixLen: number): void;
  addRoute(nsFd: number, dst: string, dstLen: number, gateway: string | null, dev: string | null): void;
  /** false when the link did not exist. Deleting one end of a veth deletes both. */
  deleteLink(nsFd: number, name: string): boolean;
  /** deleteLink on a libuv pool thread (a veth deletion waits for RCU grace periods: ~10-40 ms). */
  deleteLinkAsync(nsFd: number, name: string): Promise<boolean>;
  /**
   * Deletes the named links that exist in one kernel batch (a link group and one RTM_DELLINK), on a
   * libuv pool thread; resolves to how many were deleted. Missing links are skipped.
   */
  deleteLinksAsync(nsFd: number, names: string[]): Promise<number>;
  /** Waits until operstate UP (and bridge port FORWARDING if `forwarding`); returns µs waited; ETIMEDOUT. */
  waitLinkUp(nsFd: number, name: string, forwarding: boolean, timeoutMs: number): number;
  /** Writes a /proc/sys path as seen inside the namespace. */
  writeSysctl(nsFd: number, path: string, value: string): void;
  bindMount(source: string, target: string): void;
  /** Lazy unmount; false when nothing was mounted there. */
  unmount(target: string): boolean;
  connectInstance(spec: ConnectInstanceSpec): ConnectInstanceResult;
  /** The same on a libuv pool thread. */
  connectInstanceAsync(spec: ConnectInstanceSpec): Promise<ConnectInstanceResult>;
  // Probes for tests and benchmarks.
  /** An unconnected IPv4 socket created inside the namespace. */
  socketIn(nsFd: number, type: 'tcp' | 'udp'): number;
  /** Blocking connect with timeout; returns µs; throws ECONNREFUSED / ETIMEDOUT / EHOSTUNREACH ... */
  tcpConnect(fd: number, ip: string, port: number, timeoutMs: number): number;
  /** count 1-byte echo round trips on a connected socket; µs each. */
  pingPong(fd: number, count: number, timeoutMs: number): Float64Array;
}

let cached: NetBinding | undefined;

/**
 * Loads the addon, trying build/Release then build/Debug from the repo root (two levels above
 * dist/src/net or src/net). Throws an Error listing every path tried.
 */
export function loadNetBinding(): NetBinding {
  if (cached) return cached;
  const req = createRequire(__filename);
  const roots = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..', '..', '..')];
  const tried: string[] = [];
  const fromEnv = process.env['HEARTH_NET_ADDON'];
  const candidates = [
    ...(fromEnv ? [fromEnv] : []),
    ...roots.flatMap((r) => [path.join(r, 'build', 'Release', 'hearth_net.node'), path.join(r, 'build', 'Debug', 'hearth_net.node')]),
  ];
  for (const c of candidates) {
    try {
      cached = req(c) as NetBinding;
      return cached;
    } catch (e) {
      tried.push(`${c}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`cannot load hearth_net.node; tried:\n  ${tried.join('\n  ')}`);
}
