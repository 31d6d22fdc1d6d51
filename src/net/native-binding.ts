/**
 * The typed surface of build/Release/hearth_net.node (native/net/), loaded through the one addon
 * loader (src/native/loader.ts). Namespaces are passed as fds; -1 means the daemon's own network
 * namespace. Every function is synchronous unless named *Async; a wrong argument type throws a
 * TypeError (code ERR_INVALID_ARG_VALUE); failures throw Error with Node-style `code` ('EEXIST'),
 * `errno` (negative) and `syscall`. Nothing here waits for link state: see src/net/link-wait.ts.
 */
import { injectAddon, loadAddon } from '../native/loader.js';

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
}

export interface ConnectedInstance {
  /**
   * A new network namespace holding the instance end: lo and eth0 up, address/32, default route
   * via the gateway on-link, PERMANENT neighbour entries both ways (MACs 02:68:<address bytes>).
   * The links may not carry packets yet: wait for them (src/net/link-wait.ts).
   */
  netnsFd: number;
  gwIfIndex: number;
  /** rtnetlink sockets (see openRtnl) in the instance and in the gateway namespace, for the wait; the caller closes them. */
  instRtnlFd: number;
  gwRtnlFd: number;
}

export interface NetBinding {
  /** Opens a network namespace file (bind mount, /proc/PID/ns/net, /run/netns/NAME); EINVAL if it is not one. */
  openNetns(path: string): number;
  /** A new, empty network namespace held only by the returned fd. */
  createNetns(): number;
  /** The link, or null when there is none of that name. */
  getLink(nsFd: number, name: string): NativeLink | null;
  /**
   * An rtnetlink socket living in the namespace held by nsFd (close-on-exec; the caller closes it
   * with fs.closeSync), for repeated getLinkOn() without entering the namespace each time.
   */
  openRtnl(nsFd: number): number;
  /** getLink through a socket from openRtnl (a few µs, no namespace switch). */
  getLinkOn(rtnlFd: number, name: string): NativeLink | null;
  listLinks(nsFd: number): NativeLink[];
  /** IPv4 addresses. */
  listAddresses(nsFd: number): NativeAddress[];
  /** mac "aa:bb:cc:dd:ee:ff" fixes the bridge's address. */
  createBridge(nsFd: number, name: string, mac?: string): void;
  /** veth `name` in nsFd's namespace, its peer `peerName` in peerNsFd's (both down). */
  createVeth(nsFd: number, name: string, peerNsFd: number, peerName: string): void;
  /** master: a bridge name in the same namespace, or null to release. */
  setLink(nsFd: number, name: string, opts: { up?: boolean; master?: string | null }): void;
  setBridgePortIsolated(nsFd: number, name: string, isolated: boolean): void;
  addAddress(nsFd: number, name: string, address: string, prefixLen: number): void;
  addRoute(nsFd: number, dst: string, dstLen: number, gateway: string | null, dev: string | null): void;
  /** false when the link did not exist. Deleting one end of a veth deletes both. */
  deleteLink(nsFd: number, name: string): boolean;
  /**
   * Deletes the named links that exist in one kernel batch (a link group and one RTM_DELLINK), on a
   * libuv pool thread; resolves to how many were deleted. Missing links are skipped.
   */
  deleteLinksAsync(nsFd: number, names: string[]): Promise<number>;
  /** Writes a /proc/sys path as seen inside the namespace. */
  writeSysctl(nsFd: number, path: string, value: string): void;
  bindMount(source: string, target: string): void;
  /** Lazy unmount; false when nothing was mounted there. */
  unmount(target: string): boolean;
  /** A new instance namespace wired to the gateway, on a libuv pool thread; on failure nothing is left. */
  connectInstanceAsync(spec: ConnectInstanceSpec): Promise<ConnectedInstance>;
}

/** The built hearth_net addon (or the fake a test injected with setNetBinding); throws HEARTH_NATIVE_MISSING listing the paths tried. */
export function loadNetBinding(): NetBinding {
  return loadAddon<NetBinding>('hearth_net');
}

/** Replace the net binding (tests); `undefined` restores the built addon. */
export function setNetBinding(fake: NetBinding | undefined): void {
  injectAddon('hearth_net', fake);
}
