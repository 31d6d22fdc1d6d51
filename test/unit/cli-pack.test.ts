/**
 * packDirectory: the same files give the same bytes (so the same code hash and one stored copy),
 * whatever their mtimes and owners; executable bits survive.
 */
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { packDirectory } from '../../src/cli/pack.js';
import { DirCodeStore as CodeStore } from '../../src/registry/dir-code-store.js';
import { deploy } from '../../src/registry/function-service.js';
import { MemoryRegistry } from '../../src/registry/registry.js';

function fixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-pack-'));
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'index.js'), 'exports.handler = async () => 1;\n');
  writeFileSync(join(dir, 'lib', 'b.js'), 'module.exports = 2;\n');
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'run.sh'), 0o750);
  symlinkSync('lib/b.js', join(dir, 'b.js'));
  return dir;
}

async function entries(tgz: Buffer): Promise<Array<{ name: string; mode?: number; mtime?: Date; uid?: number; gid?: number; uname?: string }>> {
  const ex = tar.extract();
  const out: Array<{ name: string; mode?: number; mtime?: Date; uid?: number; gid?: number; uname?: string }> = [];
  ex.on('entry', (h, stream, next) => {
    out.push({ name: h.name, mode: h.mode, mtime: h.mtime, uid: h.uid, gid: h.gid, uname: h.uname });
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(gunzipSync(tgz));
  await done;
  return out;
}

test('packing twice, with mtimes changed in between, gives the same bytes; entries are sorted and normalised', async (t) => {
  const dir = fixture();
  try {
    const a = await packDirectory(dir);
    for (const f of ['index.js', 'lib/b.js', 'run.sh', 'lib']) utimesSync(join(dir, f), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const b = await packDirectory(dir);
    t.true(a.equals(b));
    t.is(a.readUInt32LE(4), 0, 'no timestamp in the gzip header');
    const list = await entries(a);
    t.deepEqual(
      list.map((e) => e.name),
      ['b.js', 'index.js', 'lib/', 'lib/b.js', 'run.sh'],
    );
    for (const e of list) {
      t.is(e.mtime!.getTime(), 0);
      t.is(e.uid, 0);
      t.is(e.gid, 0);
      t.is(e.uname, '');
    }
    t.is(list.find((e) => e.name === 'run.sh')!.mode, 0o755, 'the executable bit is kept');
    t.is(list.find((e) => e.name === 'index.js')!.mode, 0o644);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('deploying the same directory twice gives the same codeSha256 and reuses the stored bundle', async (t) => {
  const dir = fixture();
  const state = mkdtempSync(join(tmpdir(), 'hearth-pack-store-'));
  try {
    const store = new CodeStore(join(state, 'code'), { fsync: false });
    await store.start();
    const registry = new MemoryRegistry();
    await registry.start();
    const body = async () => ({ runtime: 'node', handler: 'index.handler', code: (await packDirectory(dir)).toString('base64') });
    const first = await deploy(store, registry, 'f', await body());
    utimesSync(join(dir, 'index.js'), new Date(), new Date(Date.now() + 5000));
    const second = await deploy(store, registry, 'f', await body());
    t.is(second.record.codeSha256, first.record.codeSha256);
    t.true(second.code.reused);
    await store.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
});
