/**
 * The built addon without root: it loads through the one loader, and its socket and process
 * functions behave (fd passing, peer credentials, non-blocking reaping, Node-style errors).
 */
import test from 'ava';
import { spawn as spawnChild } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { binding, nativeDir, nativeDirCandidates } from '../../src/sandbox/binding.js';

const built = nativeDirCandidates().some((d) => fs.existsSync(path.join(d, 'hearth.node')));
const it = built ? test.serial : test.skip;
if (!built) test('native tests skipped', (t) => t.log('skipped: addon not built (npm run build:native)') ?? t.pass());

it('loads and exports the whole binding', (t) => {
  const b = binding();
  for (const name of [
    'spawn',
    'spawnAsync',
    'mountCode',
    'socketpair',
    'sendFds',
    'closeFd',
    'peerCredentials',
    'waitPid',
    'kill',
    'pidfdOpen',
    'pidfdExited',
    'spinUntilLoopEvent',
  ]) {
    t.is(typeof (b as unknown as Record<string, unknown>)[name], 'function', name);
  }
  // the shared library the Python zygote loads with ctypes sits next to the addon
  t.true(fs.existsSync(path.join(nativeDir(), 'hearth_sandbox.so')));
});

it('socketpair carries bytes both ways and reports the peer credentials', async (t) => {
  const b = binding();
  const [x, y] = b.socketpair();
  const cred = b.peerCredentials(x);
  t.is(cred.pid, process.pid);
  t.is(cred.uid, process.getuid!());
  t.is(cred.gid, process.getgid!());
  const sx = new net.Socket({ fd: x, readable: true, writable: true });
  const sy = new net.Socket({ fd: y, readable: true, writable: true });
  const got = new Promise<string>((r) => sy.once('data', (d: Buffer) => r(d.toString())));
  sx.write('hello');
  t.is(await got, 'hello');
  sx.destroy();
  sy.destroy();
});

it('sendFds passes a descriptor that reads the same file', async (t) => {
  const b = binding();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-native-'));
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, 'passed through SCM_RIGHTS');
  const [x, y] = b.socketpair();
  const fd = fs.openSync(file, 'r');
  // a child python receives the fd (the daemon never receives fds, so the binding has no recvFds)
  const py = spawnChild(
    '/usr/bin/python3',
    ['-I', '-S', '-c', 'import socket,os\ns=socket.socket(fileno=3)\nd,fds,_,_=socket.recv_fds(s,100,4)\nos.write(1, d + b"|" + os.read(fds[0],100))'],
    { stdio: ['ignore', 'pipe', 'inherit', y] },
  );
  b.closeFd(y);
  const n = b.sendFds(x, Buffer.from('msg'), [fd]);
  t.is(n, 3);
  fs.closeSync(fd);
  let out = '';
  py.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => py.on('close', r));
  t.is(out, 'msg|passed through SCM_RIGHTS');
  b.closeFd(x);
  fs.rmSync(dir, { recursive: true, force: true });
});

it('waitPid reaps without blocking; kill and pidfds work on our children', async (t) => {
  const b = binding();
  const child = spawnChild('/bin/sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid!;
  const pidfd = b.pidfdOpen(pid);
  t.false(b.pidfdExited(pidfd));
  b.kill(pid, 9, pidfd);
  await new Promise((r) => child.on('exit', r)); // libuv reaps its own child
  t.true(b.pidfdExited(pidfd));
  b.closeFd(pidfd);
  const err = t.throws<NodeJS.ErrnoException>(() => b.waitPid(pid));
  t.is(err.code, 'ECHILD');
  t.is(err.syscall, 'waitpid');
  t.is(err.errno, -10);
});

it('throws Node-style system errors with code, errno and syscall', (t) => {
  const b = binding();
  const e1 = t.throws<NodeJS.ErrnoException>(() => b.peerCredentials(987654));
  t.is(e1.code, 'EBADF');
  t.is(e1.syscall, 'getsockopt');
  const e2 = t.throws<NodeJS.ErrnoException>(() => b.kill(2147483000, 0));
  t.is(e2.code, 'ESRCH');
  const e3 = t.throws<NodeJS.ErrnoException>(() => b.sendFds(987654, Buffer.from('x'), []));
  t.is(e3.code, 'EBADF');
  t.is(e3.syscall, 'sendmsg');
  t.throws(() => b.spawn({} as never), { instanceOf: TypeError });
});

it('spawn refuses to run as root without namespaces privileges, naming the step', (t) => {
  if (process.getuid?.() === 0) return t.pass('running as root: covered by the integration tests');
  const b = binding();
  const err = t.throws<NodeJS.ErrnoException>(() =>
    b.spawn({ argv: ['/usr/bin/true'], env: [], rootDir: os.tmpdir(), binds: [], cgroupProcs: [], socketFd: 0, newPid: true }),
  );
  t.is(err.code, 'EPERM');
  t.is(err.syscall, 'clone');
});

it('spawn refuses a negative or non-integer netnsFd before starting anything', (t) => {
  const b = binding();
  const base = { argv: ['/usr/bin/true'], env: [], rootDir: os.tmpdir(), binds: [], cgroupProcs: [], socketFd: 0, newPid: true };
  t.throws(() => b.spawn({ ...base, netnsFd: -1 }), { instanceOf: TypeError, message: /netnsFd/ });
  t.throws(() => b.spawn({ ...base, netnsFd: 1.5 }), { instanceOf: TypeError, message: /netnsFd/ });
  t.throws(() => b.spawn({ ...base, netnsFd: 'x' as never }), { instanceOf: TypeError, message: /netnsFd/ });
});

it('spawnAsync: bad options throw at once; a failed step rejects with the error spawn throws', async (t) => {
  const b = binding();
  t.throws(() => b.spawnAsync({} as never), { instanceOf: TypeError });
  const base = { argv: ['/usr/bin/true'], env: [], rootDir: os.tmpdir(), binds: [], cgroupProcs: [], socketFd: 0, newPid: true };
  t.throws(() => b.spawnAsync({ ...base, netnsFd: -1 }), { instanceOf: TypeError, message: /netnsFd/ });
  // A cgroup file that does not exist fails the child's step as root (and clone as a user): both
  // paths report the same error.
  const bad = { ...base, cgroupProcs: [path.join(os.tmpdir(), `hearth-no-such-cgroup-${process.pid}`, 'cgroup.procs')] };
  const sync = t.throws<NodeJS.ErrnoException>(() => b.spawn(bad));
  const async = await t.throwsAsync<NodeJS.ErrnoException>(b.spawnAsync(bad));
  t.deepEqual(
    [async.code, async.syscall, (async as { step?: string }).step, async.path, async.message],
    [sync.code, sync.syscall, (sync as { step?: string }).step, sync.path, sync.message],
  );
});

it('spawnAsync runs the child while the event loop keeps turning', async (t) => {
  if (process.getuid?.() !== 0) return t.pass('not root: the spawn itself is covered by the integration tests');
  const b = binding();
  const [mine, theirs] = b.socketpair();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-spawn-async-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const binds = ['/usr', '/lib', '/lib64', '/bin'].filter((d) => fs.existsSync(d)).map((d) => ({ src: d, dst: d }));
  // Counts loop iterations (setImmediate runs once per turn): a spawn made on the JS thread would
  // leave none between the call and the settled promise.
  let turns = 0;
  let turning = true;
  const turn = (): void => {
    turns++;
    if (turning) setImmediate(turn);
  };
  setImmediate(turn);
  const pending = b.spawnAsync({ argv: ['/bin/sh', '-c', 'echo ok >&3'], env: [], rootDir: root, binds, cgroupProcs: [], socketFd: theirs, newPid: true });
  const { pid, pidfd } = await pending;
  turning = false;
  t.true(turns > 0, 'the loop turned while the child was made');
  b.closeFd(theirs);
  t.true(pid > 0 && pidfd >= 0);
  const sock = new net.Socket({ fd: mine, readable: true, writable: false });
  const out = await new Promise<string>((resolve) => {
    let s = '';
    sock.on('data', (d: Buffer) => (s += d.toString()));
    sock.on('end', () => resolve(s));
  });
  t.is(out.trim(), 'ok');
  for (let i = 0; i < 200 && b.waitPid(pid) === null; i++) await new Promise((r) => setTimeout(r, 10));
  b.closeFd(pidfd);
});

it('spinUntilLoopEvent returns as soon as the loop has an event, and -1 when none comes in time', async (t) => {
  // In a fresh process: this one's loop has other watchers (ava's channel, earlier tests' handles).
  const script = `
    const b = require(${JSON.stringify(path.join(nativeDir(), 'hearth.node'))});
    const net = require('net');
    const out = {};
    let client;
    let reader;
    const go = () => {
      if (!reader || !client || client.connecting) return;
      reader.once('data', (d) => { out.data = d.toString(); client.destroy(); reader.destroy(); server.close(() => console.log(JSON.stringify(out))); });
      setTimeout(() => {
        out.empty = b.spinUntilLoopEvent(2000);
        client.write('ping');
        out.ready = b.spinUntilLoopEvent(1000000);
        try { b.spinUntilLoopEvent(-1); } catch (e) { out.badArg = e.message; }
      }, 20);
    };
    const server = net.createServer((r) => { reader = r; go(); });
    server.listen(process.argv[1], () => { client = net.connect(process.argv[1], go); });
  `;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-spin-'));
  try {
    const child = spawnChild(process.execPath, ['-e', script, path.join(dir, 's.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    t.is(code, 0);
    const out = JSON.parse(text) as { empty: number; ready: number; data: string; badArg: string };
    t.is(out.empty, -1, 'nothing ready: the whole budget is spun');
    t.true(out.ready >= 0 && out.ready < 1_000_000, `spun ${out.ready} µs once data was there`);
    t.is(out.data, 'ping', 'the event is still there for the loop');
    t.regex(out.badArg, /maxUs/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
