/**
 * The typed surface of build/Release/hearth_net_probes.node (native/test/net-probes.cc): probes
 * for tests and benchmarks that the daemon never loads. Same conventions as the net addon
 * (TypeError on a wrong argument, Node-style system errors).
 */
import { loadAddon } from './loader.js';

export interface NetProbes {
  /** An unconnected IPv4 socket created inside the namespace held by nsFd (-1: ours). */
  socketIn(nsFd: number, type: 'tcp' | 'udp'): number;
  /** Connect with a timeout (blocking); returns µs; throws ECONNREFUSED / ETIMEDOUT / EHOSTUNREACH ... */
  tcpConnect(fd: number, ip: string, port: number, timeoutMs: number): number;
  /** `count` 1-byte echo round trips on a connected socket; µs each. */
  pingPong(fd: number, count: number, timeoutMs: number): Float64Array;
}

/** The built probes addon; throws HEARTH_NATIVE_MISSING listing the paths tried. */
export function loadNetProbes(): NetProbes {
  return loadAddon<NetProbes>('hearth_net_probes');
}
