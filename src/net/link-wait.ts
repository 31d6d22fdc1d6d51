/**
 * Waiting for links to carry packets, done on the JS thread with timers (never by sleeping in the
 * addon or its thread pool). A new veth has no qdisc until the kernel's linkwatch activates it and
 * drops what is sent before, so a first TCP SYN would be retransmitted after ~1 s; operstate UP is
 * set by the same linkwatch pass and a bridge port reaches FORWARDING just after.
 *
 * Polling: each check is a getLinkOn of a few µs through an rtnetlink socket kept open in the
 * link's namespace (handed back by connectInstanceAsync, or opened once with openRtnl). The first
 * checks follow each other at setImmediate pace (linkwatch usually runs within a few hundred µs),
 * then timers back off from 1 ms to 16 ms.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

import { systemError } from '../native/system-error.js';
import type { ConnectInstanceSpec, NativeLink, NetBinding } from './native-binding.js';

/** BR_STATE_FORWARDING (linux/if_bridge.h). */
const BR_STATE_FORWARDING = 3;
const IMMEDIATE_CHECKS = 8;
const MAX_PAUSE_MS = 16;

/** One link to wait for: operstate UP, and bridge port state FORWARDING when `forwarding`. */
export interface LinkWanted {
  nsFd: number;
  name: string;
  forwarding: boolean;
}

function ready(link: NativeLink | null, want: { name: string; forwarding: boolean }): boolean {
  if (!link) throw systemError('ENODEV', 19, 'RTM_GETLINK', `no such device (link ${want.name})`);
  return link.operUp && (!want.forwarding || link.brportState === BR_STATE_FORWARDING);
}

function pause(check: number): Promise<void> {
  if (check < IMMEDIATE_CHECKS) return new Promise((resolve) => setImmediate(resolve));
  const ms = Math.min(MAX_PAUSE_MS, 2 ** (check - IMMEDIATE_CHECKS));
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A link checked through an rtnetlink socket of its namespace (openRtnl). */
interface LinkCheck {
  rtnlFd: number;
  name: string;
  forwarding: boolean;
}

async function pollLinks(binding: NetBinding, checks: LinkCheck[], timeoutMs: number): Promise<number> {
  const start = performance.now();
  let pending = checks;
  for (let check = 0; ; check++) {
    pending = pending.filter((c) => !ready(binding.getLinkOn(c.rtnlFd, c.name), c));
    const waitedMs = performance.now() - start;
    if (pending.length === 0) return Math.round(waitedMs * 1000);
    if (waitedMs >= timeoutMs) {
      const c = pending[0];
      throw systemError('ETIMEDOUT', 110, 'wait link up', `link ${c.name} not ${c.forwarding ? 'forwarding' : 'up'} after ${timeoutMs} ms`);
    }
    await pause(check);
  }
}

/**
 * Resolves with the µs waited once every link is ready; rejects with the getLink error (ENODEV when
 * a link is missing) or, after `timeoutMs`, with ETIMEDOUT naming the first link not ready.
 */
export async function waitLinksUp(binding: NetBinding, links: LinkWanted[], timeoutMs: number): Promise<number> {
  const sockets = new Map<number, number>();
  try {
    for (const w of links) if (!sockets.has(w.nsFd)) sockets.set(w.nsFd, binding.openRtnl(w.nsFd));
    return await pollLinks(
      binding,
      links.map((w) => ({ rtnlFd: sockets.get(w.nsFd)!, name: w.name, forwarding: w.forwarding })),
      timeoutMs,
    );
  } finally {
    for (const fd of sockets.values()) fs.closeSync(fd);
  }
}

/** waitLinksUp for one link. */
export function waitLinkUp(binding: NetBinding, nsFd: number, name: string, forwarding: boolean, timeoutMs: number): Promise<number> {
  return waitLinksUp(binding, [{ nsFd, name, forwarding }], timeoutMs);
}

export interface ReadyInstance {
  /** The instance's network namespace (see ConnectedInstance); the caller owns it. */
  netnsFd: number;
  gwIfIndex: number;
  /** Microseconds spent waiting for the links to come up. */
  waitUs: number;
}

/**
 * connectInstanceAsync, then a wait until the instance end is UP and the gateway end forwards,
 * checked through the sockets the connect hands back (nothing entered on the JS thread).
 * On failure (including ETIMEDOUT) nothing is left: the veth is deleted, the namespace fd closed.
 */
export async function connectInstanceReady(binding: NetBinding, spec: ConnectInstanceSpec, timeoutMs: number): Promise<ReadyInstance> {
  const res = await binding.connectInstanceAsync(spec);
  try {
    const waitUs = await pollLinks(
      binding,
      [
        { rtnlFd: res.instRtnlFd, name: spec.instIfName, forwarding: false },
        { rtnlFd: res.gwRtnlFd, name: spec.gwIfName, forwarding: true },
      ],
      timeoutMs,
    );
    return { netnsFd: res.netnsFd, gwIfIndex: res.gwIfIndex, waitUs };
  } catch (e) {
    await binding.deleteLinksAsync(spec.gwNetnsFd, [spec.gwIfName]).catch(() => 0);
    fs.closeSync(res.netnsFd);
    throw e;
  } finally {
    fs.closeSync(res.instRtnlFd);
    fs.closeSync(res.gwRtnlFd);
  }
}
