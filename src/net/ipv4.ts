/**
 * IPv4 addresses and prefixes as unsigned 32-bit numbers. Pure; no I/O.
 * Parsing is strict: dotted quads without leading zeros, prefix length 0..32.
 */

export interface Prefix {
  /** Network address (host bits zero), unsigned 32-bit. */
  readonly base: number;
  readonly len: number;
}

const QUAD = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

/** Parses "a.b.c.d"; undefined when not a valid dotted quad. */
export function parseIp(s: string): number | undefined {
  const m = QUAD.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  return v;
}

export function formatIp(v: number): string {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

export function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Size of a prefix in addresses. */
export function prefixSize(p: Prefix): number {
  return 2 ** (32 - p.len);
}

/**
 * Parses "a.b.c.d/len" (len required unless defaultLen is given). With `strict`, host bits must be
 * zero (a route); without, the host part is kept in `address` (an interface address).
 */
export function parseCidr(s: string, opts: { strict: boolean; defaultLen?: number }): { address: number; prefix: Prefix } | undefined {
  const slash = s.indexOf('/');
  const ipPart = slash < 0 ? s : s.slice(0, slash);
  let len: number;
  if (slash < 0) {
    if (opts.defaultLen === undefined) return undefined;
    len = opts.defaultLen;
  } else {
    const lp = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]?)$/.test(lp)) return undefined;
    len = Number(lp);
    if (len > 32) return undefined;
  }
  const address = parseIp(ipPart);
  if (address === undefined) return undefined;
  const base = (address & mask(len)) >>> 0;
  if (opts.strict && base !== address) return undefined;
  return { address, prefix: { base, len } };
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.base)}/${p.len}`;
}

export function containsIp(p: Prefix, ip: number): boolean {
  return (ip & mask(p.len)) >>> 0 === p.base;
}

/** True when `inner` lies entirely within `outer`. */
export function containsPrefix(outer: Prefix, inner: Prefix): boolean {
  return inner.len >= outer.len && containsIp(outer, inner.base);
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  return containsPrefix(a, b) || containsPrefix(b, a);
}

/** The n-th address of a prefix (0 = the network address). */
export function nthAddress(p: Prefix, n: number): number {
  return (p.base + n) >>> 0;
}
