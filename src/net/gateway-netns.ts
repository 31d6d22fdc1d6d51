/**
 * A gateway namespace's names and teardown: the interface names inside it, the attach namespace's
 * netns file, the fixed MAC of inner addresses, and the removal of a gateway namespace (ours or one
 * a crashed daemon left). See gateway.ts for the layout.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { NetBinding } from './native-binding.js';

/** Interface names: the gateway's outer leg, its inner bridge and the bridge's anchor; an instance's veth end. */
export const OUTER_IF = 'outer';
export const INNER_IF = 'inner';
export const ANCHOR_IF = 'anchor';
export const INSTANCE_IF = 'eth0';

/** The netns file of a named namespace in the attach position. */
export function attachNetnsPath(netns: string | undefined): string {
  return netns === undefined ? '/proc/self/ns/net' : path.join('/run/netns', netns);
}

/** The MAC every holder of an inner address gets (native/net/rtnl.cc macForAddress): 02:68:a:b:c:d. */
export function macForAddress(ip: number): string {
  return ['02', '68', ...[24, 16, 8, 0].map((s) => ((ip >>> s) & 255).toString(16).padStart(2, '0'))].join(':');
}

/** The `code` of a system error (ENOENT, EINVAL, ...), if any. */
export function errCode(e: unknown): string | undefined {
  return (e as { code?: string } | undefined)?.code;
}

/**
 * Removes a gateway namespace bind-mounted at netnsPath (ours or a leftover from a crash):
 * deletes its outer leg synchronously, unmounts and unlinks the file. The namespace itself goes
 * when the last fd to it closes.
 */
export function removeGatewayNetns(binding: NetBinding, netnsPath: string, fd: number | undefined, log: Logger): void {
  let own = -1;
  if (fd === undefined) {
    try {
      own = binding.openNetns(netnsPath);
    } catch {
      own = -1; // missing, or a plain file: not mounted
    }
  }
  const nsFd = fd ?? own;
  try {
    if (nsFd >= 0) binding.deleteLink(nsFd, OUTER_IF);
  } catch (e) {
    // EINVAL: the file is not (or no longer) a mounted namespace; nothing to delete in it.
    if (errCode(e) !== 'EINVAL') log.warn({ err: e, netns: netnsPath }, 'deleting the outer leg failed');
  } finally {
    if (own >= 0) fs.closeSync(own);
  }
  try {
    binding.unmount(netnsPath);
  } catch (e) {
    log.warn({ err: e, netns: netnsPath }, 'unmount failed');
  }
  try {
    fs.unlinkSync(netnsPath);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') log.warn({ err: e, netns: netnsPath }, 'unlink failed');
  }
}
