/**
 * Python bytecode at deploy (src/registry/bytecode.ts): the path checks of writePyc, and the
 * compiler's protocol against a scripted compiler on a socketpair (what a hostile or broken
 * compiler process could send). The real compiler in a sandbox is covered by the daemon
 * integration test.
 */
import test from 'ava';
import { bundleDir } from './bundle-dir.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PythonBytecodeCompiler, writePyc, type CompileSandbox } from '../../src/registry/bytecode.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';

const bundle = (t: { teardown(f: () => void): void }, files: Record<string, string>): string => bundleDir(t, files, 'hearth-pyc-');

const PYC = Buffer.from('not really bytecode');

test('writePyc writes <dir>/__pycache__/<stem>.<tag>.pyc next to the module, mode 0644', (t) => {
  const dir = bundle(t, { 'app.py': 'x = 1\n', 'pkg/mod.py': 'y = 2\n' });
  t.is(writePyc(dir, 'cpython-311', 'app.py', PYC), path.join(dir, '__pycache__', 'app.cpython-311.pyc'));
  t.is(writePyc(dir, 'cpython-311', 'pkg/mod.py', PYC), path.join(dir, 'pkg', '__pycache__', 'mod.cpython-311.pyc'));
  t.deepEqual(fs.readFileSync(path.join(dir, 'pkg', '__pycache__', 'mod.cpython-311.pyc')), PYC);
  t.is(fs.statSync(path.join(dir, '__pycache__', 'app.cpython-311.pyc')).mode & 0o777, 0o644);
});

test('writePyc refuses paths outside the bundle, non-modules, links and bad tags, and writes nothing', (t) => {
  const outside = bundle(t, { 'victim.py': 'v = 1\n' });
  const dir = bundle(t, { 'app.py': 'x = 1\n', 'sub/m.py': 'z = 1\n' });
  fs.symlinkSync(outside, path.join(dir, 'linkdir'));
  fs.symlinkSync(path.join(outside, 'victim.py'), path.join(dir, 'link.py'));
  fs.mkdirSync(path.join(dir, 'sub', '__pycache__'), { recursive: true });
  fs.rmdirSync(path.join(dir, 'sub', '__pycache__'));
  fs.symlinkSync(outside, path.join(dir, 'sub', '__pycache__'));
  const bad: unknown[] = [
    '../victim.py',
    '/etc/passwd.py',
    'a/../app.py',
    './app.py',
    'app.txt',
    '',
    'missing.py',
    'linkdir/victim.py',
    'link.py',
    'sub/m.py',
    '__pycache__/app.py',
    42,
    null,
  ];
  for (const rel of bad) t.throws(() => writePyc(dir, 'cpython-311', rel, PYC), undefined, JSON.stringify(rel));
  t.throws(() => writePyc(dir, '../x', 'app.py', PYC));
  t.throws(() => writePyc(dir, 'cpython-311/../../x', 'app.py', PYC));
  t.deepEqual(fs.readdirSync(outside), ['victim.py'], 'nothing written through a link');
  t.false(fs.existsSync(path.join(dir, '__pycache__')));
});

/** A sandbox whose "compiler" is this test: it gets the other end of a socketpair. */
function scriptedSandbox(script: (peer: net.Socket, received: Array<Record<string, unknown>>) => void): CompileSandbox & { mounted: string[]; killed: number } {
  const sb = {
    mounted: [] as string[],
    killed: 0,
    async spawnProgram() {
      const server = net.createServer();
      const sockPath = path.join(os.tmpdir(), `hearth-pyc-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
      await new Promise<void>((r) => server.listen(sockPath, () => r()));
      const peerP = new Promise<net.Socket>((r) => server.once('connection', r));
      const socket = net.connect(sockPath);
      const peer = await peerP;
      server.close();
      fs.rmSync(sockPath, { force: true });
      const received: Array<Record<string, unknown>> = [];
      const dec = new FrameDecoder((m) => received.push(m));
      peer.on('data', (c: Buffer) => dec.push(c));
      let exit!: () => void;
      const exited = new Promise<void>((r) => (exit = r));
      script(peer, received);
      return {
        socket,
        mountCode: (dir: string) => void sb.mounted.push(dir),
        kill: () => {
          sb.killed++;
          peer.destroy();
          exit();
        },
        exited,
      };
    },
  };
  return sb;
}

test('the compiler protocol: ready → mount + go → pyc frames written → done', async (t) => {
  const dir = bundle(t, { 'app.py': 'x = 1\n', 'bad.py': 'def (\n' });
  let sawGo = false;
  const sb = scriptedSandbox((peer, received) => {
    peer.write(encodeFrame({ t: 'ready', tag: 'cpython-311' }));
    const poll = setInterval(() => {
      if (!received.some((m) => m.t === 'go')) return;
      clearInterval(poll);
      sawGo = true;
      peer.write(encodeFrame({ t: 'pyc', path: 'app.py', data: PYC.toString('base64') }));
      peer.write(encodeFrame({ t: 'done', compiled: 1, failed: ['bad.py'] }));
    }, 1);
  });
  const r = await new PythonBytecodeCompiler(sb).compile(dir);
  t.true(sawGo);
  t.deepEqual(sb.mounted, [dir]);
  t.is(sb.killed, 1);
  t.is(r.compiled, 1);
  t.deepEqual(r.failed, ['bad.py']);
  t.is(r.skipped, undefined);
  t.deepEqual(fs.readFileSync(path.join(dir, '__pycache__', 'app.cpython-311.pyc')), PYC);
});

test('a compiler sending a path outside the bundle is cut off; nothing lands outside', async (t) => {
  const outside = bundle(t, { 'victim.py': 'v\n' });
  const dir = bundle(t, { 'app.py': 'x = 1\n' });
  const rel = path.relative(dir, path.join(outside, 'victim.py'));
  const sb = scriptedSandbox((peer) => {
    peer.write(encodeFrame({ t: 'ready', tag: 'cpython-311' }));
    setTimeout(() => peer.write(encodeFrame({ t: 'pyc', path: rel, data: PYC.toString('base64') })), 5);
  });
  const r = await new PythonBytecodeCompiler(sb).compile(dir);
  t.regex(r.skipped ?? '', /compiler failed: bad module path/);
  t.is(r.compiled, 0);
  t.false(fs.existsSync(path.join(outside, '__pycache__')));
  t.is(sb.killed, 1);
});

test('a compiler that hangs is killed after the timeout, one that sends too much is cut off, one that exits early is reported', async (t) => {
  const dir = bundle(t, { 'app.py': 'x = 1\n' });
  const hang = scriptedSandbox((peer) => peer.write(encodeFrame({ t: 'ready', tag: 'cpython-311' })));
  const r1 = await new PythonBytecodeCompiler(hang, { timeoutMs: 100 }).compile(dir);
  t.regex(r1.skipped ?? '', /did not finish within 100 ms/);
  t.is(hang.killed, 1);

  const flood = scriptedSandbox((peer) => {
    peer.write(encodeFrame({ t: 'ready', tag: 'cpython-311' }));
    setTimeout(() => {
      for (let i = 0; i < 3; i++) peer.write(encodeFrame({ t: 'pyc', path: 'app.py', data: PYC.toString('base64') }));
    }, 5);
  });
  const r2 = await new PythonBytecodeCompiler(flood).compile(dir);
  t.regex(r2.skipped ?? '', /more than the bundle can produce/);
  t.is(r2.compiled, 1);

  const quitter = scriptedSandbox((peer) => peer.end());
  const r3 = await new PythonBytecodeCompiler(quitter).compile(dir);
  t.regex(r3.skipped ?? '', /exited before it was done/);
});

test('a bundle without Python sources starts no compiler', async (t) => {
  const dir = bundle(t, { 'index.js': 'exports.handler = () => 1;\n' });
  let spawned = 0;
  const sb: CompileSandbox = {
    spawnProgram: () => {
      spawned++;
      return Promise.reject(new Error('unexpected'));
    },
  };
  const r = await new PythonBytecodeCompiler(sb).compile(dir);
  t.is(r.skipped, 'no Python sources');
  t.is(spawned, 0);
});

const hasPython = spawnSync('/usr/bin/python3', ['-c', 'pass']).status === 0;
(hasPython ? test : test.skip)('compile_bundle.py (run here without a sandbox) produces .pyc files that Python accepts', (t) => {
  // The program reads /code, so run it on a copy through a tiny wrapper that redirects CODE.
  const dir = bundle(t, { 'app.py': 'import helper\nV = helper.X + 1\n', 'helper.py': 'X = 41\n', 'bad.py': 'def (\n' });
  const prog = path.join(__dirname, '..', '..', '..', 'src', 'runtimes', 'python', 'compile_bundle.py');
  const wrapper = [
    'import os, runpy, socket, sys, json, struct, base64',
    'os.open(os.devnull, os.O_RDONLY)  # holds fd 3, so that the pair gets other numbers',
    'a, b = socket.socketpair()',
    'os.dup2(b.fileno(), 3)',
    `mod = runpy.run_path(${JSON.stringify(prog)}, run_name="compile_bundle")`,
    'mod["main"].__globals__["CODE"] = sys.argv[1]',
    'a.sendall(struct.pack(">I", 10) + b\'{"t":"go"}\')',
    'mod["main"]()',
    'os.close(3); b.close()',
    'data = b""',
    'a.settimeout(5)',
    'while True:',
    '    c = a.recv(65536)',
    '    if not c: break',
    '    data += c',
    'out = []',
    'while data:',
    '    (n,) = struct.unpack(">I", data[:4]); out.append(json.loads(data[4:4 + n])); data = data[4 + n:]',
    'for m in out:',
    '    if m["t"] == "pyc":',
    '        d = os.path.join(sys.argv[1], "__pycache__"); os.makedirs(d, exist_ok=True)',
    '        open(os.path.join(d, m["path"][:-3] + "." + sys.implementation.cache_tag + ".pyc"), "wb").write(base64.b64decode(m["data"]))',
    'print(json.dumps([m["t"] for m in out] + [out[-1].get("failed")]))',
  ].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-I', '-S', '-c', wrapper, dir], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), ['ready', 'pyc', 'pyc', 'done', ['bad.py']]);
  // Each .pyc is valid for its source as it is (timestamp and size in the header) and holds the
  // module's code.
  const verify = [
    'import importlib._bootstrap_external as be, marshal, os, sys',
    'd = sys.argv[1]',
    'for stem, want in (("helper", 41), ("app", None)):',
    '    data = open(os.path.join(d, "__pycache__", stem + "." + sys.implementation.cache_tag + ".pyc"), "rb").read()',
    '    st = os.stat(os.path.join(d, stem + ".py"))',
    '    be._classify_pyc(data, stem, {})',
    '    be._validate_timestamp_pyc(data, int(st.st_mtime), st.st_size, stem, {})',
    '    code = marshal.loads(data[16:])',
    '    assert code.co_filename == "/code/" + stem + ".py" or code.co_filename.endswith(stem + ".py"), code.co_filename',
    '    if want is not None:',
    '        ns = {}; exec(code, ns); assert ns["X"] == want',
    'print("ok")',
  ].join('\n');
  const check = spawnSync('/usr/bin/python3', ['-I', '-S', '-c', verify, dir], { encoding: 'utf8' });
  t.is(check.stdout.trim(), 'ok', check.stderr);
});
