/**
 * Which range of host ids this daemon's functions get (docs/sandbox.md, Identity), claimed so that
 * no other Hearth daemon on the host uses any of them: two daemons handing out the same host uid
 * would let one's function own the other's instances.
 *
 * A claim is an abstract Unix socket named `hearth-uid-range/START:COUNT/<state dir hash>`, bound
 * for the daemon's life: the kernel drops the name when the daemon dies however it dies, so a claim
 * is never stale. Claims are found in /proc/net/unix (the host's network namespace, where daemons
 * run). Binding first and then listing means that of two daemons starting at once with overlapping
 * ranges at least one refuses; with the same automatic block, the bind itself decides.
 *
 * - `--uid-range START:COUNT` given: the range must overlap no other daemon's claim and no id in
 *   /etc/passwd or /etc/group, or the daemon refuses to start (CONFIG, naming the conflict).
 * - Not given: the daemon takes a block of 65,536 ids at 200000 + k * 65536, preferring the block
 *   its state dir used last (`uids.json`, so functions keep their uids across restarts), else the
 *   first free block without a host user or group in it.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import net from 'node:net';
import { HearthError } from '../errors.js';
import { UidMap, type UidRange } from '../sandbox/uid-map.js';

const PREFIX = 'hearth-uid-range/';
const MAX_ID = 4294967294;

export interface UidRangeOptions {
  stateDir: string;
  /** `--uid-range` as given; undefined: an automatic block. */
  explicit?: UidRange;
  /** First automatic block (default 200000) and block size (default 65536); tests move them. */
  autoBase?: number;
  blockSize?: number;
}

export interface UidRangeClaim {
  uids: UidMap;
  release: () => Promise<void>;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const rangeText = (r: UidRange): string => `${r.start}:${r.count}`;
const overlaps = (a: UidRange, b: UidRange): boolean => a.start < b.start + b.count && b.start < a.start + a.count;

/** Claims a uid range for the daemon of opts.stateDir and opens its allocation. */
export async function claimUidRange(opts: UidRangeOptions, log?: Logger): Promise<UidRangeClaim> {
  const owner = createHash('sha256').update(realpathSync(opts.stateDir)).digest('hex').slice(0, 16);
  if (opts.explicit) {
    const conflict = hostIdIn(opts.explicit);
    if (conflict) throw new HearthError('CONFIG', `uidRange ${rangeText(opts.explicit)} ${conflict}: choose a range no host user or group uses`);
    const r = await tryClaim(opts.explicit, owner);
    if (typeof r === 'string') throw new HearthError('CONFIG', `uidRange ${rangeText(opts.explicit)} ${r}: give each daemon on a host its own --uid-range`);
    return { uids: new UidMap(opts.stateDir, opts.explicit, log), release: r.release };
  }
  const base = opts.autoBase ?? 200000;
  const size = opts.blockSize ?? 65536;
  const saved = UidMap.savedRange(opts.stateDir);
  const candidates: UidRange[] = [];
  if (saved && saved.count === size && saved.start >= base && (saved.start - base) % size === 0) candidates.push(saved);
  for (let start = base; start + size - 1 <= MAX_ID && candidates.length < 4096; start += size) {
    if (start !== saved?.start) candidates.push({ start, count: size });
  }
  for (const range of candidates) {
    if (hostIdIn(range)) continue;
    const r = await tryClaim(range, owner);
    if (typeof r === 'string') continue;
    if (range.start !== saved?.start) log?.info({ uidRange: rangeText(range) }, 'host uid range for functions (the first free block)');
    return { uids: new UidMap(opts.stateDir, range, log), release: r.release };
  }
  throw new HearthError('CONFIG', `no free block of ${size} host ids from ${base} for functions: give this daemon a --uid-range`);
}

/** Binds the claim's name, then looks for other daemons' overlapping claims; a string says why not. */
async function tryClaim(range: UidRange, owner: string): Promise<{ release: () => Promise<void> } | string> {
  const name = `${PREFIX}${rangeText(range)}/${owner}`;
  const server = net.createServer((c) => c.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(`\0${name}`, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return 'is already claimed for this state directory';
    throw err;
  }
  server.unref();
  const release = (): Promise<void> => new Promise<void>((resolve) => server.close(() => resolve()));
  const other = listClaims().find((c) => c.name !== name && overlaps(c.range, range));
  if (other) {
    await release();
    return `overlaps ${rangeText(other.range)}, claimed by another Hearth daemon on this host`;
  }
  return { release };
}

/** The uid-range claims bound on this host now (its network namespace's abstract sockets). */
export function listClaims(): { name: string; range: UidRange }[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return [];
  }
  const out: { name: string; range: UidRange }[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(`@${PREFIX}`);
    if (at < 0) continue;
    // Node binds abstract names padded with NULs to the full address size; /proc shows them as '@'.
    const name = line
      .slice(at + 1)
      .trim()
      .replace(/@+$/, '');
    const m = /^hearth-uid-range\/(\d+):(\d+)\//.exec(name);
    if (!m || seen.has(name)) continue;
    seen.add(name);
    out.push({ name, range: { start: Number(m[1]), count: Number(m[2]) } });
  }
  return out;
}

/** Why a range is unusable because a host user or group has an id in it, if it is. */
function hostIdIn(range: UidRange): string | undefined {
  for (const file of ['/etc/passwd', '/etc/group']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      const n = Number(id);
      if (name && id !== undefined && id !== '' && n >= range.start && n < range.start + range.count) return `holds id ${n} of '${name}' in ${file}`;
    }
  }
  return undefined;
}
