/**
 * The engine end to end, as root: a real daemon, real sandboxes, the control socket. What a user
 * of the API would notice: starts, results, errors, limits, and what a handler can not do.
 */
import test from 'ava';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { fixture, isRoot, leftoverCgroups, startHarness, type Harness } from './daemon-harness.js';
import { ApiError } from '../../src/control/client.js';

const t0 = isRoot ? test.serial : test.skip;

/** One attempt of the probe fixtures (test/integration/fixtures/probe-*): whether it worked, else its errno. */
interface Attempt {
  ok: boolean;
  errno?: string;
}
/** What the probe fixtures report about the sandbox they run in. */
interface ProbeReport {
  pids: number[];
  uid: number;
  env: Record<string, string>;
  code: string[];
  status: Record<string, string>;
  root: Attempt;
  home: Attempt;
  stateDir: Attempt;
  writeUsr: Attempt;
  writeEtc: Attempt;
  writeTmp: Attempt;
  writeCode: Attempt;
  hostTcp: Attempt;
  controlSocket: Attempt;
  mount: Attempt;
  unshareUser: Attempt;
}
if (!isRoot) test('daemon integration tests need root (they build namespaces and cgroups)', (t) => t.pass());

let h: Harness;
let server: net.Server;
let port = 0;

test.before(async () => {
  if (!isRoot) return;
  h = await startHarness({ generic: { node: 1, python: 2 }, pidsMax: 32 });
  server = net.createServer((s) => s.end('host secret\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as net.AddressInfo).port;
  await h.deploy('py', fixture('probe-python'), 'python', 'probe.echo', { memoryMb: 64, timeoutMs: 2000, env: { GREETING: 'hi' } });
  await h.deploy('pyprobe', fixture('probe-python'), 'python', 'probe.probe', { memoryMb: 64, env: { ONLY: 'this' } });
  await h.deploy('js', fixture('probe-node'), 'node', 'probe.echo', { memoryMb: 128 });
  await h.deploy('jsprobe', fixture('probe-node'), 'node', 'probe.probe', { memoryMb: 128, env: { ONLY: 'this' } });
  await new Promise((r) => setTimeout(r, 500)); // let the generic pools fill
});

test.after.always(async () => {
  if (!isRoot) return;
  server?.close();
  const cg = h?.config.cgroupName;
  await h?.stop();
  if (cg) {
    const left = leftoverCgroups(cg);
    if (left.length) throw new Error(`cgroups left after stop: ${left.join(', ')}`);
  }
});

t0('python: the first invocation specialises a generic instance, the next is warm on the same one', async (t) => {
  const a = await h.invoke('py', { n: 1 });
  t.is(a.error, null);
  t.is(a.start, 'generic');
  t.deepEqual(a.result, { event: { n: 1 }, fn: 'py', mem: 64, left: true });
  t.regex(a.logs, /log line from python/);
  const b = await h.invoke<{ event: unknown }>('py', { n: 2 });
  t.is(b.start, 'warm');
  t.is(b.instance, a.instance);
  t.deepEqual(b.result.event, { n: 2 });
});

t0('node: generic then warm; CommonJS and ES module handlers', async (t) => {
  const a = await h.invoke('js', { n: 1 });
  t.is(a.error, null);
  t.true(a.start === 'generic' || a.start === 'cold');
  t.deepEqual(a.result, { event: { n: 1 }, fn: 'js', mem: 128 });
  t.regex(a.logs, /log line from node/);
  t.is((await h.invoke('js', {})).start, 'warm');
  await h.deploy('esm', fixture('probe-node'), 'node', 'esm.handler');
  const e = await h.invoke('esm', { x: 1 });
  t.deepEqual(e.result, { esm: true, event: { x: 1 } });
});

t0('python sandbox: own pid namespace, no host files, read-only code and root, no network to the host, no privileges', async (t) => {
  const r = await h.invoke<ProbeReport>('pyprobe', { stateDir: h.config.stateDir, port, socket: h.config.socket });
  t.is(r.error, null, JSON.stringify(r.error));
  const p = r.result;
  t.deepEqual(p.pids, [1, 2], 'only itself and its PID 1 (the reaper) in its pid namespace');
  t.false(p.root.ok, '/root is not there');
  t.false(p.stateDir.ok, 'the state dir is not there');
  t.false(p.home.ok);
  t.deepEqual(p.code, ['__pycache__', 'probe.py'], 'only its own code (and the bytecode compiled at deploy) at /code');
  t.is(p.writeCode.errno, 'EROFS');
  t.is(p.writeEtc.errno, 'EROFS');
  t.is(p.writeUsr.errno, 'EROFS');
  t.true(p.writeTmp.ok, '/tmp is writable');
  t.false(p.hostTcp.ok, 'cannot reach a listener on the host loopback');
  t.false(p.controlSocket.ok, 'cannot reach the control socket');
  t.is(p.status.CapEff, '0000000000000000');
  t.is(p.status.CapPrm, '0000000000000000');
  t.is(p.status.CapBnd, '0000000000000000');
  t.is(p.status.NoNewPrivs, '1');
  t.is(p.status.Seccomp, '2');
  t.is(p.mount.errno, 'EPERM');
  t.false(p.unshareUser.ok, 'no user namespaces either');
  t.is(p.uid, 0, 'root of its own user namespace, mapped to a host uid of this function (test/integration/userns.test.ts)');
  t.deepEqual(p.env, { ONLY: 'this' }, 'a clean environment: only the function env');
});

t0('node sandbox: same promises', async (t) => {
  const r = await h.invoke<ProbeReport>('jsprobe', {});
  t.is(r.error, null, JSON.stringify(r.error));
  const p = r.result;
  t.deepEqual(p.pids, [1, 2]);
  t.false(p.root.ok);
  t.is(p.writeCode.errno, 'EROFS');
  t.true(p.writeTmp.ok);
  // CAP_SETGID, CAP_SETUID, CAP_SETPCAP of its own user namespace only (Node cannot capset; one id mapped: they allow nothing; docs/sandbox.md, Identity)
  t.is(p.status.CapEff, '00000000000001c0');
  t.is(p.status.NoNewPrivs, '1');
  t.is(p.status.Seccomp, '2');
  t.deepEqual(p.env, { ONLY: 'this' });
});

t0('a function cannot see another function code', async (t) => {
  const r = await h.invoke<ProbeReport>('pyprobe', { stateDir: '/nonexistent', port, socket: '/nonexistent' });
  t.deepEqual(r.result.code, ['__pycache__', 'probe.py']);
  t.false(existsSync('/code/probe.py'), 'nothing mounted on the host');
});

t0('limits: memory -> OutOfMemory, timeout -> Timeout, fork bomb contained; the next call works', async (t) => {
  await h.deploy('hog', fixture('probe-python'), 'python', 'probe.hog', { memoryMb: 64, timeoutMs: 10_000 });
  const oom = await h.invoke('hog');
  t.is(oom.error?.type, 'OutOfMemory', JSON.stringify(oom.error));
  await h.deploy('jshog', fixture('probe-node'), 'node', 'probe.hog', { memoryMb: 96, timeoutMs: 10_000 });
  const joom = await h.invoke('jshog');
  t.true(joom.error?.type === 'OutOfMemory' || joom.error?.type === 'RuntimeExit', JSON.stringify(joom.error));
  await h.deploy('spin', fixture('probe-python'), 'python', 'probe.spin', { timeoutMs: 300 });
  const to = await h.invoke('spin');
  t.is(to.error?.type, 'Timeout');
  await h.deploy('bomb', fixture('probe-python'), 'python', 'probe.forkbomb', { timeoutMs: 10_000 });
  const fb = await h.invoke<{ forked: number; stoppedBy: string }>('bomb');
  t.is(fb.error, null, JSON.stringify(fb.error));
  t.true(fb.result.forked < 32, `forks stopped by the pids limit (got ${fb.result.forked})`);
  t.is(fb.result.stoppedBy, 'EAGAIN');
  const ok = await h.invoke('py', { after: true });
  t.is(ok.error, null);
});

t0('errors: thrown, exit, import failure', async (t) => {
  await h.deploy('boom', fixture('probe-python'), 'python', 'probe.boom');
  const b = await h.invoke('boom', { v: 7 });
  t.is(b.error?.type, 'ValueError');
  t.is(b.error?.message, 'bad value: 7');
  t.regex(b.error?.stack ?? '', /probe\.py/);
  await h.deploy('leave', fixture('probe-python'), 'python', 'probe.leave');
  t.is((await h.invoke('leave')).error?.type, 'RuntimeExit');
  await h.deploy('jsleave', fixture('probe-node'), 'node', 'probe.leave');
  t.is((await h.invoke('jsleave')).error?.type, 'RuntimeExit');
  // A handler function the module does not define is refused at deploy, like a missing module.
  for (const [runtime, dir, file] of [
    ['python', 'probe-python', 'probe.py'],
    ['node', 'probe-node', 'probe.js'],
  ] as const) {
    const e = await t.throwsAsync(h.deploy('noexport', fixture(dir), runtime, 'probe.missing'), { instanceOf: ApiError });
    t.is(e?.status, 400);
    t.is(e?.message, `handler: the module ${file} defines no function "missing" (handler "probe.missing")`);
  }
  t.is((await h.client.request('GET', '/v1/functions/noexport')).status, 404);
  t.is((await h.invoke('py', {})).error, null, 'the daemon keeps serving');
});

t0('hostile bundles are refused with 400 and nothing is deployed', async (t) => {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  pack.entry({ name: '../../escape.py' }, 'x = 1\n');
  pack.finalize();
  await new Promise<void>((r) => pack.on('end', () => r()));
  const code = gzipSync(Buffer.concat(chunks)).toString('base64');
  const r = await h.client.request('PUT', '/v1/functions/evil', { runtime: 'python', handler: 'escape.x', code });
  t.is(r.status, 400);
  t.is((await h.client.request('GET', '/v1/functions/evil')).status, 404);
  const notArchive = await h.client.request('PUT', '/v1/functions/evil', { runtime: 'python', handler: 'a.b', code: Buffer.from('hello').toString('base64') });
  t.is(notArchive.status, 400);
});

t0('deploy compiles Python bytecode into the stored bundle (in a sandbox); a module that does not compile still deploys and fails at import', async (t) => {
  const files: Record<string, string> = {
    'app.py': 'import helper\ndef handler(event, context):\n    return {"from": __file__, "v": helper.VALUE, "cached": __cached__}\n',
    'helper.py': 'VALUE = 42\n',
    'broken.py': 'def oops(:\n',
  };
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  for (const [name, text] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, text);
  pack.finalize();
  await new Promise<void>((r) => pack.on('end', () => r()));
  const code = gzipSync(Buffer.concat(chunks)).toString('base64');
  await h.client.call('PUT', '/v1/functions/pyc', { runtime: 'python', handler: 'app.handler', code });
  await h.client.call('PUT', '/v1/functions/pycbroken', { runtime: 'python', handler: 'broken.oops', code });
  const fn = await h.client.call<{ codeSha256: string }>('GET', '/v1/functions/pyc');
  const cache = join(h.config.stateDir, 'code', fn.codeSha256, '__pycache__');
  const pycs = readdirSync(cache).sort();
  t.deepEqual(pycs, ['app.cpython-311.pyc', 'helper.cpython-311.pyc'], 'broken.py has no bytecode');
  for (const f of pycs) t.is(statSync(join(cache, f)).mode & 0o777, 0o644);
  const r = await h.invoke('pyc', {});
  t.is(r.error, null);
  t.deepEqual(r.result, { from: '/code/app.py', v: 42, cached: '/code/__pycache__/app.cpython-311.pyc' });
  const bad = await h.invoke('pycbroken', {});
  t.is(bad.error?.type, 'InitError');
  t.regex(bad.error?.message ?? '', /SyntaxError/);
});

t0('bad requests: unknown function 404, bad name 400, unknown runtime 400', async (t) => {
  t.is((await h.client.request('POST', '/v1/functions/ghost/invoke', {})).status, 404);
  t.is((await h.client.request('POST', '/v1/functions/no..pe/invoke', {})).status, 400);
  const code = Buffer.from('x').toString('base64');
  t.is((await h.client.request('PUT', '/v1/functions/x', { runtime: 'ruby', handler: 'a.b', code })).status, 400);
});

t0('pool view and delete: a deleted function has no instances left', async (t) => {
  await h.invoke('py', {});
  const before = await h.client.call<{ instances: Array<{ function: string | null; state: string }> }>('GET', '/v1/pool');
  t.true(before.instances.some((i) => i.function === 'py' && i.state === 'idle'));
  t.true(before.instances.some((i) => i.state === 'generic'));
  t.is((await h.client.request('DELETE', '/v1/functions/py')).status, 204);
  await new Promise((r) => setTimeout(r, 200));
  const after = await h.client.call<{ instances: Array<{ function: string | null }> }>('GET', '/v1/pool');
  t.false(after.instances.some((i) => i.function === 'py'));
  t.is((await h.client.request('POST', '/v1/functions/py/invoke', {})).status, 404);
});
