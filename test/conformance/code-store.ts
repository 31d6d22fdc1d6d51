/**
 * The `CodeStore` conformance suite: every implementation (DirCodeStore, MemoryCodeStore, and any
 * future one) must pass it. `codeStoreConformance(name, make)` registers ava tests; `make`
 * returns a started, empty store with the given archive limits, and a cleanup.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { HearthError } from '../../src/errors.js';
import type { ArchiveLimits } from '../../src/registry/bundle-extractor.js';
import { handlerCandidates, sha256Hex, type CodeStore } from '../../src/registry/code-store.js';
import { makeTarGz, makeZip } from './archives.js';

export interface CodeStoreSubject {
  store: CodeStore;
  cleanup(this: void): Promise<void>;
}

export function codeStoreConformance(name: string, make: (limits?: Partial<ArchiveLimits>) => Promise<CodeStoreSubject>): void {
  const suite = (title: string, fn: (t: ExecutionContext, s: CodeStore) => Promise<void>, limits?: Partial<ArchiveLimits>) =>
    test(`${name}: ${title}`, async (t) => {
      const { store, cleanup } = await make(limits);
      try {
        await fn(t, store);
      } finally {
        await cleanup();
      }
    });

  suite('the same archive twice: same sha, stored once, the second reused', async (t, s) => {
    const archive = await makeTarGz([{ name: 'index.js', data: 'x' }]);
    const first = await s.put(archive);
    const second = await s.put(archive);
    t.is(first.sha256, sha256Hex(archive));
    t.is(second.sha256, first.sha256);
    t.false(first.reused);
    t.true(second.reused);
    t.is(first.format, 'tar.gz');
    t.is(first.size, archive.length);
    t.is(first.unpackedBytes, 1);
    t.is(second.unpackedBytes, 1);
    t.is(first.dir, s.path(first.sha256));
    t.deepEqual(await s.list(), [first.sha256]);
  });

  suite('concurrent puts of one archive: one unpack, one bundle', async (t, s) => {
    const archive = makeZip(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}.js`, data: `// ${i}` })));
    const results = await Promise.all([s.put(archive), s.put(archive), s.put(archive)]);
    t.is(results.filter((r) => !r.reused).length, 1);
    t.is(new Set(results.map((r) => r.sha256)).size, 1);
    t.deepEqual(await s.list(), [results[0].sha256]);
  });

  suite('remove, has, list (sorted), gc', async (t, s) => {
    const a = await s.put(await makeTarGz([{ name: 'a.js', data: 'a' }]));
    const b = await s.put(makeZip([{ name: 'b.js', data: 'b' }]));
    const c = await s.put(await makeTarGz([{ name: 'c.js', data: 'c' }]));
    t.deepEqual(await s.list(), [a.sha256, b.sha256, c.sha256].sort());
    t.true(await s.has(a.sha256));
    t.true(await s.remove(a.sha256));
    t.false(await s.remove(a.sha256));
    t.false(await s.has(a.sha256));
    t.deepEqual(await s.gc([b.sha256]), [c.sha256]);
    t.deepEqual(await s.list(), [b.sha256]);
    t.false(await s.has(c.sha256));
  });

  suite('remove waits for a running put of the same bundle', async (t, s) => {
    const archive = await makeTarGz([{ name: 'index.js', data: 'x' }]);
    const putting = s.put(archive);
    const removed = await s.remove(sha256Hex(archive));
    await putting;
    t.true(removed, 'the bundle was stored, then removed');
    t.false(await s.has(sha256Hex(archive)));
  });

  suite('a malformed sha is refused with BAD_REQUEST', async (t, s) => {
    for (const bad of ['../../etc', 'ABC', 'a'.repeat(63)]) {
      t.is(t.throws<HearthError>(() => s.path(bad)).code, 'BAD_REQUEST');
      t.is((await t.throwsAsync<HearthError>(s.remove(bad))).code, 'BAD_REQUEST');
      t.is((await t.throwsAsync<HearthError>(s.has(bad))).code, 'BAD_REQUEST');
    }
  });

  const refused: { title: string; build: () => Buffer | Promise<Buffer>; code: 'INVALID_ARCHIVE' | 'PAYLOAD_TOO_LARGE'; limits?: Partial<ArchiveLimits> }[] = [
    { title: 'tar with ../x', build: () => makeTarGz([{ name: '../x', data: 'x' }]), code: 'INVALID_ARCHIVE' },
    { title: 'zip with an absolute path', build: () => makeZip([{ name: '/abs.txt', data: 'x' }]), code: 'INVALID_ARCHIVE' },
    { title: 'bytes that are no archive', build: () => Buffer.from('hello'), code: 'INVALID_ARCHIVE' },
    { title: 'gzip of plain text', build: () => zlib.gzipSync(Buffer.from('plain text, not a tar')), code: 'INVALID_ARCHIVE' },
    {
      title: 'an archive over the packed limit',
      build: () => makeTarGz([{ name: 'a.js', data: randomBytes(5000) }]),
      code: 'PAYLOAD_TOO_LARGE',
      limits: { maxPackedBytes: 100 },
    },
  ];
  for (const c of refused) {
    suite(
      `refuses ${c.title} (${c.code}), storing nothing`,
      async (t, s) => {
        const archive = await c.build();
        const err = await t.throwsAsync(s.put(archive), { instanceOf: HearthError });
        t.is(err.code, c.code, err?.message);
        t.false(await s.has(sha256Hex(archive)));
        t.deepEqual(await s.list(), []);
      },
      c.limits,
    );
  }

  suite('hasHandlerFile finds node and python modules the way the shims load them', async (t, s) => {
    const r = await s.put(
      await makeTarGz([
        { name: 'index.mjs', data: 'export const handler = () => 1' },
        { name: 'src/app.js', data: '' },
        { name: 'main.py', data: '' },
        { name: 'pkg/__init__.py', data: '' },
        { name: 'pkg/mod.py', data: '' },
        { name: 'dir.js/', type: 'directory' },
        { name: 'lib/', type: 'directory' },
        { name: 'lib/fast.cpython-311-x86_64-linux-gnu.so', data: '\x7fELF' },
        { name: 'link.js', type: 'symlink', linkname: 'src/app.js' },
        { name: 'alias', type: 'symlink', linkname: 'pkg' },
        { name: 'loop/', type: 'directory' },
        { name: 'loop/up', type: 'symlink', linkname: '..' },
      ]),
    );
    const has = (handler: string, runtime: 'node' | 'python') => s.hasHandlerFile(r.sha256, handler, runtime);
    t.true(await has('index.handler', 'node'));
    t.true(await has('src/app.handler', 'node'));
    t.false(await has('missing.handler', 'node'));
    t.false(await has('dir.handler', 'node'), 'a directory is not a module file');
    t.true(await has('main.handler', 'python'));
    t.true(await has('pkg.handler', 'python'));
    t.true(await has('pkg/mod.handler', 'python'));
    t.true(await has('pkg.mod.handler', 'python'));
    t.false(await has('index.handler', 'python'));
    t.true(await has('lib/fast.handler', 'python'), 'extension module');
    t.false(await has('lib/slow.handler', 'python'));
    t.true(await has('link.handler', 'node'), 'symlink to a module');
    t.true(await has('src/app.handlers.main', 'node'), 'nested export');
    t.true(await has('alias.mod.handler', 'python'), 'a module through a symlinked directory');
    t.true(await has('loop/up/main.handler', 'python'), 'through a link back up');
    t.false(await s.hasHandlerFile('f'.repeat(64), 'index.handler', 'node'), 'a bundle not stored has no handler');
    t.deepEqual(handlerCandidates('a/b.h', 'node'), ['a/b.js', 'a/b.cjs', 'a/b.mjs']);
    t.deepEqual(handlerCandidates('a.b.h', 'python'), ['a/b.py', 'a/b/__init__.py', 'a/b.so']);
  });

  suite('hasHandlerFile for provided: an executable bootstrap at the root, whatever the handler', async (t, s) => {
    const put = async (entries: Parameters<typeof makeTarGz>[0]) => (await s.put(await makeTarGz(entries))).sha256;
    const ok = await put([{ name: 'bootstrap', data: '#!/bin/sh\n', mode: 0o755 }]);
    const notExec = await put([{ name: 'bootstrap', data: '#!/bin/sh\n', mode: 0o644 }]);
    const nested = await put([{ name: 'bin/bootstrap', data: '#!/bin/sh\n', mode: 0o755 }]);
    const dir = await put([{ name: 'bootstrap/', type: 'directory' }]);
    t.true(await s.hasHandlerFile(ok, '', 'provided'));
    t.true(await s.hasHandlerFile(ok, 'any thing at all', 'provided'));
    t.false(await s.hasHandlerFile(notExec, '', 'provided'), 'not executable');
    t.false(await s.hasHandlerFile(nested, '', 'provided'), 'not at the root');
    t.false(await s.hasHandlerFile(dir, '', 'provided'), 'a directory');
    t.deepEqual(handlerCandidates('whatever', 'provided'), ['bootstrap']);
  });
}
