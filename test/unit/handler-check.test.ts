/**
 * The deploy-time check of a handler's function: Python read from its syntax tree by
 * compile_bundle.py --check (through the compiler's frame protocol), Node by a conservative scan,
 * and deploy refusing a missing function with a 400 naming function and file.
 */
import test from 'ava';
import { bundleDir } from './bundle-dir.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { HearthError } from '../../src/errors.js';
import { PythonBytecodeCompiler, type CompileSandbox } from '../../src/registry/bytecode.js';
import { DirCodeStore as CodeStore } from '../../src/registry/dir-code-store.js';
import { deploy } from '../../src/registry/function-service.js';
import { missingHandlerFunction, nodeModuleLacks } from '../../src/registry/handler-check.js';
import { MemoryRegistry } from '../../src/registry/registry.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';

const bundle = (t: { teardown(f: () => void): void }, files: Record<string, string>): string => bundleDir(t, files, 'hearth-hcheck-');

const hasPython = spawnSync('/usr/bin/python3', ['-c', 'pass']).status === 0;
const PROG = path.join(__dirname, '..', '..', '..', 'src', 'runtimes', 'python', 'compile_bundle.py');

/** compile_bundle.py's check() run here, on a directory instead of /code (no sandbox). */
function pyCheck(dir: string, module: string, fn: string): { found: boolean | null; file: string | null } {
  const wrapper = `import json, runpy, sys
mod = runpy.run_path(${JSON.stringify(PROG)}, run_name="compile_bundle")
mod["check"].__globals__["CODE"] = sys.argv[1]
print(json.dumps(mod["check"](sys.argv[2], sys.argv[3])))`;
  const r = spawnSync('/usr/bin/python3', ['-I', '-S', '-c', wrapper, dir, module, fn], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { found: boolean | null; file: string | null };
}

(hasPython ? test : test.skip)('compile_bundle.py --check reads top-level definitions without running the module', (t) => {
  const dir = bundle(t, {
    'app.py': 'import os\nraise SystemExit("never run")\ndef handler(e, c):\n    return 1\n',
    'cond.py': 'import os\nif os.environ.get("X"):\n    def handler(e, c): return 1\nelse:\n    try:\n        other = 1\n    except Exception:\n        pass\n',
    'alias.py': 'from impl import run as handler\n',
    'assigned.py': 'handler = lambda e, c: 1\n',
    'star.py': 'from impl import *\n',
    'dyn.py': 'globals()["handler"] = print\n',
    'broken.py': 'def (\n',
    'forms.py':
      'try:\n    import x\nexcept ImportError as h1:\n    pass\nwith open(__file__) as h2:\n    pass\nif (h3 := 1):\n    pass\nfor h4 in []:\n    pass\nmatch 1:\n    case h5:\n        pass\n',
    'pkg/__init__.py': 'def main(e, c): return 1\n',
  });
  t.deepEqual(pyCheck(dir, 'app', 'handler'), { t: 'handler', found: true, file: 'app.py' } as never);
  t.is(pyCheck(dir, 'app', 'handlr').found, false);
  t.is(pyCheck(dir, 'cond', 'handler').found, true);
  t.is(pyCheck(dir, 'cond', 'other').found, true);
  t.is(pyCheck(dir, 'cond', 'missing').found, false);
  t.is(pyCheck(dir, 'alias', 'handler').found, true);
  t.is(pyCheck(dir, 'assigned', 'handler').found, true);
  for (const fn of ['h1', 'h2', 'h3', 'h4', 'h5']) t.is(pyCheck(dir, 'forms', fn).found, true, fn);
  t.is(pyCheck(dir, 'star', 'handler').found, null, 'a star import may bring it');
  t.is(pyCheck(dir, 'dyn', 'handler').found, null);
  t.is(pyCheck(dir, 'broken', 'handler').found, null, 'the import reports a syntax error');
  t.deepEqual(pyCheck(dir, 'pkg', 'nope'), { t: 'handler', found: false, file: 'pkg/__init__.py' } as never);
  t.is(pyCheck(dir, 'none', 'handler').found, null);
});

/** A sandbox whose program is this test's script on the other end of a socket. */
function scripted(answer: Record<string, unknown>): CompileSandbox & { argv: string[][]; mounted: string[] } {
  const sb = {
    argv: [] as string[][],
    mounted: [] as string[],
    async spawnProgram(_id: string, _l: unknown, argv: string[]) {
      sb.argv.push(argv);
      const sockPath = path.join(os.tmpdir(), `hearth-hcheck-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(sockPath, () => r()));
      const peerP = new Promise<net.Socket>((r) => server.once('connection', r));
      const socket = net.connect(sockPath);
      const peer = await peerP;
      server.close();
      fs.rmSync(sockPath, { force: true });
      const dec = new FrameDecoder((m) => {
        if (m.t === 'go') peer.write(encodeFrame(answer));
      });
      peer.on('data', (c: Buffer) => dec.push(c));
      peer.write(encodeFrame({ t: 'ready', tag: 'cpython-311' }));
      let exit!: () => void;
      const exited = new Promise<void>((r) => (exit = r));
      return { socket, mountCode: (d: string) => void sb.mounted.push(d), kill: () => (peer.destroy(), exit()), exited };
    },
  };
  return sb;
}

test('findFunction runs the checker in a sandbox with the module and function, and reports its answer', async (t) => {
  const sb = scripted({ t: 'handler', found: false, file: 'app.py' });
  const r = await new PythonBytecodeCompiler(sb).findFunction('/bundle', 'app', 'handlr');
  t.deepEqual(r, { found: false, file: 'app.py' });
  t.deepEqual(sb.argv[0].slice(-3), ['--check', 'app', 'handlr']);
  t.deepEqual(sb.mounted, ['/bundle']);
  const unsure = await new PythonBytecodeCompiler(scripted({ t: 'handler', found: null, file: null })).findFunction('/b', 'm', 'f');
  t.is(unsure.found, undefined);
  const broken = await new PythonBytecodeCompiler({ spawnProgram: () => Promise.reject(new Error('no sandbox')) }).findFunction('/b', 'm', 'f');
  t.is(broken.found, undefined, 'a failed check never refuses a deploy');
});

test('findFunction asks the sandbox once per bundle, module and function; an unsure answer is asked again', async (t) => {
  const sb = scripted({ t: 'handler', found: true, file: 'app.py' });
  const c = new PythonBytecodeCompiler(sb);
  t.deepEqual(await c.findFunction('/bundle', 'app', 'handler'), { found: true, file: 'app.py' });
  t.deepEqual(await c.findFunction('/bundle', 'app', 'handler'), { found: true, file: 'app.py' });
  t.is(sb.argv.length, 1, 'the same bundle and handler start no second sandbox');
  await c.findFunction('/bundle', 'app', 'other');
  await c.findFunction('/bundle2', 'app', 'handler');
  t.is(sb.argv.length, 3);
  const unsure = scripted({ t: 'handler', found: null, file: null });
  const u = new PythonBytecodeCompiler(unsure);
  await u.findFunction('/b', 'm', 'f');
  await u.findFunction('/b', 'm', 'f');
  t.is(unsure.argv.length, 2, 'no answer is not kept');
});

test('Node: a function whose name appears nowhere in a module that re-exports nothing is missing', (t) => {
  t.true(nodeModuleLacks('exports.handler = async () => 1;\n', 'handlr'));
  t.false(nodeModuleLacks('exports.handler = async () => 1;\n', 'handler'));
  t.false(nodeModuleLacks('export async function handler() {}\n', 'handler'));
  t.true(nodeModuleLacks('exports.handlerX = 1;\n', 'handler'), 'a longer identifier is not the function');
  t.true(nodeModuleLacks("const fs = require('fs');\nexports.handler = () => fs;\n", 'handlr'), 'requiring a module exports nothing by itself');
  t.true(nodeModuleLacks('module.exports = { handler: () => 1 };\n', 'handlr'));
  t.false(nodeModuleLacks("module.exports = require('./impl');\n", 'handler'));
  t.false(nodeModuleLacks("module.exports = { ...require('./impl') };\n", 'handler'));
  t.false(nodeModuleLacks("Object.assign(exports, require('./impl'));\n", 'handler'));
  t.false(nodeModuleLacks("for (const k of ['a']) exports[k] = 1;\n", 'handler'));
  t.false(nodeModuleLacks("export * from './impl.mjs';\n", 'handler'));
  t.false(nodeModuleLacks("export { run as handler } from './impl.mjs';\n", 'handler'));
});

test('deploy refuses a handler function the module lacks with a 400 naming function and file, and stores nothing', async (t) => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-hcheck-store-'));
  t.teardown(() => fs.rmSync(state, { recursive: true, force: true }));
  const store = new CodeStore(path.join(state, 'code'), { fsync: false });
  await store.start();
  const registry = new MemoryRegistry();
  await registry.start();
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  pack.entry({ name: 'index.js', mode: 0o644 }, 'exports.handler = async (e) => e;\n');
  pack.finalize();
  await new Promise<void>((r) => pack.on('end', () => r()));
  const code = zlib.gzipSync(Buffer.concat(chunks)).toString('base64');
  const opts = { findHandlerFault: (dir: string, h: string, r: 'node' | 'python' | 'provided') => missingHandlerFunction(dir, h, r) };
  const e = await t.throwsAsync(deploy(store, registry, 'f', { runtime: 'node', handler: 'index.handlr', code }, opts), { instanceOf: HearthError });
  t.is(e?.code, 'BAD_REQUEST');
  t.is(e?.message, 'handler: the module index.js defines no function "handlr" (handler "index.handlr")');
  t.deepEqual(await registry.list(), []);
  t.deepEqual(await store.list(), []);
  const ok = await deploy(store, registry, 'f', { runtime: 'node', handler: 'index.handler', code }, opts);
  t.true(ok.created);
  await store.stop();
});
