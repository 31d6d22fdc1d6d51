/**
 * Fuzzing the bundle extractor (src/registry/bundle-extractor.ts, tar.gz and zip): archives built
 * from hostile entries (traversal, absolute paths, links, devices, odd names), then mutated (bytes
 * flipped, cut short), and raw bytes behind each format's magic. Properties: extractArchive
 * resolves or throws a HearthError (INVALID_ARCHIVE or PAYLOAD_TOO_LARGE), never another error;
 * nothing is ever written outside the root; it extracts regular files, directories and symlinks
 * (no devices, FIFOs, setuid bits), and after a successful extraction every symlink stays inside.
 */
import test from 'ava';
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { makeTarGz, makeZip, type TarSpec, type ZipSpec } from '../conformance/archives.js';
import { isHearthError } from '../../src/errors.js';
import { extractArchive, type ArchiveLimits } from '../../src/registry/bundle-extractor.js';
import { corpus, params } from './fuzz-config.js';

const LIMITS: ArchiveLimits = { maxPackedBytes: 1 << 20, maxUnpackedBytes: 1 << 20, maxEntries: 64, maxRatio: 200, maxEntryRatio: 200, bombMinBytes: 1 << 16 };

const name = fc.oneof(
  fc.constantFrom('a.js', 'dir/', 'dir/b.py', '../escape', '/abs', 'a/../../x', './ok', 'a//b', '', '.', '..', 'x\\..\\y', 'dir/../dir/c'),
  fc.array(fc.constantFrom('a', 'b', '..', '.', 'ü', '\0', ' ', 'long'.repeat(20)), { minLength: 1, maxLength: 5 }).map((p) => p.join('/')),
);
const tarEntry: fc.Arbitrary<TarSpec> = fc.record({
  name,
  type: fc.constantFrom('file', 'file', 'directory', 'symlink', 'link', 'fifo', 'character-device'),
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o777, 0),
  data: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  linkname: fc.constantFrom('a.js', '../../etc/passwd', '/etc/shadow', 'dir', '.'),
});
const zipEntry: fc.Arbitrary<ZipSpec> = fc.record({
  name,
  data: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  mode: fc.constantFrom(0, 0o100644, 0o100755, 0o120777, 0o040755, 0o020644),
  deflate: fc.boolean(),
});

/** Flips bytes and/or cuts the archive short. */
function mutate(buf: Buffer, flips: Array<[number, number]>, cutAt: number | null): Buffer {
  const b = Buffer.from(buf);
  for (const [i, v] of flips) if (b.length > 0) b[i % b.length] = v;
  return cutAt === null ? b : b.subarray(0, Math.min(b.length, Math.max(cutAt, 4)));
}
const mutation = fc.tuple(fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.option(fc.nat(400)));

const archive = fc.oneof(
  fc.tuple(fc.array(tarEntry, { maxLength: 6 }), mutation).map(([es, [flips, cutAt]]) => ({ kind: 'tar.gz' as const, entries: es, flips, cutAt })),
  fc.tuple(fc.array(zipEntry, { maxLength: 6 }), mutation).map(([es, [flips, cutAt]]) => ({ kind: 'zip' as const, entries: es, flips, cutAt })),
  fc.uint8Array({ maxLength: 300 }).map((a) => ({ kind: 'raw-gz' as const, bytes: Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from(a)]) })),
  fc.uint8Array({ maxLength: 300 }).map((a) => ({ kind: 'raw-zip' as const, bytes: Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.from(a)]) })),
  fc.uint8Array({ maxLength: 300 }).map((a) => ({ kind: 'gz-of-raw' as const, bytes: zlib.gzipSync(Buffer.from(a)) })),
);

type Archive = typeof archive extends fc.Arbitrary<infer A> ? A : never;

async function bytesOf(a: Archive): Promise<Buffer> {
  switch (a.kind) {
    case 'tar.gz':
      return mutate(await makeTarGz(a.entries), a.flips, a.cutAt);
    case 'zip':
      return mutate(makeZip(a.entries), a.flips, a.cutAt);
    default:
      return a.bytes;
  }
}

/** Every path under dir (lstat: links are not followed). */
function walk(dir: string): Array<{ p: string; st: fs.Stats }> {
  const out: Array<{ p: string; st: fs.Stats }> = [];
  for (const e of fs.readdirSync(dir)) {
    const p = path.join(dir, e);
    const st = fs.lstatSync(p);
    out.push({ p, st });
    if (st.isDirectory()) out.push(...walk(p));
  }
  return out;
}

async function check(base: string, bytes: Buffer, n: number): Promise<void> {
  const root = path.join(base, `r${n}`, 'root');
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  let ok = false;
  try {
    await extractArchive(bytes, root, LIMITS, { fsync: false });
    ok = true;
  } catch (e) {
    if (!isHearthError(e) || (e.code !== 'INVALID_ARCHIVE' && e.code !== 'PAYLOAD_TOO_LARGE'))
      throw new Error(`extractArchive threw ${(e as Error).constructor.name} ${(e as { code?: string }).code}: ${(e as Error).message}`, { cause: e });
  }
  const outside = fs.readdirSync(path.dirname(root)).filter((x) => x !== 'root');
  if (outside.length > 0) throw new Error(`written next to the root: ${outside.join(', ')}`);
  for (const { p, st } of walk(root)) {
    if (st.isSymbolicLink()) {
      const to = path.resolve(path.dirname(p), fs.readlinkSync(p));
      if (ok && to !== root && !to.startsWith(root + '/')) throw new Error(`symlink ${p} points outside the bundle: ${to}`);
      continue;
    }
    if (!st.isFile() && !st.isDirectory()) throw new Error(`extracted a device, FIFO or socket: ${p}`);
    if (st.mode & 0o6000) throw new Error(`setuid/setgid kept on ${p}`);
  }
  fs.rmSync(path.join(base, `r${n}`), { recursive: true, force: true });
}

test('extractArchive: hostile and mutated tar.gz and zip archives are refused with a coded error or extracted inside the root only', async (t) => {
  t.timeout(180_000);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-fuzz-bundle-'));
  let n = 0;
  try {
    for (const c of corpus('bundle')) await check(base, c.data, ++n);
    await fc.assert(
      fc.asyncProperty(archive, async (a) => check(base, await bytesOf(a), ++n)),
      params('bundle', 300, 0.2),
    );
    t.pass();
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
