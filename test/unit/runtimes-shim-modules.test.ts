/**
 * The shims' own modules (Node: frames.js, capture.js, handler.js beside shim.js; Python:
 * _hearth_frames.py, _hearth_capture.py beside shim.py): loaded before `ready`, from the shim's
 * directory, never replaced by a function's files of the same names. The shims run as plain child
 * processes from a temporary copy of their directory, with fd 3 a socketpair.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { InstanceConnection } from '../../src/runtimes/instance-connection.js';
import type { InvokeOutcome, ShimRuntime as Runtime } from '../../src/runtimes/types.js';

const repo = resolve(__dirname, '../../..');
const NODE = '/usr/bin/node';
const PYTHON = '/usr/bin/python3';

const SHIM_MODULES: Record<Runtime, string[]> = {
  node: ['frames.js', 'capture.js', 'handler.js'],
  python: ['_hearth_frames.py', '_hearth_capture.py'],
};

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of src/runtimes/<runtime> that the test may change while the shim runs. */
function shimCopy(t: ExecutionContext, runtime: Runtime): string {
  const dir = tempDir(t, 'hearth-shim-copy-');
  cpSync(join(repo, 'src/runtimes', runtime), dir, { recursive: true });
  return dir;
}

function writeCode(t: ExecutionContext, files: Record<string, string>): string {
  const dir = tempDir(t, 'hearth-shim-code-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function startShim(t: ExecutionContext, runtime: Runtime, shimDir: string, codeDir: string): { conn: InstanceConnection; child: ChildProcess } {
  const args = runtime === 'node' ? [join(shimDir, 'shim.js'), '--code', codeDir] : ['-I', '-S', join(shimDir, 'shim.py'), '--code', codeDir];
  const child = spawn(runtime === 'node' ? NODE : PYTHON, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], env: {} });
  const exit = new Promise<void>((res) => child.once('exit', () => res()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  const conn = new InstanceConnection(child.stdio[3] as Duplex);
  t.teardown(() => conn.close());
  return { conn, child };
}

function result(t: ExecutionContext, o: InvokeOutcome): unknown {
  if (!o.ok) t.fail(`expected a result, got ${o.error.type}: ${o.error.message}\n${o.error.stack}`);
  return o.ok ? o.result : undefined;
}

/** Function files named like the shim's modules, each of which breaks the shim if it is loaded as one. */
const DECOYS: Record<Runtime, Record<string, string>> = {
  node: {
    'frames.js': "throw new Error('the function\\'s frames.js was loaded');",
    'capture.js': "exports.drainLogs = () => 'decoy'; exports.mine = 'the function\\'s capture.js';",
    'handler.js': "throw new Error('the function\\'s handler.js was loaded');",
    'index.js': "const mine = require('./capture.js').mine;\nexports.handler = () => { console.log('logged'); return mine; };\n",
  },
  python: {
    '_hearth_frames.py': 'raise RuntimeError("the function\'s _hearth_frames was imported")\n',
    '_hearth_capture.py': 'raise RuntimeError("the function\'s _hearth_capture was imported")\n',
    'app.py': "def handler(event, context):\n    print('logged')\n    return context.function_name\n",
  },
};

for (const runtime of ['node', 'python'] as const) {
  test(`${runtime}: the shim's modules are loaded before ready, from the shim's directory, not the function's`, async (t) => {
    const shimDir = shimCopy(t, runtime);
    const codeDir = writeCode(t, DECOYS[runtime]);
    const { conn } = startShim(t, runtime, shimDir, codeDir);
    t.is((await conn.ready()).runtime, runtime);
    // Gone from the shim's directory after ready: a module loaded later would now be missing (or
    // found in the function's directory, where a decoy of the same name waits).
    for (const name of SHIM_MODULES[runtime]) rmSync(join(shimDir, name));
    await conn.specialize({ name: 'decoyed', handler: runtime === 'node' ? 'index.handler' : 'app.handler', memoryMb: 128, timeoutMs: 3000, env: {} });
    const out = await conn.invoke('inv-1', {}, Date.now() + 3000);
    t.is(result(t, out), runtime === 'node' ? "the function's capture.js" : 'decoyed');
    t.is(out.logs, 'logged\n');
  });
}

test("node: a thrown error's stack names none of the shim's files", async (t) => {
  const codeDir = writeCode(t, { 'index.js': "exports.handler = (event, context, callback) => { throw new TypeError('boom'); };\n" });
  const { conn } = startShim(t, 'node', join(repo, 'src/runtimes/node'), codeDir);
  await conn.ready();
  await conn.specialize({ name: 'thrower', handler: 'index.handler', memoryMb: 128, timeoutMs: 3000, env: {} });
  const out = await conn.invoke('inv-1', {}, Date.now() + 3000);
  if (out.ok) return t.fail('expected an error');
  t.is(out.error.type, 'TypeError');
  t.regex(out.error.stack ?? '', /index\.js:1/);
  t.notRegex(out.error.stack ?? '', /runtimes\/node\//);
});

test('python: importing the shim imports its modules from its own directory and leaves sys.path as it was', async (t) => {
  const pyDir = join(repo, 'src/runtimes/python');
  const probe = [
    'import sys, json',
    'sys.path.insert(0, sys.argv[1])',
    'before = list(sys.path)',
    'import shim',
    "print(json.dumps({'path': sys.path == before, 'files': [sys.modules[m].__file__ for m in ('_hearth_frames', '_hearth_capture')]}))",
  ].join('\n');
  const out = await new Promise<string>((res, rej) => {
    const child = spawn(PYTHON, ['-I', '-S', '-B', '-c', probe, pyDir], { stdio: ['ignore', 'pipe', 'inherit'], env: {} });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', rej);
    child.once('close', (code) => (code === 0 ? res(text) : rej(new Error(`exit ${code}`))));
  });
  t.deepEqual(JSON.parse(out), { path: true, files: [join(pyDir, '_hearth_frames.py'), join(pyDir, '_hearth_capture.py')] });
});
