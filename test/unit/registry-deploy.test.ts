/**
 * deploy / FunctionService: validation before any write, the code store and the registry kept
 * consistent, nothing changed on failure.
 */
import test from 'ava';
import { makeTarGz } from '../conformance/archives.js';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HearthError, type ErrorCode } from '../../src/errors.js';
import { DirCodeStore } from '../../src/registry/dir-code-store.js';
import { FunctionService, deploy } from '../../src/registry/function-service.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { MemoryRegistry } from '../../src/registry/registry.js';

/** A tar.gz of `files` (mode 0644) and symlinks `links` (name → target). */
const tarGz = (files: Record<string, string>, links: Record<string, string> = {}): Promise<Buffer> =>
  makeTarGz([
    ...Object.entries(files).map(([name, data]) => ({ name, data })),
    ...Object.entries(links).map(([name, linkname]) => ({ name, type: 'symlink' as const, linkname })),
  ]);

const b64 = (b: Buffer) => b.toString('base64');

async function setup() {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-deploy-'));
  const store = new DirCodeStore(path.join(root, 'code'), { fsync: false });
  await store.start();
  const registry = new FileRegistry({ stateDir: root, fsync: false });
  await registry.start();
  const cleanup = async () => {
    await registry.stop();
    await fsp.rm(root, { recursive: true, force: true });
  };
  return { root, store, registry, cleanup };
}

const nodeCode = () => tarGz({ 'index.js': 'exports.handler = async (e) => e;\n' });

test('deploy creates, redeploy updates; the record is what the API returns', async (t) => {
  const s = await setup();
  try {
    const code = await nodeCode();
    const first = await deploy(s.store, s.registry, 'hello', { runtime: 'node', handler: 'index.handler', code: b64(code) });
    t.true(first.created);
    t.false(first.code.reused);
    t.deepEqual(Object.keys(first.record).sort(), [
      'codeSha256',
      'codeSize',
      'concurrency',
      'createdAt',
      'env',
      'handler',
      'maxEventAgeS',
      'memoryMb',
      'name',
      'retries',
      'runtime',
      'schedules',
      'timeoutMs',
      'updatedAt',
    ]);
    t.like(first.record, { name: 'hello', runtime: 'node', handler: 'index.handler', memoryMb: 128, codeSize: code.length });
    t.true(await s.store.has(first.record.codeSha256));

    const second = await deploy(s.store, s.registry, 'hello', {
      runtime: 'node',
      handler: 'index.handler',
      code: b64(code),
      memoryMb: 256,
      env: { GREETING: 'hi' },
    });
    t.false(second.created);
    t.true(second.code.reused);
    t.is(second.record.createdAt, first.record.createdAt);
    t.is(second.record.memoryMb, 256);
    t.deepEqual(second.record.env, { GREETING: 'hi' });
    t.deepEqual(await s.registry.get('hello'), second.record);
  } finally {
    await s.cleanup();
  }
});

test('bad name: refused before anything is written', async (t) => {
  const s = await setup();
  try {
    const err = await t.throwsAsync(deploy(s.store, s.registry, 'bad name', { runtime: 'node', handler: 'index.handler', code: b64(await nodeCode()) }));
    t.is((err as HearthError).code, 'INVALID_NAME');
    t.deepEqual(await s.store.list(), []);
    t.deepEqual(await s.registry.list(), []);
  } finally {
    await s.cleanup();
  }
});

test('bad field: refused before the code is stored', async (t) => {
  const s = await setup();
  try {
    const err = await t.throwsAsync(deploy(s.store, s.registry, 'fn', { runtime: 'node', handler: 'index.handler', code: b64(await nodeCode()), memoryMb: 1 }));
    t.is((err as HearthError).code, 'BAD_REQUEST');
    t.regex(err.message, /^memoryMb: /);
    t.deepEqual(await s.store.list(), []);
  } finally {
    await s.cleanup();
  }
});

test('a failing update leaves the function as it was', async (t) => {
  const s = await setup();
  try {
    const ok = await deploy(s.store, s.registry, 'fn', { runtime: 'node', handler: 'index.handler', code: b64(await nodeCode()) });
    const hostile = await tarGz({ 'index.js': 'x' }, { evil: '/etc/passwd' });
    const cases: [unknown, ErrorCode][] = [
      [{ runtime: 'node', handler: 'index.handler', code: b64(hostile) }, 'INVALID_ARCHIVE'],
      [{ runtime: 'node', handler: 'index.handler', code: b64(Buffer.from('plain text')) }, 'INVALID_ARCHIVE'],
      [{ runtime: 'node', handler: 'index.handler', code: '!!!' }, 'BAD_REQUEST'],
      [{ runtime: 'node', handler: 'missing.handler', code: b64(await tarGz({ 'other.js': '' })) }, 'BAD_REQUEST'],
      [{ runtime: 'python', handler: 'index.handler', code: b64(await nodeCode()) }, 'BAD_REQUEST'],
    ];
    for (const [body, code] of cases) {
      const err = await t.throwsAsync(deploy(s.store, s.registry, 'fn', body));
      t.is((err as HearthError).code, code, err?.message);
      t.deepEqual(await s.registry.get('fn'), ok.record);
      t.deepEqual(await s.store.list(), [ok.record.codeSha256], 'no new bundle left in the store');
    }
  } finally {
    await s.cleanup();
  }
});

test('missing handler file: message says what was looked for', async (t) => {
  const s = await setup();
  try {
    const err = await t.throwsAsync(
      deploy(s.store, s.registry, 'fn', { runtime: 'python', handler: 'app.handler', code: b64(await tarGz({ 'main.py': '' })) }),
    );
    t.is((err as HearthError).code, 'BAD_REQUEST');
    t.is(err.message, 'handler: the bundle has no module for "app.handler" (looked for app.py, app/__init__.py, app.so)');
    t.deepEqual(await s.store.list(), []);
    // The check can be turned off.
    const r = await deploy(
      s.store,
      s.registry,
      'fn',
      { runtime: 'python', handler: 'app.handler', code: b64(await tarGz({ 'main.py': '' })) },
      { checkHandler: false },
    );
    t.true(r.created);
  } finally {
    await s.cleanup();
  }
});

test('a failed deploy never removes a bundle another function uses', async (t) => {
  const s = await setup();
  try {
    const code = await tarGz({ 'main.py': 'def handler(e, c): return 1\n' });
    const a = await deploy(s.store, s.registry, 'a', { runtime: 'python', handler: 'main.handler', code: b64(code) });
    await t.throwsAsync(deploy(s.store, s.registry, 'b', { runtime: 'python', handler: 'nope.handler', code: b64(code) }));
    t.true(await s.store.has(a.record.codeSha256));
  } finally {
    await s.cleanup();
  }
});

test('network must exist when a lookup is plugged in', async (t) => {
  const s = await setup();
  try {
    const svc = new FunctionService(s.store, s.registry, { networkExists: (n) => n === 'vpc' });
    const body = { runtime: 'node', handler: 'index.handler', code: b64(await nodeCode()) };
    const err = await t.throwsAsync(svc.deploy('fn', { ...body, network: 'other' }));
    t.is((err as HearthError).code, 'NETWORK_NOT_FOUND');
    t.deepEqual(await s.store.list(), []);
    const ok = await svc.deploy('fn', { ...body, network: 'vpc' });
    t.is(ok.record.network, 'vpc');
  } finally {
    await s.cleanup();
  }
});

test('schedules are checked by the plugged-in parser', async (t) => {
  const s = await setup();
  try {
    const svc = new FunctionService(s.store, s.registry, {
      validateSchedule: (e) => {
        if (!/^(rate|cron)\(.+\)$/.test(e)) throw new Error('expected rate(...) or cron(...)');
      },
    });
    const body = { runtime: 'node', handler: 'index.handler', code: b64(await nodeCode()) };
    const err = await t.throwsAsync(svc.deploy('fn', { ...body, schedules: ['hourly'] }));
    t.is((err as HearthError).code, 'BAD_REQUEST');
    t.regex(err.message, /^schedules\.0: "hourly": expected/);
    const ok = await svc.deploy('fn', { ...body, schedules: ['rate(5 minutes)'], retries: 0, maxEventAgeS: 60 });
    t.like(ok.record, { schedules: ['rate(5 minutes)'], retries: 0, maxEventAgeS: 60 });
  } finally {
    await s.cleanup();
  }
});

test('service get/delete/list and code gc', async (t) => {
  const s = await setup();
  try {
    const svc = new FunctionService(s.store, s.registry);
    const changes: [string, boolean][] = [];
    s.registry.onChange((name, rec) => changes.push([name, rec !== undefined]));
    const v1 = await svc.deploy('fn', { runtime: 'node', handler: 'index.handler', code: b64(await nodeCode()) });
    const v2 = await svc.deploy('fn', { runtime: 'node', handler: 'index.handler', code: b64(await tarGz({ 'index.js': '// v2' })) });
    const other = await svc.deploy('other', { runtime: 'node', handler: 'index.handler', code: b64(await tarGz({ 'index.js': '// o' })) });
    t.deepEqual(
      (await svc.list()).map((r) => r.name),
      ['fn', 'other'],
    );
    t.is((await svc.get('fn')).codeSha256, v2.record.codeSha256);
    // v1's code is still in the store (instances may have it mounted) until gc says otherwise.
    t.deepEqual(await svc.gcCode([v1.record.codeSha256]), []);
    t.deepEqual(await svc.gcCode(), [v1.record.codeSha256]);
    await svc.delete('other');
    await t.throwsAsync(svc.get('other'), { instanceOf: HearthError, message: /no function named "other"/ });
    const notFound = await t.throwsAsync(svc.delete('other'));
    t.is((notFound as HearthError).code, 'FUNCTION_NOT_FOUND');
    t.is((await t.throwsAsync<HearthError>(svc.get('bad/name'))).code, 'INVALID_NAME');
    t.deepEqual(await svc.gcCode(), [other.record.codeSha256]);
    t.deepEqual(await s.store.list(), [v2.record.codeSha256]);
    t.deepEqual(changes, [
      ['fn', true],
      ['fn', true],
      ['other', true],
      ['other', false],
    ]);
  } finally {
    await s.cleanup();
  }
});

test('works the same with the in-memory registry', async (t) => {
  const s = await setup();
  try {
    const registry = new MemoryRegistry();
    await registry.start();
    const r = await deploy(s.store, registry, 'fn', { runtime: 'node', handler: 'index.handler', code: b64(await nodeCode()) });
    t.deepEqual(await registry.get('fn'), r.record);
  } finally {
    await s.cleanup();
  }
});

test('concurrent deploys of the same code, and a gc racing them, keep the bundle', async (t) => {
  const s = await setup();
  try {
    const svc = new FunctionService(s.store, s.registry);
    const code = b64(await nodeCode());
    const deploys = Array.from({ length: 5 }, (_, i) => svc.deploy(`fn${i}`, { runtime: 'node', handler: 'index.handler', code }));
    const gcs = [svc.gcCode(), svc.gcCode()];
    const out = await Promise.all(deploys);
    await Promise.all(gcs);
    t.is(new Set(out.map((o) => o.record.codeSha256)).size, 1);
    t.is(out.filter((o) => !o.code.reused).length, 1);
    t.true(await s.store.has(out[0].record.codeSha256));
    t.deepEqual(await svc.gcCode(), []);
  } finally {
    await s.cleanup();
  }
});

test('reconfigure changes the configuration and keeps the code; a bad one changes nothing', async (t) => {
  const s = await setup();
  try {
    const svc = new FunctionService(s.store, s.registry);
    const code = await tarGz({ 'index.js': 'exports.handler = async (e) => e;\n', 'other.js': 'exports.main = async () => 1;\n' });
    const first = await svc.deploy('fn', { runtime: 'node', handler: 'index.handler', code: b64(code), env: { A: '1' } });
    const config = { runtime: 'node', handler: 'other.main', memoryMb: 256, env: { B: '2' }, description: 'changed' };
    const out = await svc.reconfigure('fn', config);
    t.like(out.record, { handler: 'other.main', memoryMb: 256, env: { B: '2' }, description: 'changed', codeSha256: first.record.codeSha256 });
    t.false(out.created);
    const fault = async (name: string, body: unknown): Promise<ErrorCode> => (await t.throwsAsync<HearthError>(svc.reconfigure(name, body)))?.code;
    t.is(await fault('fn', { ...config, handler: 'missing.main' }), 'BAD_REQUEST', 'the kept bundle has no module for the new handler');
    t.is(await fault('fn', { ...config, code: b64(code) }), 'BAD_REQUEST', 'code is not part of a reconfigure');
    t.is(await fault('fn', { ...config, memoryMb: 5 }), 'BAD_REQUEST');
    t.is(await fault('ghost', config), 'FUNCTION_NOT_FOUND');
    t.like(await svc.get('fn'), { handler: 'other.main', memoryMb: 256 }, 'the refused ones changed nothing');
  } finally {
    await s.cleanup();
  }
});
