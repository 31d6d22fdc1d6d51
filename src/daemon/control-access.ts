/**
 * Who may use the control socket: the group named in the config (resolved from /etc/group) and
 * the peer credentials of each connection (read from the socket's file descriptor).
 */
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { HearthError } from '../errors.js';

/** The socket's file descriptor; throws when the connection has none (closed). */
export function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('control connection has no file descriptor');
  return fd;
}

/** A gid, or a group name looked up in /etc/group; throws CONFIG when there is none. */
export function resolveGroup(g: string | number): number {
  if (typeof g === 'number') return g;
  if (/^\d+$/.test(g)) return Number(g);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === g && gid) return Number(gid);
  }
  throw new HearthError('CONFIG', `socketGroup: no group named '${g}' in /etc/group`);
}
