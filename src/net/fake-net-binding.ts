/**
 * An in-memory NetBinding: lets the real NetworkManager run in unit tests without root or a build.
 * Namespaces are fds of unlinked temporary files mapped to link tables; -1 and any fd it did not
 * make are the "host" namespace; openNetns follows bindMount()s and `named`. Links report operstate
 * UP as soon as they are set up. Not thread-safe, not a network: it checks names, kinds and masters
 * like the kernel would, nothing more.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { ConnectedInstance, ConnectInstanceSpec, NativeAddress, NativeLink, NetBinding } from './native-binding.js';

interface FakeLink {
  name: string;
  kind: string;
  index: number;
  master: string | null;
  up: boolean;
  isolated: boolean;
  peer?: { ns: FakeNs; name: string };
}

export class FakeNs {
  readonly links = new Map<string, FakeLink>();
  readonly addresses: Array<{ link: string; address: string; prefixLen: number }> = [];
  readonly sysctls = new Map<string, string>();
  private nextIndex = 1;
  constructor() {
    this.add('lo', 'loopback');
  }
  add(name: string, kind: string): FakeLink {
    if (this.links.has(name)) throw sysErr('EEXIST', 'RTM_NEWLINK', name);
    const l: FakeLink = { name, kind, index: this.nextIndex++, master: null, up: false, isolated: false };
    this.links.set(name, l);
    return l;
  }
  link(name: string, call = 'RTM_GETLINK'): FakeLink {
    const l = this.links.get(name);
    if (!l) throw sysErr('ENODEV', call, name);
    return l;
  }
}

function sysErr(code: string, syscall: string, what: string): Error {
  return Object.assign(new Error(`${syscall}: ${code} (${what})`), { code, syscall, errno: -1 });
}

export class FakeNetBinding implements NetBinding {
  readonly host = new FakeNs();
  private readonly byFd = new Map<number, FakeNs>();
  private readonly tag = new Map<number, string>();
  readonly mounts = new Map<string, FakeNs>();
  /** Makes the next call of this method throw (once), to test rollback. */
  failNext: { method: keyof NetBinding; code: string } | undefined;

  /** Namespace fds this fake handed out (createNetns, openNetns, connectInstance) still open. */
  get openNamespaces(): number {
    return this.byFd.size;
  }

  ns(fd: number): FakeNs {
    const ns = this.byFd.get(fd);
    if (!ns) return this.host;
    if (this.alive(fd)) return ns;
    this.byFd.delete(fd);
    this.tag.delete(fd);
    return this.host;
  }

  private check(method: keyof NetBinding): void {
    if (this.failNext?.method === method) {
      const code = this.failNext.code;
      this.failNext = undefined;
      throw sysErr(code, String(method), 'injected');
    }
  }

  /** Named namespaces, by path (e.g. /run/netns/vpc), for openNetns. */
  readonly named = new Map<string, FakeNs>();

  private newNs(): number {
    return this.register(new FakeNs());
  }

  private register(ns: FakeNs): number {
    // An unlinked file holding a random tag, so a closed fd whose number was reused is recognised.
    const tag = crypto.randomBytes(8).toString('hex');
    const p = path.join(os.tmpdir(), `hearth-fake-ns-${process.pid}-${tag}`);
    const fd = fs.openSync(p, 'w+');
    fs.unlinkSync(p);
    fs.writeSync(fd, tag);
    this.byFd.set(fd, ns);
    this.tag.set(fd, tag);
    return fd;
  }

  private alive(fd: number): boolean {
    try {
      const buf = Buffer.alloc(16);
      const n = fs.readSync(fd, buf, 0, 16, 0);
      return buf.subarray(0, n).toString() === this.tag.get(fd);
    } catch {
      return false;
    }
  }

  /** Forgets namespaces whose fd was closed (call before asserting on openNamespaces). */
  sweep(): void {
    for (const fd of [...this.byFd.keys()]) {
      if (!this.alive(fd)) {
        this.byFd.delete(fd);
        this.tag.delete(fd);
      }
    }
  }

  private toLink(l: FakeLink, ns: FakeNs): NativeLink {
    const master = l.master ? ns.link(l.master) : undefined;
    return {
      index: l.index,
      name: l.name,
      kind: l.kind === 'loopback' ? '' : l.kind,
      slaveKind: master ? 'bridge' : '',
      master: master?.index ?? 0,
      up: l.up,
      operUp: l.up && l.kind !== 'loopback',
      brportState: master ? 3 : -1,
    };
  }

  openNetns(p: string): number {
    if (p === '/proc/self/ns/net') return this.register(this.host);
    const ns = this.mounts.get(p) ?? this.named.get(p);
    if (ns) return this.register(ns);
    if (!fs.existsSync(p)) throw sysErr('ENOENT', 'open', p);
    throw sysErr('EINVAL', 'ioctl NS_GET_NSTYPE', p);
  }
  createNetns(): number {
    this.check('createNetns');
    return this.newNs();
  }
  /** Sockets from openRtnl: a real fd (of /dev/null) standing for the namespace it was opened in. */
  private readonly rtnl = new Map<number, FakeNs>();
  openRtnl(nsFd: number): number {
    const fd = fs.openSync('/dev/null', 'r');
    this.rtnl.set(fd, this.ns(nsFd));
    return fd;
  }
  getLinkOn(rtnlFd: number, name: string): NativeLink | null {
    const ns = this.rtnl.get(rtnlFd);
    if (!ns) throw sysErr('EBADF', 'RTM_GETLINK', name);
    const l = ns.links.get(name);
    return l ? this.toLink(l, ns) : null;
  }
  getLink(nsFd: number, name: string): NativeLink | null {
    const ns = this.ns(nsFd);
    const l = ns.links.get(name);
    return l ? this.toLink(l, ns) : null;
  }
  listLinks(nsFd: number): NativeLink[] {
    const ns = this.ns(nsFd);
    return [...ns.links.values()].map((l) => this.toLink(l, ns));
  }
  listAddresses(nsFd: number): NativeAddress[] {
    const ns = this.ns(nsFd);
    return ns.addresses.map((a) => ({ index: ns.link(a.link).index, address: a.address, prefixLen: a.prefixLen }));
  }
  createBridge(nsFd: number, name: string): void {
    this.check('createBridge');
    this.ns(nsFd).add(name, 'bridge');
  }
  createVeth(nsFd: number, name: string, peerNsFd: number, peerName: string): void {
    this.check('createVeth');
    const a = this.ns(nsFd);
    const b = peerNsFd < 0 ? a : this.ns(peerNsFd);
    if (b.links.has(peerName)) throw sysErr('EEXIST', 'RTM_NEWLINK', peerName);
    const la = a.add(name, 'veth');
    const lb = b.add(peerName, 'veth');
    la.peer = { ns: b, name: peerName };
    lb.peer = { ns: a, name };
  }
  setLink(nsFd: number, name: string, opts: { up?: boolean; master?: string | null }): void {
    this.check('setLink');
    const ns = this.ns(nsFd);
    const l = ns.link(name);
    if (opts.master !== undefined) {
      if (opts.master !== null && ns.link(opts.master).kind !== 'bridge') throw sysErr('EOPNOTSUPP', 'RTM_NEWLINK', name);
      l.master = opts.master;
    }
    if (opts.up !== undefined) l.up = opts.up;
  }
  setBridgePortIsolated(nsFd: number, name: string, isolated: boolean): void {
    const l = this.ns(nsFd).link(name);
    if (!l.master) throw sysErr('EOPNOTSUPP', 'RTM_SETLINK', name);
    l.isolated = isolated;
  }
  addAddress(nsFd: number, name: string, address: string, prefixLen: number): void {
    this.check('addAddress');
    const ns = this.ns(nsFd);
    ns.link(name);
    if (ns.addresses.some((a) => a.address === address)) throw sysErr('EEXIST', 'RTM_NEWADDR', address);
    ns.addresses.push({ link: name, address, prefixLen });
  }
  addRoute(nsFd: number, _dst: string, _dstLen: number, _gateway: string | null, dev: string | null): void {
    this.check('addRoute');
    if (dev) this.ns(nsFd).link(dev);
  }
  deleteLink(nsFd: number, name: string): boolean {
    const ns = this.ns(nsFd);
    const l = ns.links.get(name);
    if (!l) return false;
    ns.links.delete(name);
    for (let i = ns.addresses.length - 1; i >= 0; i--) if (ns.addresses[i].link === name) ns.addresses.splice(i, 1);
    if (l.peer) l.peer.ns.links.delete(l.peer.name);
    return true;
  }
  async deleteLinksAsync(nsFd: number, names: string[]): Promise<number> {
    let n = 0;
    for (const name of names) if (this.deleteLink(nsFd, name)) n++;
    return n;
  }
  writeSysctl(nsFd: number, path: string, value: string): void {
    this.ns(nsFd).sysctls.set(path, value);
  }
  bindMount(source: string, target: string): void {
    const m = /^\/proc\/self\/fd\/(\d+)$/.exec(source);
    if (!m || !fs.existsSync(target)) throw sysErr('ENOENT', 'mount', target);
    this.mounts.set(target, this.ns(Number(m[1])));
  }
  unmount(target: string): boolean {
    return this.mounts.delete(target);
  }
  async connectInstanceAsync(spec: ConnectInstanceSpec): Promise<ConnectedInstance> {
    this.check('connectInstanceAsync');
    const gw = this.ns(spec.gwNetnsFd);
    const bridge = [...gw.links.values()].find((l) => l.index === spec.bridgeIndex);
    if (!bridge || bridge.kind !== 'bridge') throw sysErr('ENODEV', 'RTM_NEWLINK veth', spec.gwIfName);
    const fd = this.newNs();
    this.createVeth(spec.gwNetnsFd, spec.gwIfName, fd, spec.instIfName);
    this.setLink(spec.gwNetnsFd, spec.gwIfName, { master: bridge.name, up: true });
    this.setBridgePortIsolated(spec.gwNetnsFd, spec.gwIfName, true);
    this.setLink(fd, spec.instIfName, { up: true });
    this.addAddress(fd, spec.instIfName, spec.address, 32);
    return { netnsFd: fd, gwIfIndex: gw.link(spec.gwIfName).index, instRtnlFd: this.openRtnl(fd), gwRtnlFd: this.openRtnl(spec.gwNetnsFd) };
  }
}
