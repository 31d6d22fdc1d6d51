/**
 * The Node and Python shims run as plain child processes (no sandbox, no root) with an empty
 * environment, fd 3 a Unix socketpair (libuv's 'pipe' stdio), `--code` a temporary directory of
 * handlers written by the test, driven through InstanceConnection.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { InstanceConnection, InstanceError, isInstanceError } from '../../src/runtimes/instance-connection.js';
import { MAX_LOG_BYTES, MAX_RESULT_BYTES } from '../../src/runtimes/protocol.js';
import type { InvokeOutcome, ShimRuntime as Runtime, SpecializeSpec } from '../../src/runtimes/types.js';

const repo = resolve(__dirname, '../../..');
const NODE_SHIM = join(repo, 'src/runtimes/node/shim.js');
const PY_DIR = join(repo, 'src/runtimes/python');
const PY_SHIM = join(PY_DIR, 'shim.py');
const NODE = '/usr/bin/node';
const PYTHON = '/usr/bin/python3';

type Files = Record<string, string>;

interface Instance {
  conn: InstanceConnection;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) when the process ends. */
  exit: Promise<number | string | null>;
}

function writeFiles(t: ExecutionContext, files: Files): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-rt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function spawnShim(t: ExecutionContext, command: string, args: string[]): Instance {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], env: {} });
  const exit = new Promise<number | string | null>((res) => child.once('exit', (code, signal) => res(code ?? signal)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  const conn = new InstanceConnection(child.stdio[3] as Duplex);
  t.teardown(() => conn.close());
  return { conn, child, exit };
}

function start(t: ExecutionContext, runtime: Runtime, files: Files): Instance {
  const dir = writeFiles(t, files);
  return runtime === 'node' ? spawnShim(t, NODE, [NODE_SHIM, '--code', dir]) : spawnShim(t, PYTHON, ['-I', '-S', PY_SHIM, '--code', dir]);
}

function spec(handler: string, extra: Partial<SpecializeSpec> = {}): SpecializeSpec {
  return { name: 'fn-under-test', handler, memoryMb: 128, timeoutMs: 3000, env: {}, ...extra };
}

async function specialized(t: ExecutionContext, runtime: Runtime, files: Files, handler: string, extra?: Partial<SpecializeSpec>): Promise<Instance> {
  const inst = start(t, runtime, files);
  t.is((await inst.conn.ready()).runtime, runtime);
  await inst.conn.specialize(spec(handler, extra));
  return inst;
}

let seq = 0;
function invoke(inst: Instance, event: unknown = {}, deadline = Date.now() + 3000): Promise<InvokeOutcome> {
  return inst.conn.invoke(`inv-${++seq}`, event, deadline);
}

function ok(t: ExecutionContext, o: InvokeOutcome): unknown {
  if (!o.ok) t.fail(`expected a result, got ${o.error.type}: ${o.error.message}\n${o.error.stack}\nlogs: ${o.logs}`);
  return o.ok ? o.result : undefined;
}

function failed(t: ExecutionContext, o: InvokeOutcome) {
  if (o.ok) {
    t.fail(`expected an error, got result ${JSON.stringify(o.result)}`);
    throw new Error('unreachable');
  }
  return o.error;
}

// ---------------------------------------------------------------------------------------------
// Handlers that behave the same in both runtimes, written once per language.

interface Case {
  files: Files;
  handler: string;
}
/** What the `echo` handlers return. */
interface EchoResult {
  event: unknown;
  calls: number;
  pid: number;
  env: string | null;
  cwd: string;
  ctx: { id: string; aws: string; name: string; mem: number; remaining: number };
}
const echo: Record<Runtime, Case> = {
  node: {
    files: {
      'index.js': `
let calls = 0;
exports.handler = async (event, context) => {
  calls++;
  console.log('log line', JSON.stringify(event).length);
  console.error('err line');
  process.stdout.write('raw write\\n');
  return {
    event, calls, pid: process.pid,
    env: process.env.GREETING ?? null, cwd: process.cwd(),
    ctx: { id: context.invocationId, aws: context.awsRequestId, name: context.functionName,
           mem: context.memoryLimitInMB, remaining: context.getRemainingTimeInMillis() },
  };
};`,
    },
    handler: 'index.handler',
  },
  python: {
    files: {
      'app.py': `
import json, os, sys
calls = 0
def handler(event, context):
    global calls
    calls += 1
    print('log line', len(json.dumps(event, separators=(',', ':'), ensure_ascii=False)))
    print('err line', file=sys.stderr)
    sys.stdout.write('raw write\\n')
    return {
        'event': event, 'calls': calls, 'pid': os.getpid(),
        'env': os.environ.get('GREETING'), 'cwd': os.getcwd(),
        'ctx': {'id': context.invocation_id, 'aws': context.aws_request_id, 'name': context.function_name,
                'mem': context.memory_limit_in_mb, 'remaining': context.get_remaining_time_in_millis()},
    }
`,
    },
    handler: 'app.handler',
  },
};

for (const runtime of ['node', 'python'] as const) {
  test(`${runtime}: result, context, env, cwd and captured logs`, async (t) => {
    const c = echo[runtime];
    const inst = await specialized(t, runtime, c.files, c.handler, { env: { GREETING: 'hej' }, memoryMb: 256 });
    const deadline = Date.now() + 2500;
    const out = await inst.conn.invoke('the-id', { hello: 'wörld', n: [1, 2, 3] }, deadline);
    const r = ok(t, out) as EchoResult;
    t.deepEqual(r.event, { hello: 'wörld', n: [1, 2, 3] });
    t.is(r.env, 'hej');
    t.deepEqual({ ...r.ctx, remaining: undefined }, { id: 'the-id', aws: 'the-id', name: 'fn-under-test', mem: 256, remaining: undefined });
    t.true(r.ctx.remaining > 0 && r.ctx.remaining <= 2500);
    t.is(r.pid, inst.child.pid ?? -1);
    t.true(typeof r.cwd === 'string' && r.cwd.includes('hearth-rt-'));
    const len = JSON.stringify({ hello: 'wörld', n: [1, 2, 3] }).length;
    t.is(out.logs, `log line ${len}\nerr line\nraw write\n`);
    t.true(out.durationMs >= 0);
  });

  test(`${runtime}: sequential invocations reuse the instance and its module state; logs are per invocation`, async (t) => {
    const c = echo[runtime];
    const inst = await specialized(t, runtime, c.files, c.handler);
    for (let i = 1; i <= 5; i++) {
      const out = await invoke(inst, { i });
      const r = ok(t, out) as EchoResult;
      t.is(r.calls, i);
      t.is(r.pid, inst.child.pid ?? -1);
      t.is(out.logs, `log line ${JSON.stringify({ i }).length}\nerr line\nraw write\n`);
    }
  });

  test(`${runtime}: multi-MiB events and results cross frame boundaries intact`, async (t) => {
    const c = echo[runtime];
    const inst = await specialized(t, runtime, c.files, c.handler);
    const big = { blob: 'x'.repeat(3 * 1024 * 1024), uni: 'ü€😀'.repeat(50_000), list: Array.from({ length: 20_000 }, (_, i) => i) };
    const r = ok(t, await invoke(inst, big)) as EchoResult;
    t.deepEqual(r.event, big);
    const again = ok(t, await invoke(inst, { small: true })) as EchoResult;
    t.deepEqual(again.event, { small: true });
  });
}

// ---------------------------------------------------------------------------------------------
// Node handler forms.

const nodeForms: Array<[string, Files, string, unknown]> = [
  ['CommonJS sync handler', { 'index.js': 'exports.handler = (e) => ({ sync: e.v });' }, 'index.handler', { sync: 1 }],
  [
    'CommonJS handler returning a promise',
    { 'index.js': 'exports.handler = (e) => new Promise((r) => setTimeout(() => r({ later: e.v }), 5));' },
    'index.handler',
    { later: 1 },
  ],
  ['callback-style handler', { 'index.js': 'exports.handler = (e, ctx, cb) => { setTimeout(() => cb(null, { cb: e.v }), 1); };' }, 'index.handler', { cb: 1 }],
  ['.cjs file', { 'h.cjs': 'module.exports.run = async (e) => ({ cjs: e.v });' }, 'h.run', { cjs: 1 }],
  ['ESM .mjs file', { 'h.mjs': 'export const handler = async (e) => ({ mjs: e.v });' }, 'h.handler', { mjs: 1 }],
  [
    'ESM .js in a "type": "module" package with top-level await',
    { 'package.json': '{"type":"module"}', 'index.js': 'const x = await Promise.resolve(41);\nexport async function handler(e) { return { esm: e.v + x }; }' },
    'index.handler',
    { esm: 42 },
  ],
  ['handler in a subdirectory', { 'lib/deep/app.js': 'exports.go = (e) => ({ deep: e.v });' }, 'lib/deep/app.go', { deep: 1 }],
  ['nested export path', { 'index.js': 'exports.api = { v1: { get: (e) => ({ nested: e.v }) } };' }, 'index.api.v1.get', { nested: 1 }],
  ['undefined result becomes null', { 'index.js': 'exports.handler = async () => undefined;' }, 'index.handler', null],
  [
    'handler requiring a bundled module',
    {
      'index.js': 'const dep = require("./node_modules/dep"); exports.handler = () => dep();',
      'node_modules/dep/index.js': 'module.exports = () => "dep ok";',
    },
    'index.handler',
    'dep ok',
  ],
];
for (const [name, files, handler, expected] of nodeForms) {
  test(`node: ${name}`, async (t) => {
    const inst = await specialized(t, 'node', files, handler);
    t.deepEqual(ok(t, await invoke(inst, { v: 1 })), expected);
  });
}

test('python: handler in a package path, dotted or slashed, and an async def handler', async (t) => {
  const files = {
    'pkg/__init__.py': '',
    'pkg/mod.py': 'def fn(event, context):\n    return {"pkg": event["v"]}\n',
    'asyncmod.py': 'import asyncio\nasync def handler(event, context):\n    await asyncio.sleep(0)\n    return {"async": event["v"]}\n',
  };
  for (const [handler, expected] of [
    ['pkg/mod.fn', { pkg: 1 }],
    ['pkg.mod.fn', { pkg: 1 }],
    ['asyncmod.handler', { async: 1 }],
  ] as const) {
    const inst = await specialized(t, 'python', files, handler);
    t.deepEqual(ok(t, await invoke(inst, { v: 1 })), expected, handler);
  }
});

// ---------------------------------------------------------------------------------------------
// Errors thrown by handlers.

test('node: a thrown Error reports its name, message and a stack naming the handler file, not the shim', async (t) => {
  const inst = await specialized(
    t,
    'node',
    {
      'index.js':
        'class QuotaError extends Error { constructor(m) { super(m); this.name = "QuotaError"; } }\nexports.handler = async (e) => { console.log("before"); throw new QuotaError("over quota: " + e.n); };',
    },
    'index.handler',
  );
  const out = await invoke(inst, { n: 7 });
  const err = failed(t, out);
  t.is(err.type, 'QuotaError');
  t.is(err.message, 'over quota: 7');
  t.regex(err.stack ?? '', /index\.js:2/);
  t.notRegex(err.stack ?? '', /shim\.js/);
  t.is(out.logs, 'before\n');
  // the instance keeps serving
  t.is(failed(t, await invoke(inst, { n: 8 })).message, 'over quota: 8');
});

const nodeThrows: Array<[string, string, { type: string; message: string }]> = [
  ['a thrown string', 'exports.handler = () => { throw "plain string"; };', { type: 'Error', message: 'plain string' }],
  ['a thrown object', 'exports.handler = () => { throw { code: 42 }; };', { type: 'Error', message: '{"code":42}' }],
  [
    'a rejected promise',
    'exports.handler = async () => { await null; throw new RangeError("out of range"); };',
    { type: 'RangeError', message: 'out of range' },
  ],
  ['a callback error', 'exports.handler = (e, c, cb) => cb(new TypeError("cb failed"));', { type: 'TypeError', message: 'cb failed' }],
  ['a circular result', 'exports.handler = () => { const o = {}; o.self = o; return o; };', { type: 'SerializationError', message: '' }],
  ['a BigInt result', 'exports.handler = () => ({ n: 10n });', { type: 'SerializationError', message: '' }],
  ['a result over 6 MiB', `exports.handler = () => "y".repeat(${MAX_RESULT_BYTES + 1024 * 1024});`, { type: 'ResultTooLarge', message: '' }],
];
for (const [name, code, expected] of nodeThrows) {
  test(`node: ${name} is an error outcome and the instance keeps serving`, async (t) => {
    const inst = await specialized(t, 'node', { 'index.js': code }, 'index.handler');
    const err = failed(t, await invoke(inst));
    t.is(err.type, expected.type);
    if (expected.message) t.is(err.message, expected.message);
    else t.true(err.message.length > 0);
    t.false(inst.conn.isClosed);
    t.true(inst.conn.usable);
    t.is(failed(t, await invoke(inst)).type, expected.type);
  });
}

test('python: an exception reports its class, message and a traceback of the handler, not the shim', async (t) => {
  const inst = await specialized(
    t,
    'python',
    {
      'app.py':
        'class QuotaError(Exception):\n    pass\n\ndef handler(event, context):\n    print("before")\n    raise QuotaError("over quota: %d" % event["n"])\n',
    },
    'app.handler',
  );
  const out = await invoke(inst, { n: 7 });
  const err = failed(t, out);
  t.is(err.type, 'QuotaError');
  t.is(err.message, 'over quota: 7');
  t.regex(err.stack ?? '', /app\.py", line 6, in handler/);
  t.regex(err.stack ?? '', /QuotaError: over quota: 7/);
  t.notRegex(err.stack ?? '', /shim\.py/);
  t.is(out.logs, 'before\n');
  t.is(failed(t, await invoke(inst, { n: 8 })).message, 'over quota: 8');
});

const pyThrows: Array<[string, string, string]> = [
  ['a KeyError', 'def handler(e, c):\n    return e["missing"]\n', 'KeyError'],
  ['a set result', 'def handler(e, c):\n    return {1, 2}\n', 'SerializationError'],
  ['a NaN result', 'def handler(e, c):\n    return float("nan")\n', 'SerializationError'],
  ['a result with tuple keys', 'def handler(e, c):\n    return {(1, 2): 3}\n', 'SerializationError'],
  ['a result over 6 MiB', `def handler(e, c):\n    return "y" * ${MAX_RESULT_BYTES + 1024 * 1024}\n`, 'ResultTooLarge'],
  ['infinite recursion', 'def handler(e, c):\n    return handler(e, c)\n', 'RecursionError'],
  ['a MemoryError', 'def handler(e, c):\n    return "x" * (1 << 62)\n', 'OutOfMemory'],
];
for (const [name, code, type] of pyThrows) {
  test(`python: ${name} is an error outcome and the instance keeps serving`, async (t) => {
    const inst = await specialized(t, 'python', { 'app.py': code }, 'app.handler');
    t.is(failed(t, await invoke(inst)).type, type);
    t.is(failed(t, await invoke(inst)).type, type);
    t.false(inst.conn.isClosed);
  });
}

// ---------------------------------------------------------------------------------------------
// Init errors: a coded INIT_ERROR with the shim's InitError; the instance stays connected.

const initErrors: Array<[Runtime, string, Files, string, RegExp]> = [
  ['node', 'a missing file', { 'other.js': '' }, 'index.handler', /handler file not found: index\.js, index\.cjs or index\.mjs/],
  ['node', 'a missing export', { 'index.js': 'exports.other = () => 1;' }, 'index.handler', /index\.js does not export 'handler'/],
  [
    'node',
    'an export that is not a function',
    { 'index.js': 'exports.handler = 42;' },
    'index.handler',
    /'handler' exported by index\.js is not a function \(it is number\)/,
  ],
  ['node', 'a syntax error', { 'index.js': 'exports.handler = () => {;\n' }, 'index.handler', /failed to load index\.js: SyntaxError/],
  ['node', 'an ESM syntax error', { 'index.mjs': 'export const handler = (;' }, 'index.handler', /failed to load index\.mjs: SyntaxError/],
  [
    'node',
    'a module that throws while loading',
    { 'index.js': 'throw new Error("config missing");' },
    'index.handler',
    /failed to load index\.js: Error: config missing/,
  ],
  ['node', 'a missing dependency', { 'index.js': 'require("left-pad");' }, 'index.handler', /failed to load index\.js: Error: Cannot find module 'left-pad'/],
  ['node', 'a malformed handler string', { 'index.js': '' }, 'index', /bad handler "index"/],
  ['node', 'a handler path escaping the code directory', { 'index.js': '' }, '../etc/passwd.handler', /bad handler/],
  ['python', 'a missing module', { 'other.py': '' }, 'app.handler', /handler module not found: app\.py/],
  ['python', 'a missing attribute', { 'app.py': 'x = 1\n' }, 'app.handler', /module app has no attribute 'handler'/],
  ['python', 'an attribute that is not callable', { 'app.py': 'handler = 42\n' }, 'app.handler', /'handler' in module app is not callable \(it is int\)/],
  ['python', 'a syntax error', { 'app.py': 'def handler(e, c)\n    return 1\n' }, 'app.handler', /failed to import app: SyntaxError/],
  [
    'python',
    'a module that raises while importing',
    { 'app.py': 'raise RuntimeError("config missing")\n' },
    'app.handler',
    /failed to import app: RuntimeError: config missing/,
  ],
  ['python', 'a missing dependency', { 'app.py': 'import requests\n' }, 'app.handler', /failed to import app: ModuleNotFoundError: No module named 'requests'/],
  ['python', 'a malformed handler string', { 'app.py': '' }, 'app', /bad handler "app"/],
];
for (const [runtime, name, files, handler, message] of initErrors) {
  test(`${runtime}: ${name} is an InitError`, async (t) => {
    const inst = start(t, runtime, files);
    const e = await t.throwsAsync(inst.conn.specialize(spec(handler)), { instanceOf: InstanceError });
    t.is(e?.code, 'INIT_ERROR');
    t.is(e?.shimError?.type, 'InitError');
    t.regex(e?.shimError?.message ?? '', message);
    t.false(inst.conn.isClosed);
    // invoking an instance that never loaded a handler is an error outcome, not a hang
    t.is(failed(t, await invoke(inst)).type, 'InitError');
  });
}

// ---------------------------------------------------------------------------------------------
// Handlers that end the process.

const exits: Array<[Runtime, string, Files, string]> = [
  ['node', 'process.exit()', { 'index.js': 'exports.handler = () => { console.log("bye"); process.exit(3); };' }, 'index.handler'],
  ['python', 'sys.exit()', { 'app.py': 'import sys\ndef handler(e, c):\n    print("bye")\n    sys.exit(3)\n' }, 'app.handler'],
];
for (const [runtime, name, files, handler] of exits) {
  test(`${runtime}: a handler calling ${name} yields RuntimeExit with its logs, then the instance is gone`, async (t) => {
    const inst = await specialized(t, runtime, files, handler);
    const out = await invoke(inst);
    const err = failed(t, out);
    t.is(err.type, 'RuntimeExit');
    t.regex(err.message, /exit code 3/);
    t.is(out.logs, 'bye\n');
    t.true(!out.ok && out.exiting === true);
    t.false(inst.conn.usable);
    t.is((await inst.conn.closed).reason, 'exited');
    t.is(await inst.exit, 3);
  });
}

const kills: Array<[Runtime, string, Files, string]> = [
  ['node', 'SIGKILL of itself', { 'index.js': 'exports.handler = () => { process.kill(process.pid, "SIGKILL"); };' }, 'index.handler'],
  ['python', 'os._exit()', { 'app.py': 'import os\ndef handler(e, c):\n    os._exit(9)\n' }, 'app.handler'],
];
for (const [runtime, name, files, handler] of kills) {
  test(`${runtime}: a handler ending the process by ${name} rejects the invocation with INSTANCE_EXITED`, async (t) => {
    const inst = await specialized(t, runtime, files, handler);
    const e = await t.throwsAsync(invoke(inst));
    t.true(isInstanceError(e, 'INSTANCE_EXITED'), String(e));
    t.is((await inst.conn.closed).reason, 'exited');
  });
}

test('node: an unhandled rejection during an invocation is reported for it, then the process exits', async (t) => {
  const inst = await specialized(
    t,
    'node',
    {
      'index.js': 'exports.handler = (e, ctx, cb) => { Promise.reject(new Error("floating")); };',
    },
    'index.handler',
  );
  const out = await invoke(inst);
  const err = failed(t, out);
  t.is(err.type, 'Error');
  t.is(err.message, 'floating');
  t.true(!out.ok && out.exiting === true);
  t.is((await inst.conn.closed).reason, 'exited');
  t.is(await inst.exit, 1);
});

test('node: an uncaught exception from a timer during an invocation is reported for it', async (t) => {
  const inst = await specialized(
    t,
    'node',
    {
      'index.js': 'exports.handler = () => new Promise(() => { setTimeout(() => { throw new TypeError("from timer"); }, 1); });',
    },
    'index.handler',
  );
  const out = await invoke(inst);
  const err = failed(t, out);
  t.is(err.type, 'TypeError');
  t.is(err.message, 'from timer');
  t.true(!out.ok && out.exiting === true);
  t.is((await inst.conn.closed).reason, 'exited');
});

test('node: process.exit() while the module loads is an InitError', async (t) => {
  const inst = start(t, 'node', { 'index.js': 'process.exit(4);' });
  const e = await t.throwsAsync(inst.conn.specialize(spec('index.handler')));
  t.true(isInstanceError(e, 'INIT_ERROR'));
  t.regex((e as InstanceError).shimError?.message ?? '', /exited the process while loading \(exit code 4\)/);
  t.is(await inst.exit, 4);
});

// ---------------------------------------------------------------------------------------------
// Logs.

for (const runtime of ['node', 'python'] as const) {
  test(`${runtime}: logs over 256 KiB are truncated with a marker`, async (t) => {
    const files: Files =
      runtime === 'node'
        ? { 'index.js': 'exports.handler = () => { for (let i = 0; i < 5000; i++) console.log("x".repeat(99)); return "done"; };' }
        : { 'app.py': 'def handler(e, c):\n    for _ in range(5000):\n        print("x" * 99)\n    return "done"\n' };
    const inst = await specialized(t, runtime, files, runtime === 'node' ? 'index.handler' : 'app.handler');
    const out = await invoke(inst);
    t.is(ok(t, out), 'done');
    t.true(out.logs.startsWith('x'.repeat(99) + '\n'));
    t.regex(out.logs, /\[hearth: log output truncated, \d+ (bytes|characters) dropped\]\n$/);
    t.true(out.logs.length <= MAX_LOG_BYTES + 100);
    t.true(out.logs.length >= MAX_LOG_BYTES);
  });

  test(`${runtime}: output written while loading the handler is reported with the first invocation`, async (t) => {
    const files: Files =
      runtime === 'node'
        ? { 'index.js': 'console.log("loading");\nexports.handler = () => { console.log("running"); return 1; };' }
        : { 'app.py': 'print("loading")\ndef handler(e, c):\n    print("running")\n    return 1\n' };
    const inst = await specialized(t, runtime, files, runtime === 'node' ? 'index.handler' : 'app.handler');
    t.is((await invoke(inst)).logs, 'loading\nrunning\n');
    t.is((await invoke(inst)).logs, 'running\n');
  });
}

test('python: the shim is importable without side effects, then serve(fd, code_dir) serves (zygote path)', async (t) => {
  const dir = writeFiles(t, { 'app.py': 'def handler(e, c):\n    return {"via": "serve"}\n' });
  const script = [
    'import sys',
    `sys.path.insert(0, ${JSON.stringify(PY_DIR)})`,
    'out = sys.stdout',
    'import shim',
    'assert sys.stdout is out, "import replaced sys.stdout"',
    `shim.serve(3, ${JSON.stringify(dir)})`,
    'import os',
    'os._exit(7)',
  ].join('\n');
  const inst = spawnShim(t, PYTHON, ['-I', '-S', '-B', '-c', script]);
  t.is((await inst.conn.ready()).runtime, 'python');
  await inst.conn.specialize(spec('app.handler'));
  t.deepEqual(ok(t, await invoke(inst)), { via: 'serve' });
  inst.conn.close();
  // serve() returned on EOF and the script carried on
  t.is(await inst.exit, 7);
});

test('python: under the zygote, a user module named like the shim ("shim") is the user\'s', async (t) => {
  const dir = writeFiles(t, { 'shim.py': 'def handler(e, c):\n    return "user shim"\n' });
  const script = `import sys\nsys.path.insert(0, ${JSON.stringify(PY_DIR)})\nimport shim\nshim.serve(3, ${JSON.stringify(dir)})\n`;
  const inst = spawnShim(t, PYTHON, ['-I', '-S', '-B', '-c', script]);
  await inst.conn.specialize(spec('shim.handler'));
  t.is(ok(t, await invoke(inst)), 'user shim');
});

for (const runtime of ['node', 'python'] as const) {
  test(`${runtime}: the shim exits when the daemon closes the socket, even with handler timers pending`, async (t) => {
    const files: Files =
      runtime === 'node'
        ? { 'index.js': 'exports.handler = () => { setInterval(() => {}, 1000); return 1; };' }
        : { 'app.py': 'def handler(e, c):\n    return 1\n' };
    const inst = await specialized(t, runtime, files, runtime === 'node' ? 'index.handler' : 'app.handler');
    t.is(ok(t, await invoke(inst)), 1);
    inst.conn.close();
    t.is(await inst.exit, 0);
  });
}

test('node: after the idle warm-up, CommonJS and ESM handlers load and nothing of the warm-up leaks into logs', async (t) => {
  for (const [files, handler] of [
    [{ 'index.js': 'exports.handler = (e) => { console.log("cjs", e.v); return "cjs"; };' }, 'index.handler'],
    [{ 'index.mjs': 'export const handler = (e) => { console.log("esm", e.v); return "esm"; };' }, 'index.handler'],
  ] as const) {
    const inst = start(t, 'node', files);
    await inst.conn.ready();
    await new Promise((r) => setTimeout(r, 300)); // the generic instance sits idle and warms up
    await inst.conn.specialize(spec(handler));
    const out = await invoke(inst, { v: 1 });
    const kind = ok(t, out) as string;
    t.is(out.logs, `${kind} 1\n`);
  }
});

for (const runtime of ['node', 'python'] as const) {
  test(`${runtime}: a specialize written before ready arrives is served in order`, async (t) => {
    const c = echo[runtime];
    const inst = start(t, runtime, c.files);
    const sp = inst.conn.specialize(spec(c.handler));
    const ready = await inst.conn.ready();
    t.is(ready.pid, inst.child.pid ?? -1);
    t.true((await sp).initMs >= 0);
    t.is((ok(t, await invoke(inst, { a: 1 })) as EchoResult).calls, 1);
  });

  test(`${runtime}: a second specialize is refused and the first handler stays`, async (t) => {
    const c = echo[runtime];
    const inst = await specialized(t, runtime, c.files, c.handler);
    const e = await t.throwsAsync(inst.conn.specialize(spec('other.handler')));
    t.true(isInstanceError(e, 'INIT_ERROR'));
    t.regex((e as InstanceError).shimError?.message ?? '', /already specialised/);
    t.is((ok(t, await invoke(inst)) as EchoResult).calls, 1);
  });
}

for (const runtime of ['node', 'python'] as const) {
  test(`${runtime}: specialize and the first invoke in one write: the invocation runs once loaded, its deadline counted from its start`, async (t) => {
    const c = echo[runtime];
    const inst = start(t, runtime, c.files);
    await inst.conn.ready();
    await new Promise((r) => setTimeout(r, 100)); // idle: the warm-up has run
    const { specialized, outcome } = inst.conn.specializeThenInvoke(spec(c.handler, { env: { GREETING: 'hi' } }), 'first', { a: 1 }, 60_000);
    t.true((await specialized).initMs >= 0);
    const r = ok(t, await outcome) as EchoResult;
    t.is(r.calls, 1);
    t.is(r.env, 'hi');
    t.deepEqual(r.event, { a: 1 });
    t.true(r.ctx.remaining > 50_000 && r.ctx.remaining <= 60_000, `remaining ${r.ctx.remaining}`);
    t.is(r.ctx.id, 'first');
    t.is((ok(t, await invoke(inst)) as EchoResult).calls, 2);
  });

  test(`${runtime}: specialize and the first invoke in one write, handler missing: InitError, then the invocation is refused`, async (t) => {
    const inst = start(t, runtime, echo[runtime].files);
    await inst.conn.ready();
    const { specialized, outcome } = inst.conn.specializeThenInvoke(spec('missing.handler'), 'first', {}, 1000);
    t.true(isInstanceError(await t.throwsAsync(specialized), 'INIT_ERROR'));
    const e = failed(t, await outcome);
    t.is(e.type, 'InitError');
    t.regex(e.message, /not specialised/);
  });
}

test('python: warm_up() leaves nothing a function could see (environment, path, streams, cwd; only stdlib modules loaded)', async (t) => {
  const probe = [
    'import sys, os, json',
    'sys.path.insert(0, sys.argv[1])',
    'import shim',
    'os.environ["K"] = "v"',
    'mods = set(sys.modules)',
    'before = (dict(os.environ), list(sys.path), sys.stdout, sys.stderr, os.getcwd())',
    'shim.warm_up()',
    'after = (dict(os.environ), list(sys.path), sys.stdout, sys.stderr, os.getcwd())',
    'new = sorted(set(sys.modules) - mods)',
    "print(json.dumps({'same': before == after, 'nonstd': [m for m in new if m.partition('.')[0] not in sys.stdlib_module_names]}))",
  ].join('\n');
  const out = await new Promise<string>((res, rej) => {
    const child = spawn(PYTHON, ['-I', '-S', '-c', probe, PY_DIR], { stdio: ['ignore', 'pipe', 'inherit'], env: {} });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', rej);
    child.once('close', (code) => (code === 0 ? res(text) : rej(new Error(`exit ${code}`))));
  });
  t.deepEqual(JSON.parse(out), { same: true, nonstd: [] });
});

test('python: a child forked by the handler that returns into the shim does not reply', async (t) => {
  const inst = await specialized(
    t,
    'python',
    {
      'app.py': 'import os\ndef handler(e, c):\n    pid = os.fork()\n    return {"child": pid == 0}\n',
    },
    'app.handler',
  );
  t.deepEqual(ok(t, await invoke(inst)), { child: false });
  t.deepEqual(ok(t, await invoke(inst)), { child: false });
  t.false(inst.conn.isClosed);
});

test('python: sys.stdout.fileno() names the real descriptor, and logging handlers made at import are captured', async (t) => {
  const inst = await specialized(
    t,
    'python',
    {
      'app.py':
        'import logging, sys\nlogging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")\nlog = logging.getLogger("app")\ndef handler(e, c):\n    log.info("from logging")\n    return [sys.stdout.fileno(), sys.stderr.fileno(), sys.stdout.isatty()]\n',
    },
    'app.handler',
  );
  const out = await invoke(inst);
  t.deepEqual(ok(t, out), [1, 2, false]);
  t.is(out.logs, 'INFO from logging\n');
});

const hostile: Array<[Runtime, Files, string]> = [
  [
    'node',
    { 'index.js': 'exports.handler = () => { require("fs").writeSync(3, Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b])); return new Promise(() => {}); };' },
    'index.handler',
  ],
  ['python', { 'app.py': 'import os\ndef handler(e, c):\n    os.write(3, b"\\xff\\xff\\xff\\xff")\n    return 1\n' }, 'app.handler'],
];
for (const [runtime, files, handler] of hostile) {
  test(`${runtime}: a handler writing garbage to the protocol socket gets its instance cut off with PROTOCOL_ERROR`, async (t) => {
    const inst = await specialized(t, runtime, files, handler);
    const e = await t.throwsAsync(invoke(inst));
    t.true(isInstanceError(e, 'PROTOCOL_ERROR'), String(e));
    t.is((await inst.conn.closed).reason, 'protocol');
  });
}
