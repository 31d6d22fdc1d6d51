/**
 * Function specs (validation, defaults, messages), and FileRegistry's own promises beyond the
 * FunctionRegistry contract (that one: test/conformance/function-registry.ts, run by
 * store-conformance.test.ts): persistence, atomic files, leftovers and corrupt files at start.
 */
import test from 'ava';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HearthError } from '../../src/errors.js';
import { decodeCode, FUNCTION_DEFAULTS, parseDeployRequest, handlerModulePath, validateFunctionName } from '../../src/registry/function-spec.js';
import { FileRegistry } from '../../src/registry/file-registry.js';
import { def, StepClock } from '../conformance/function-registry.js';

// ------------------------------------------------------------------ spec validation

const base = { runtime: 'node', handler: 'index.handler', code: 'UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==' };

test('defaults are filled in', (t) => {
  const r = parseDeployRequest(base);
  t.like(r, { ...FUNCTION_DEFAULTS, env: {}, schedules: [] });
  t.is(r.memoryMb, 128);
  t.is(r.timeoutMs, 3000);
  t.is(r.concurrency, 10);
  t.is(r.retries, 2);
  t.is(r.maxEventAgeS, 21600);
  t.is(r.network, undefined);
});

test('a full valid request passes unchanged', (t) => {
  const body = {
    ...base,
    runtime: 'python',
    handler: 'pkg/mod.handler',
    memoryMb: 4096,
    timeoutMs: 900_000,
    env: { A: '1', _b2: 'x y' },
    concurrency: 1000,
    retries: 0,
    maxEventAgeS: 60,
    schedules: ['rate(5 minutes)'],
    network: 'vpc-1',
  };
  t.deepEqual(parseDeployRequest(body), body);
});

test('provided: the handler is optional and free-form (it becomes _HANDLER); control characters are refused', (t) => {
  const body = { runtime: 'provided', code: 'AAAA' };
  t.is(parseDeployRequest(body).handler, '');
  t.is(parseDeployRequest({ ...body, handler: 'function.handler' }).handler, 'function.handler');
  t.is(parseDeployRequest({ ...body, handler: 'any text/with: punctuation' }).handler, 'any text/with: punctuation');
  const err = t.throws(() => parseDeployRequest({ ...body, handler: 'a\nb' }), { instanceOf: HearthError });
  t.regex(err.message, /^handler: must not contain control characters/);
  t.throws(() => parseDeployRequest({ ...body, handler: 'x'.repeat(513) }), { message: /^handler: must be at most 512 characters/ });
  t.throws(() => parseDeployRequest({ runtime: 'node', code: 'AAAA' }), { message: /^handler: is required/ });
});

const bad: { title: string; body: Record<string, unknown>; mentions: RegExp }[] = [
  { title: 'unknown runtime', body: { runtime: 'ruby' }, mentions: /^runtime: must be "node", "python" or "provided"/ },
  { title: 'missing runtime', body: { runtime: undefined }, mentions: /^runtime: is required/ },
  { title: 'missing handler', body: { handler: undefined }, mentions: /^handler: is required/ },
  { title: 'handler without function', body: { handler: 'index' }, mentions: /^handler: must have the form "file.function"/ },
  { title: 'handler with ..', body: { handler: '../x.handler' }, mentions: /^handler: .*"\.\."/ },
  { title: 'handler with .. inside a segment', body: { handler: 'a/b..c.handler' }, mentions: /^handler: .*\.\./ },
  { title: 'handler absolute', body: { handler: '/x.handler' }, mentions: /^handler: must be relative/ },
  { title: 'handler odd characters', body: { handler: 'a b.handler' }, mentions: /^handler: path segment "a b"/ },
  { title: 'handler function not identifier', body: { handler: 'a.1x' }, mentions: /^handler: function name "1x"/ },
  { title: 'handler empty segment', body: { handler: 'a//b.h' }, mentions: /^handler: must not contain empty path segments/ },
  { title: 'memoryMb too small', body: { memoryMb: 10 }, mentions: /^memoryMb: must be between 64 and 4096/ },
  { title: 'memoryMb too big', body: { memoryMb: 5000 }, mentions: /^memoryMb: must be between 64 and 4096/ },
  { title: 'memoryMb not integer', body: { memoryMb: 100.5 }, mentions: /^memoryMb: must be an integer/ },
  { title: 'memoryMb string', body: { memoryMb: '128' }, mentions: /^memoryMb: memoryMb must be a number/ },
  { title: 'timeoutMs too small', body: { timeoutMs: 99 }, mentions: /^timeoutMs: must be between 100 and 900000/ },
  { title: 'timeoutMs too big', body: { timeoutMs: 900_001 }, mentions: /^timeoutMs: / },
  { title: 'concurrency 0', body: { concurrency: 0 }, mentions: /^concurrency: must be between 1 and 1000/ },
  { title: 'retries 11', body: { retries: 11 }, mentions: /^retries: must be between 0 and 10/ },
  { title: 'maxEventAgeS 30', body: { maxEventAgeS: 30 }, mentions: /^maxEventAgeS: must be between 60 and 21600/ },
  { title: 'env bad key', body: { env: { '1BAD': 'x' } }, mentions: /^env\.1BAD: keys must match/ },
  { title: 'env value not string', body: { env: { A: 1 } }, mentions: /^env\.A: values must be strings/ },
  { title: 'env value with NUL', body: { env: { A: 'a\0b' } }, mentions: /^env\.A: values must not contain NUL/ },
  { title: 'env too large', body: { env: { A: 'x'.repeat(4096) } }, mentions: /^env: total size 4097 bytes exceeds 4096/ },
  { title: 'env array', body: { env: ['A=1'] }, mentions: /^env: / },
  { title: 'env __proto__ key', body: { env: JSON.parse('{"__proto__":"x"}') }, mentions: /^env\.__proto__: reserved name/ },
  { title: 'schedules not array', body: { schedules: 'rate(1 minute)' }, mentions: /^schedules: must be an array of strings/ },
  { title: 'schedule not string', body: { schedules: [5] }, mentions: /^schedules\.0: entries must be strings/ },
  { title: 'schedule empty', body: { schedules: [''] }, mentions: /^schedules\.0: entries must not be empty/ },
  { title: 'network bad name', body: { network: 'a/b' }, mentions: /^network: must match/ },
  { title: 'unknown field', body: { timeout: 5 }, mentions: /^unknown field: timeout/ },
  { title: 'missing code', body: { code: undefined }, mentions: /^code: is required/ },
  { title: 'code not string', body: { code: 5 }, mentions: /^code: must be a base64 string/ },
];

for (const c of bad) {
  test(`bad request: ${c.title}`, (t) => {
    const body: Record<string, unknown> = { ...base, ...c.body };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    const err = t.throws(() => parseDeployRequest(body), { instanceOf: HearthError });
    t.is(err.code, 'BAD_REQUEST');
    t.regex(err.message, c.mentions);
  });
}

test('several faults are all named', (t) => {
  const err = t.throws(() => parseDeployRequest({ ...base, memoryMb: 1, retries: -1 }), { instanceOf: HearthError });
  t.regex(err.message, /memoryMb: .*; retries: /);
});

test('bodies that are not objects', (t) => {
  for (const body of [null, [], 'x', 5]) {
    t.throws(() => parseDeployRequest(body), { instanceOf: HearthError, message: /^body: must be a JSON object/ });
  }
});

test('schedules go through the plugged-in validator', (t) => {
  const seen: string[] = [];
  const validateSchedule = (expr: string) => {
    seen.push(expr);
    if (!expr.startsWith('rate(')) throw new Error('expected rate(...) or cron(...)');
  };
  t.notThrows(() => parseDeployRequest({ ...base, schedules: ['rate(1 minute)'] }, { validateSchedule }));
  const err = t.throws(() => parseDeployRequest({ ...base, schedules: ['rate(1 minute)', 'every day'] }, { validateSchedule }));
  t.is((err as HearthError).code, 'BAD_REQUEST');
  t.is(err.message, 'schedules.1: "every day": expected rate(...) or cron(...)');
  t.deepEqual(seen, ['rate(1 minute)', 'rate(1 minute)', 'every day']);
  t.throws(() => parseDeployRequest({ ...base, schedules: ['x'] }, { validateSchedule: () => 'bad unit' }), { message: /schedules\.0: "x": bad unit/ });
  t.throws(() => parseDeployRequest({ ...base, schedules: ['x'] }, { validateSchedule: () => false }), { message: /invalid schedule/ });
});

test('function names', (t) => {
  for (const ok of ['a', 'A-b_9', 'x'.repeat(64)]) t.is(validateFunctionName(ok), ok);
  for (const badName of ['', 'x'.repeat(65), 'a.b', 'a/b', '../x', 'a b', 'é', 5]) {
    const err = t.throws(() => validateFunctionName(badName), { instanceOf: HearthError });
    t.is(err.code, 'INVALID_NAME');
  }
});

test('handler module paths follow each shim', (t) => {
  t.is(handlerModulePath('index.handler', 'node'), 'index');
  t.is(handlerModulePath('src/app.handlers.main', 'node'), 'src/app', 'node: nested export after the first dot');
  t.is(handlerModulePath('app.handler', 'python'), 'app');
  t.is(handlerModulePath('pkg.mod.handler', 'python'), 'pkg/mod');
  t.is(handlerModulePath('pkg/mod.handler', 'python'), 'pkg/mod');
  t.is(handlerModulePath('pkg/mod.py.handler', 'python'), 'pkg/mod');
});

const runtimeHandlers: { runtime: 'node' | 'python'; handler: string; ok: boolean }[] = [
  { runtime: 'node', handler: 'my-app.handler', ok: true },
  { runtime: 'node', handler: 'lib/index.handlers.main', ok: true },
  { runtime: 'node', handler: 'index.a-b', ok: false },
  { runtime: 'node', handler: 'dir/.hidden.handler', ok: false },
  { runtime: 'node', handler: 'index.1st.handler', ok: false },
  { runtime: 'python', handler: 'my-app.handler', ok: false },
  { runtime: 'python', handler: 'pkg/mod.handler', ok: true },
  { runtime: 'python', handler: 'pkg.mod.handler', ok: true },
  { runtime: 'python', handler: '1pkg.handler', ok: false },
  { runtime: 'python', handler: 'app.$h', ok: false },
];

for (const c of runtimeHandlers) {
  test(`handler ${c.handler} for ${c.runtime} is ${c.ok ? 'accepted' : 'refused'}`, (t) => {
    const run = () => parseDeployRequest({ ...base, runtime: c.runtime, handler: c.handler });
    if (c.ok) t.notThrows(run);
    else t.regex(t.throws(run, { instanceOf: HearthError }).message, /^handler: /);
  });
}

test('code decoding', (t) => {
  t.deepEqual(decodeCode(Buffer.from('hello').toString('base64'), 1000), Buffer.from('hello'));
  t.deepEqual(decodeCode('aGVs\nbG8=\n', 1000), Buffer.from('hello'), 'line breaks tolerated');
  for (const s of ['not base64!', 'aGVsbG8', 'aGV=sbG8']) {
    const err = t.throws(() => decodeCode(s, 1000), { instanceOf: HearthError });
    t.is(err.code, 'BAD_REQUEST');
    t.regex(err.message, /^code: must be standard base64/);
  }
  const big = Buffer.alloc(1001).toString('base64');
  t.is(t.throws<HearthError>(() => decodeCode(big, 1000)).code, 'PAYLOAD_TOO_LARGE');
  t.is(t.throws<HearthError>(() => decodeCode(Buffer.alloc(1000).toString('base64'), 999)).code, 'PAYLOAD_TOO_LARGE');
});

// ------------------------------------------------------------------ FileRegistry on disk

async function tmpState(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-registry-'));
}

test('FileRegistry: records survive a new instance', async (t) => {
  const dir = await tmpState();
  try {
    const clock = new StepClock();
    const a = new FileRegistry({ stateDir: dir, clock });
    await a.start();
    await a.put('keep', def({ env: { X: 'y' }, schedules: ['rate(1 minute)'], network: 'n1' }));
    await a.put('gone', def());
    await a.delete('gone');
    clock.t += 1000;
    await a.put('keep', def({ memoryMb: 512, env: { X: 'y' }, schedules: ['rate(1 minute)'], network: 'n1' }));
    const before = await a.list();
    await a.stop();

    const b = new FileRegistry({ stateDir: dir });
    await b.start();
    t.deepEqual(await b.list(), before);
    t.is((await b.get('keep'))?.createdAt, '2026-01-01T00:00:00.000Z');
    t.is((await b.get('keep'))?.updatedAt, '2026-01-01T00:00:01.000Z');
    t.deepEqual(b.skipped, []);
    t.deepEqual(await fsp.readdir(path.join(dir, 'functions')), ['keep.json']);
    t.is((await fsp.stat(path.join(dir, 'functions', 'keep.json'))).mode & 0o777, 0o600);
    await b.stop();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('FileRegistry: every write replaces the file whole; no temporary files remain', async (t) => {
  const dir = await tmpState();
  try {
    const r = new FileRegistry({ stateDir: dir });
    await r.start();
    const file = path.join(dir, 'functions', 'fn.json');
    await Promise.all(Array.from({ length: 30 }, (_, i) => r.put('fn', def({ codeSize: i }))));
    // The file always parses: read it while more writes run.
    const writes = Array.from({ length: 30 }, (_, i) => r.put('fn', def({ codeSize: 100 + i })));
    for (let i = 0; i < 30; i++) {
      const text = await fsp.readFile(file, 'utf8');
      t.notThrows(() => JSON.parse(text));
    }
    await Promise.all(writes);
    t.is(JSON.parse(await fsp.readFile(file, 'utf8')).codeSize, 129);
    t.deepEqual(await fsp.readdir(path.join(dir, 'functions')), ['fn.json']);
    await r.stop();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('FileRegistry: a failed write changes nothing', async (t) => {
  const dir = await tmpState();
  try {
    const r = new FileRegistry({ stateDir: dir });
    await r.start();
    const { record } = await r.put('fn', def());
    const events: string[] = [];
    r.onChange((n) => events.push(n));
    // Make the directory unwritable in a way root also respects: replace it with a file.
    const fdir = path.join(dir, 'functions');
    await fsp.rename(fdir, `${fdir}.moved`);
    await fsp.writeFile(fdir, 'not a directory');
    await t.throwsAsync(r.put('fn', def({ memoryMb: 999 })));
    await t.throwsAsync(r.put('new', def()));
    t.deepEqual(await r.get('fn'), record);
    t.is(await r.get('new'), undefined);
    t.deepEqual(events, []);
    await fsp.rm(fdir);
    await fsp.rename(`${fdir}.moved`, fdir);
    await r.stop();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('FileRegistry: start removes leftover temporary files and skips corrupt records', async (t) => {
  const dir = await tmpState();
  try {
    const fdir = path.join(dir, 'functions');
    await fsp.mkdir(fdir, { recursive: true });
    const good = new FileRegistry({ stateDir: dir });
    await good.start();
    await good.put('ok', def());
    await good.stop();
    await fsp.writeFile(path.join(fdir, '.tmp-ok-123456'), '{"half":');
    await fsp.writeFile(path.join(fdir, 'broken.json'), '{"name":"broken",');
    await fsp.writeFile(path.join(fdir, 'wrong.json'), JSON.stringify({ ...(await good.get('ok')), name: 'other' }));
    await fsp.writeFile(path.join(fdir, 'invalid.json'), JSON.stringify({ ...(await good.get('ok')), name: 'invalid', memoryMb: 'lots' }));
    const warnings: object[] = [];
    const r = new FileRegistry({ stateDir: dir, log: { warn: (o) => warnings.push(o) } });
    await r.start();
    t.deepEqual(
      (await r.list()).map((x) => x.name),
      ['ok'],
    );
    t.deepEqual(r.skipped.map((s) => path.basename(s.file)).sort(), ['broken.json', 'invalid.json', 'wrong.json']);
    t.is(warnings.length, 3);
    t.false((await fsp.readdir(fdir)).some((f) => f.startsWith('.tmp-')));
    await r.stop();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
