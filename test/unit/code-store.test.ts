/**
 * The on-disk code store (DirCodeStore) and its extractor against good and hostile archives:
 * what it promises beyond the CodeStore contract (that one: test/conformance/code-store.ts, run by
 * store-conformance.test.ts): nothing written outside the store, unpacked contents and modes,
 * crash leftovers, stores shared between processes.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { HearthError } from '../../src/errors.js';
import { sha256Hex } from '../../src/registry/code-store.js';
import { DirCodeStore } from '../../src/registry/dir-code-store.js';
import { detectFormat, normalizeEntryName, MiB } from '../../src/registry/bundle-extractor.js';
import { DIR, LNK, makeTar, makeTarGz, makeZip, REG } from '../conformance/archives.js';

// ------------------------------------------------------------------ fixtures

interface Ctx {
  root: string;
  storeDir: string;
  store: DirCodeStore;
}

async function setup(limits: ConstructorParameters<typeof DirCodeStore>[1] = {}): Promise<Ctx> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-code-store-'));
  const storeDir = path.join(root, 'store');
  const store = new DirCodeStore(storeDir, { fsync: false, ...limits });
  await store.start();
  return { root, storeDir, store };
}

/** Every path under `dir`, relative, sorted (symlinks not followed). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const ent of await fsp.readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      out.push(r);
      if (ent.isDirectory()) await walk(path.join(d, ent.name), r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

const modeOf = async (p: string): Promise<number> => (await fsp.lstat(p)).mode & 0o7777;

// ------------------------------------------------------------------ hostile archives

type Build = () => Buffer | Promise<Buffer>;
interface HostileCase {
  title: string;
  build: Build;
  code: 'INVALID_ARCHIVE' | 'PAYLOAD_TOO_LARGE';
  /** Text the message must contain (usually the entry name). */
  mentions?: string;
  limits?: Parameters<typeof setup>[0];
}

const zeros60 = Buffer.alloc(60 * MiB);

const hostile: HostileCase[] = [
  // names
  { title: 'tar: absolute path', build: () => makeTarGz([{ name: '/abs.txt', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: '/abs.txt' },
  { title: 'tar: ../x', build: () => makeTarGz([{ name: '../x', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: '../x' },
  { title: 'tar: a/../../x', build: () => makeTarGz([{ name: 'a/../../x', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: 'a/../../x' },
  { title: 'tar: a/.. (even if it stays inside)', build: () => makeTarGz([{ name: 'a/../b', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: 'a/../b' },
  { title: 'zip: absolute path', build: () => makeZip([{ name: '/abs.txt', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: '/abs.txt' },
  { title: 'zip: ../x', build: () => makeZip([{ name: '../x', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: '../x' },
  { title: 'zip: a/../../x', build: () => makeZip([{ name: 'a/../../x', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: 'a/../../x' },
  { title: 'zip: backslash traversal', build: () => makeZip([{ name: '..\\..\\x', data: 'x' }]), code: 'INVALID_ARCHIVE' },
  { title: 'zip: NUL in name', build: () => makeZip([{ name: 'a\0b', data: 'x' }]), code: 'INVALID_ARCHIVE', mentions: 'NUL' },
  // symlinks
  {
    title: 'tar: symlink to /etc/passwd',
    build: () => makeTarGz([{ name: 'pw', type: 'symlink', linkname: '/etc/passwd' }]),
    code: 'INVALID_ARCHIVE',
    mentions: 'pw',
  },
  { title: 'tar: symlink to ../..', build: () => makeTarGz([{ name: 'up', type: 'symlink', linkname: '../..' }]), code: 'INVALID_ARCHIVE', mentions: 'up' },
  {
    title: 'tar: nested symlink climbing out',
    build: () => makeTarGz([{ name: 'a/b/up', type: 'symlink', linkname: '../../../x' }]),
    code: 'INVALID_ARCHIVE',
    mentions: 'a/b/up',
  },
  {
    title: 'tar: symlink then a file through it',
    build: () =>
      makeTarGz([
        { name: 'sub/', type: 'directory' },
        { name: 'd', type: 'symlink', linkname: 'sub' },
        { name: 'd/x', data: 'x' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'd/x',
  },
  {
    title: 'tar: symlink to a dir outside, then a file through it',
    build: () =>
      makeTarGz([
        { name: 'd', type: 'symlink', linkname: '/tmp' },
        { name: 'd/x', data: 'x' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'd',
  },
  {
    title: 'tar: symlink chain escaping through another link (link first)',
    build: () =>
      makeTarGz([
        { name: 'a', type: 'symlink', linkname: '.' },
        { name: 'b', type: 'symlink', linkname: 'a/..' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'b',
  },
  {
    title: 'tar: symlink chain escaping through another link (link later)',
    // 'a/..' is lexically the root; once 'a' turns out to be a link to '.', it is the root's parent.
    build: () =>
      makeTarGz([
        { name: 'b', type: 'symlink', linkname: 'a/..' },
        { name: 'a', type: 'symlink', linkname: '.' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'b',
  },
  {
    title: 'tar: symlink replaced by a file (duplicate)',
    build: () =>
      makeTarGz([
        { name: 'l', type: 'symlink', linkname: 'x' },
        { name: 'l', data: 'boom' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'duplicate',
  },
  {
    title: 'tar: long name (ustar prefix or pax record) hiding a ..',
    build: () => makeTarGz([{ name: `${'long-directory-name/'.repeat(12)}../../../../../../../../../../../../../x`, data: 'x' }]),
    code: 'INVALID_ARCHIVE',
    mentions: '".." segment',
  },
  {
    title: 'tar: pathological symlinks (verification work is bounded)',
    build: () => makeTarGz(Array.from({ length: 1200 }, (_, i) => ({ name: `l${i}`, type: 'symlink' as const, linkname: './'.repeat(2000) + 'x' }))),
    code: 'INVALID_ARCHIVE',
    mentions: 'too numerous or too deep',
    limits: { limits: { maxRatio: 1e9 } }, // its pax records compress like a bomb; test the other guard
  },
  {
    title: 'tar: more than 40 link hops',
    build: () =>
      makeTarGz([
        { name: 'l', type: 'symlink', linkname: '.' },
        { name: 'deep', type: 'symlink', linkname: 'l/'.repeat(41) + 'x' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'deep',
  },
  {
    title: 'tar: symlink loop',
    build: () =>
      makeTarGz([
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'a/..' },
      ]),
    code: 'INVALID_ARCHIVE',
  },
  { title: 'zip: symlink to ../../etc', build: () => makeZip([{ name: 'l', mode: LNK | 0o777, data: '../../etc' }]), code: 'INVALID_ARCHIVE', mentions: 'l' },
  {
    title: 'zip: symlink to /etc/passwd',
    build: () => makeZip([{ name: 'l', mode: LNK | 0o777, data: '/etc/passwd' }]),
    code: 'INVALID_ARCHIVE',
    mentions: '/etc/passwd',
  },
  {
    title: 'zip: symlink then file through it',
    build: () =>
      makeZip([
        { name: 'sub/', mode: DIR | 0o755 },
        { name: 'd', mode: LNK | 0o777, data: 'sub' },
        { name: 'd/x', mode: REG | 0o644, data: 'x' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'd/x',
  },
  // hard links
  { title: 'tar: hard link outside', build: () => makeTarGz([{ name: 'h', type: 'link', linkname: '../outside' }]), code: 'INVALID_ARCHIVE', mentions: 'h' },
  {
    title: 'tar: hard link to /etc/passwd',
    build: () => makeTarGz([{ name: 'h', type: 'link', linkname: '/etc/passwd' }]),
    code: 'INVALID_ARCHIVE',
    mentions: 'h',
  },
  {
    title: 'tar: hard link to a later file',
    build: () =>
      makeTarGz([
        { name: 'h', type: 'link', linkname: 'f' },
        { name: 'f', data: 'x' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'h',
  },
  {
    title: 'tar: hard link to a symlink',
    build: () =>
      makeTarGz([
        { name: 'f', data: 'x' },
        { name: 's', type: 'symlink', linkname: 'f' },
        { name: 'h', type: 'link', linkname: 's' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'h',
  },
  {
    title: 'tar: hard link to a directory',
    build: () =>
      makeTarGz([
        { name: 'd/', type: 'directory' },
        { name: 'h', type: 'link', linkname: 'd' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'h',
  },
  // special files
  { title: 'tar: character device', build: () => makeTarGz([{ name: 'null', type: 'character-device' }]), code: 'INVALID_ARCHIVE', mentions: 'null' },
  { title: 'tar: block device', build: () => makeTarGz([{ name: 'sda', type: 'block-device' }]), code: 'INVALID_ARCHIVE', mentions: 'sda' },
  { title: 'tar: fifo', build: () => makeTarGz([{ name: 'pipe', type: 'fifo' }]), code: 'INVALID_ARCHIVE', mentions: 'pipe' },
  { title: 'zip: fifo', build: () => makeZip([{ name: 'pipe', mode: 0o010644 }]), code: 'INVALID_ARCHIVE', mentions: 'pipe' },
  { title: 'zip: character device', build: () => makeZip([{ name: 'null', mode: 0o020666 }]), code: 'INVALID_ARCHIVE', mentions: 'null' },
  { title: 'zip: socket', build: () => makeZip([{ name: 'sock', mode: 0o140755 }]), code: 'INVALID_ARCHIVE', mentions: 'sock' },
  {
    title: 'tar: GNU sparse entry (unknown type)',
    build: async () => {
      const raw = await makeTar([{ name: 'sparse', data: 'x' }]);
      raw[156] = 'S'.charCodeAt(0);
      // Fix the header checksum (bytes 148..155: octal sum with the field read as spaces).
      raw.fill(0x20, 148, 156);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += raw[i];
      raw.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
      return zlib.gzipSync(raw);
    },
    code: 'INVALID_ARCHIVE',
    mentions: 'unsupported tar entry type',
  },
  // structure
  {
    title: 'tar: file where a directory is needed',
    build: () =>
      makeTarGz([
        { name: 'a', data: 'x' },
        { name: 'a/b', data: 'y' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'a/b',
  },
  {
    title: 'tar: duplicate file',
    build: () =>
      makeTarGz([
        { name: 'a', data: 'x' },
        { name: 'a', data: 'y' },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'duplicate',
  },
  // sizes and counts
  {
    title: 'tar: too many entries',
    build: () => makeTarGz(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: 'x' }))),
    code: 'INVALID_ARCHIVE',
    mentions: 'too many entries',
    limits: { limits: { maxEntries: 10 } },
  },
  {
    title: 'zip: too many entries',
    build: () => makeZip(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: 'x' }))),
    code: 'INVALID_ARCHIVE',
    mentions: 'too many entries',
    limits: { limits: { maxEntries: 10 } },
  },
  {
    title: 'tar: too many entries counting directories implied by deep paths',
    build: () => makeTarGz([{ name: 'a/b/c/d/e/f/g/h/i/j/k/file', data: 'x' }]),
    code: 'INVALID_ARCHIVE',
    mentions: 'too many entries',
    limits: { limits: { maxEntries: 10 } },
  },
  {
    title: 'zip: too many entries at the default limit (20,000)',
    build: () => makeZip(Array.from({ length: 20_001 }, (_, i) => ({ name: `d/f${i}` }))),
    code: 'INVALID_ARCHIVE',
    mentions: 'too many entries',
  },
  {
    title: 'zip: bomb (60 MiB of zeros)',
    build: () => makeZip([{ name: 'zeros', data: zeros60, deflate: true }]),
    code: 'INVALID_ARCHIVE',
    mentions: 'compression bomb',
  },
  {
    title: 'tar.gz: bomb (60 MiB of zeros)',
    build: () => makeTarGz([{ name: 'zeros', data: zeros60 }]),
    code: 'INVALID_ARCHIVE',
    mentions: 'compression bomb',
  },
  {
    title: 'zip: one bomb entry hidden behind incompressible padding',
    build: () =>
      makeZip([
        { name: 'pad', data: randomBytes(2 * MiB) },
        { name: 'zeros', data: Buffer.alloc(20 * MiB), deflate: true },
      ]),
    code: 'INVALID_ARCHIVE',
    mentions: 'zeros',
  },
  { title: 'packed too large (default 50 MiB)', build: () => Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(50 * MiB)]), code: 'PAYLOAD_TOO_LARGE' },
  {
    title: 'tar: unpacked too large',
    build: () => makeTarGz([{ name: 'a', data: randomBytes(3000) }]),
    code: 'PAYLOAD_TOO_LARGE',
    limits: { limits: { maxUnpackedBytes: 2000 } },
  },
  {
    title: 'zip: unpacked too large',
    build: () =>
      makeZip([
        { name: 'a', data: randomBytes(1500) },
        { name: 'b', data: randomBytes(1500) },
      ]),
    code: 'PAYLOAD_TOO_LARGE',
    mentions: 'b',
    limits: { limits: { maxUnpackedBytes: 2000 } },
  },
  {
    title: 'zip: declared size smaller than the data (never trusted)',
    build: () => {
      const z = makeZip([{ name: 'a', data: 'hello world' }]);
      // Lie in the central directory: uncompressed size 2 instead of 11.
      const cd = z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
      z.writeUInt32LE(2, cd + 24);
      return z;
    },
    code: 'INVALID_ARCHIVE',
  },
  {
    // Regression: yauzl reported this inflate error before the entry was read, and the put hung.
    title: 'zip: corrupt deflate data',
    build: () => {
      // Deep: the directories made before the file is opened give the error time to fire first.
      const name = 'a/b/c/d/e/f/index.js';
      const z = makeZip([{ name, data: 'exports.handler = async () => 1;\n'.repeat(20), deflate: true }]);
      z[30 + name.length] = 0xff; // first block header: reserved block type
      return z;
    },
    code: 'INVALID_ARCHIVE',
    mentions: 'invalid block type',
  },
  {
    title: 'zip: content that does not match its CRC-32',
    build: () => {
      const z = makeZip([{ name: 'a.txt', data: 'hello world' }]);
      z[30 + 'a.txt'.length] ^= 0x01; // stored data: 'hello' -> 'iello'
      return z;
    },
    code: 'INVALID_ARCHIVE',
    mentions: 'CRC-32 mismatch',
  },
  // not archives
  { title: 'not an archive', build: () => Buffer.from('hello, this is plain text'), code: 'INVALID_ARCHIVE', mentions: 'not a zip or tar.gz' },
  {
    title: 'gzip of plain text (not a tar)',
    build: () => zlib.gzipSync(Buffer.from('hello, this is plain text, not a tar archive at all')),
    code: 'INVALID_ARCHIVE',
  },
  { title: 'truncated gzip', build: async () => (await makeTarGz([{ name: 'a', data: randomBytes(4000) }])).subarray(0, 200), code: 'INVALID_ARCHIVE' },
  { title: 'truncated zip', build: () => makeZip([{ name: 'a', data: 'x'.repeat(1000) }]).subarray(0, 100), code: 'INVALID_ARCHIVE' },
];

for (const c of hostile) {
  test(`rejects ${c.title}`, async (t) => {
    const ctx = await setup(c.limits);
    try {
      const archive = await c.build();
      const err = await t.throwsAsync(ctx.store.put(archive));
      t.true(err instanceof HearthError, `not a HearthError: ${String(err)}`);
      t.is((err as HearthError).code, c.code, err?.message);
      if (c.mentions) t.true(err.message.includes(c.mentions), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(c.mentions)}`);
      t.deepEqual(await fsp.readdir(ctx.storeDir), [], 'store left with content');
      t.deepEqual(await fsp.readdir(ctx.root), ['store'], 'something written outside the store');
      t.false(await ctx.store.has(sha256Hex(archive)));
    } finally {
      await fsp.rm(ctx.root, { recursive: true, force: true });
    }
  });
}

test('hostile hard link does not touch the target outside', async (t) => {
  const ctx = await setup();
  try {
    const outside = path.join(ctx.root, 'outside');
    await fsp.writeFile(outside, 'secret');
    const archive = await makeTarGz([{ name: 'h', type: 'link', linkname: '../outside' }]);
    await t.throwsAsync(ctx.store.put(archive), { instanceOf: HearthError });
    t.is((await fsp.stat(outside)).nlink, 1);
    t.is(await fsp.readFile(outside, 'utf8'), 'secret');
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ good archives

test('good tar.gz unpacks with contents, modes, in-bundle links', async (t) => {
  const ctx = await setup();
  try {
    const archive = await makeTarGz([
      { name: './', type: 'directory' },
      { name: 'lib/', type: 'directory', mode: 0o700 },
      { name: 'index.js', data: 'exports.handler = async () => 1;\n', mode: 0o600 },
      { name: 'bin/run.sh', data: '#!/bin/sh\n', mode: 0o750 },
      { name: 'lib/a.txt', data: 'A', mode: 0o4755 },
      { name: 'lib/link', type: 'symlink', linkname: '../index.js' },
      { name: 'lib/self', type: 'symlink', linkname: '.' },
      { name: 'copy.js', type: 'link', linkname: 'index.js' },
    ]);
    const r = await ctx.store.put(archive);
    t.is(r.sha256, sha256Hex(archive));
    t.is(r.size, archive.length);
    t.false(r.reused);
    t.is(r.dir, path.join(ctx.storeDir, r.sha256));
    t.is(r.unpackedBytes, 'exports.handler = async () => 1;\n'.length + '#!/bin/sh\n'.length + 1);
    t.deepEqual(await tree(r.dir), ['bin', 'bin/run.sh', 'copy.js', 'index.js', 'lib', 'lib/a.txt', 'lib/link', 'lib/self']);
    t.is(await fsp.readFile(path.join(r.dir, 'index.js'), 'utf8'), 'exports.handler = async () => 1;\n');
    t.is(await fsp.readFile(path.join(r.dir, 'lib/link'), 'utf8'), 'exports.handler = async () => 1;\n');
    t.is(await fsp.readlink(path.join(r.dir, 'lib/link')), '../index.js');
    t.is(await modeOf(r.dir), 0o755);
    t.is(await modeOf(path.join(r.dir, 'index.js')), 0o644);
    t.is(await modeOf(path.join(r.dir, 'bin/run.sh')), 0o755);
    t.is(await modeOf(path.join(r.dir, 'lib/a.txt')), 0o755, 'setuid bit dropped, exec kept');
    t.is(await modeOf(path.join(r.dir, 'lib')), 0o755);
    t.is(await modeOf(path.join(r.dir, 'bin')), 0o755);
    const a = await fsp.stat(path.join(r.dir, 'index.js'));
    const b = await fsp.stat(path.join(r.dir, 'copy.js'));
    t.is(a.ino, b.ino);
    t.deepEqual(await fsp.readdir(ctx.storeDir), [r.sha256]);
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('good zip unpacks: stored and deflated, unix and non-unix attributes, implicit dirs', async (t) => {
  const ctx = await setup();
  try {
    const big = Buffer.from('line of text\n'.repeat(10_000));
    const archive = makeZip([
      { name: 'pkg/', mode: DIR | 0o700 },
      { name: 'pkg/__init__.py', data: '', mode: REG | 0o644 },
      { name: 'pkg/mod.py', data: 'def handler(e, c):\n    return 1\n', mode: REG | 0o600, deflate: true },
      { name: 'tool', data: '#!/bin/sh\n', mode: REG | 0o775 },
      { name: 'deep/er/file.txt', data: big, deflate: true },
      { name: 'dos.txt', data: 'dos', unix: false, mode: 0o100755 /* ignored: not unix-made */ },
      { name: 'alias.py', mode: LNK | 0o777, data: 'pkg/mod.py' },
    ]);
    const r = await ctx.store.put(archive);
    t.is(r.format, 'zip');
    t.deepEqual(await tree(r.dir), ['alias.py', 'deep', 'deep/er', 'deep/er/file.txt', 'dos.txt', 'pkg', 'pkg/__init__.py', 'pkg/mod.py', 'tool']);
    t.deepEqual(await fsp.readFile(path.join(r.dir, 'deep/er/file.txt')), big);
    t.is(await fsp.readFile(path.join(r.dir, 'alias.py'), 'utf8'), 'def handler(e, c):\n    return 1\n');
    t.is(await modeOf(path.join(r.dir, 'pkg')), 0o755);
    t.is(await modeOf(path.join(r.dir, 'pkg/mod.py')), 0o644);
    t.is(await modeOf(path.join(r.dir, 'tool')), 0o755);
    t.is(await modeOf(path.join(r.dir, 'dos.txt')), 0o644);
    t.is(await modeOf(path.join(r.dir, 'deep/er')), 0o755);
    t.true((await fsp.lstat(path.join(r.dir, 'alias.py'))).isSymbolicLink());
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('compressible but honest content below the ratio floor is accepted', async (t) => {
  const ctx = await setup();
  try {
    // 512 KiB of zeros compresses > 200:1 but is under bombMinBytes (1 MiB).
    const r = await ctx.store.put(await makeTarGz([{ name: 'zeros.bin', data: Buffer.alloc(512 * 1024) }]));
    t.is(r.unpackedBytes, 512 * 1024);
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('same archive twice: the bundle on disk is not rewritten', async (t) => {
  const ctx = await setup();
  try {
    const archive = await makeTarGz([{ name: 'index.js', data: 'x' }]);
    const first = await ctx.store.put(archive);
    const marker = path.join(first.dir, 'index.js');
    const ino = (await fsp.stat(marker)).ino;
    const second = await ctx.store.put(archive);
    t.is(second.sha256, first.sha256);
    t.false(first.reused);
    t.true(second.reused);
    t.is(second.unpackedBytes, 1);
    t.is((await fsp.stat(marker)).ino, ino, 'bundle rewritten');
    t.deepEqual(await fsp.readdir(ctx.storeDir), [first.sha256]);
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('a bundle already stored by another store instance is reused, not rewritten', async (t) => {
  const ctx = await setup();
  try {
    const archive = await makeTarGz([{ name: 'index.js', data: 'x' }]);
    const sha = sha256Hex(archive);
    // Simulate the other process winning between our existence check and our rename.
    const other = new DirCodeStore(ctx.storeDir, { fsync: false });
    await other.put(archive);
    const r = await ctx.store.put(archive);
    t.true(r.reused);
    t.deepEqual(await fsp.readdir(ctx.storeDir), [sha]);
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('start removes temporary and trash directories left by a crash, and nothing else', async (t) => {
  const ctx = await setup();
  try {
    const kept = await ctx.store.put(await makeTarGz([{ name: 'a.js', data: 'a' }]));
    await fsp.mkdir(path.join(ctx.storeDir, '.tmp-abc123/sub'), { recursive: true });
    await fsp.writeFile(path.join(ctx.storeDir, '.tmp-abc123/sub/f'), 'half');
    await fsp.mkdir(path.join(ctx.storeDir, `.trash-${kept.sha256}-1-x`));
    const fresh = new DirCodeStore(ctx.storeDir, { fsync: false });
    await fresh.start();
    t.deepEqual(await fsp.readdir(ctx.storeDir), [kept.sha256]);
    t.true(await fresh.has(kept.sha256));
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('format detection and name normalisation', (t) => {
  t.is(detectFormat(Buffer.from('PK\x03\x04rest')), 'zip');
  t.is(detectFormat(Buffer.from([0x1f, 0x8b, 8, 0])), 'tar.gz');
  t.is(detectFormat(Buffer.from('ustar')), undefined);
  t.is(detectFormat(Buffer.alloc(0)), undefined);
  t.is(normalizeEntryName('./a//b/./c'), 'a/b/c');
  t.is(normalizeEntryName('./'), '');
  t.throws(() => normalizeEntryName('a/../b'), { message: /"\.\."/ });
  t.throws(() => normalizeEntryName('/a'), { message: /absolute/ });
});

test('links through links inside the bundle are fine; v7 directory entries are directories', async (t) => {
  const ctx = await setup();
  try {
    const r = await ctx.store.put(
      await makeTarGz([
        { name: 'old-style-dir/', type: 'file' },
        { name: 'old-style-dir/f.txt', data: 'f' },
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'c/../old-style-dir' },
        { name: 'c/', type: 'directory' },
        { name: 'c/up', type: 'symlink', linkname: '../a/f.txt' },
      ]),
    );
    t.true((await fsp.lstat(path.join(r.dir, 'old-style-dir'))).isDirectory());
    t.is(await fsp.readFile(path.join(r.dir, 'c/up'), 'utf8'), 'f');
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('durable mode (the default) stores the same tree', async (t) => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-code-store-'));
  try {
    const store = new DirCodeStore(path.join(root, 'store'));
    await store.start();
    const r = await store.put(makeZip([{ name: 'x/index.js', data: 'exports.handler = () => 1', deflate: true }]));
    t.deepEqual(await tree(r.dir), ['x', 'x/index.js']);
    t.is(await modeOf(path.join(root, 'store')), 0o700);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

test('zip names: unflagged UTF-8, CP437 and backslash separators', async (t) => {
  const ctx = await setup();
  try {
    const r = await ctx.store.put(
      makeZip([
        { name: 'ünï.txt', data: 'u', utf8Flag: false },
        { name: 'cp437', nameRaw: Buffer.from([0x81, 0x2e, 0x74, 0x78, 0x74]), data: 'c', utf8Flag: false },
        { name: 'win\\dir\\file.txt', data: 'w', utf8Flag: false },
      ]),
    );
    t.deepEqual(await tree(r.dir), ['ü.txt', 'win', 'win/dir', 'win/dir/file.txt', 'ünï.txt'].sort());
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});

test('corrupted archives (deterministic fuzz): stored whole or refused with a coded error, nothing left behind', async (t) => {
  const ctx = await setup();
  try {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const noise = Buffer.alloc(300);
    for (let i = 0; i < noise.length; i++) noise[i] = rand(256);
    const files = { 'index.js': 'exports.handler = async () => 1;\n'.repeat(20), 'lib/a.txt': 'aaaa', 'lib/b.bin': noise };
    const seeds = [
      await makeTarGz([...Object.entries(files).map(([name, data]) => ({ name, data })), { name: 'l', type: 'symlink', linkname: 'index.js' }]),
      makeZip([...Object.entries(files).map(([name, data]) => ({ name, data, deflate: true })), { name: 'l', mode: LNK | 0o777, data: 'index.js' }]),
      // An uncompressed tar inside gzip level 0, so header bytes themselves get flipped.
      zlib.gzipSync(await makeTar(Object.entries(files).map(([name, data]) => ({ name, data }))), { level: 0 }),
    ];
    const outcomes = { stored: 0, refused: 0 };
    for (let i = 0; i < 600; i++) {
      const base = seeds[i % seeds.length];
      const buf = Buffer.from(base);
      const flips = 1 + rand(4);
      for (let f = 0; f < flips; f++) buf[4 + rand(buf.length - 4)] = rand(256);
      const input = rand(5) === 0 ? buf.subarray(0, 4 + rand(buf.length - 4)) : buf;
      try {
        const r = await ctx.store.put(input);
        outcomes.stored++;
        // Whatever is stored is the original content: a flip either breaks a checksum or hits
        // bytes that carry no content (timestamps, attributes, the zip's local copy of a name).
        for (const [name, data] of Object.entries(files)) {
          const got = await fsp.readFile(path.join(r.dir, name)).catch(() => undefined);
          if (got !== undefined && !got.equals(Buffer.from(data))) t.fail(`case ${i}: ${name} stored with corrupt content`);
        }
        await ctx.store.remove(r.sha256);
      } catch (err) {
        outcomes.refused++;
        if (!(err instanceof HearthError) || !['INVALID_ARCHIVE', 'PAYLOAD_TOO_LARGE'].includes(err.code)) {
          t.fail(`case ${i}: unexpected error ${String(err)}`);
        }
      }
      const left = await fsp.readdir(ctx.storeDir);
      if (left.length !== 0) t.fail(`case ${i}: left ${left.join(', ')}`);
    }
    t.deepEqual(await fsp.readdir(ctx.root), ['store']);
    t.true(outcomes.refused > 0);
    t.log(outcomes);
  } finally {
    await fsp.rm(ctx.root, { recursive: true, force: true });
  }
});
