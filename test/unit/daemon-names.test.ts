/**
 * Several daemons on one host: each one's host resources are named after its state dir, one
 * daemon per state dir (the lock), one per control socket (a live socket is refused, never
 * removed; a stale one is replaced; stop removes only the socket it made).
 */
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { daemonName, loadConfig } from '../../src/config.js';
import { ControlServer, claimSocketPath } from '../../src/control/server.js';
import { StateLock, readHolderPid } from '../../src/daemon/state-lock.js';
import { HearthError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-names-'));
  dirs.push(d);
  return d;
}

test('each state dir gets its own name for the cgroup parent and the run dir, within kernel limits', (t) => {
  const a = loadConfig({ overrides: { stateDir: path.join(tmp(), 'a') } });
  const b = loadConfig({ overrides: { stateDir: path.join(tmp(), 'b') } });
  t.regex(a.name, /^hearth-[0-9a-f]{8}$/);
  t.not(a.name, b.name);
  t.is(a.cgroupName, a.name);
  t.is(a.runDir, `/run/${a.name}`);
  t.not(a.runDir, b.runDir);
  t.true(a.name.length <= 15, 'fits IFNAMSIZ and netns name limits too');
});

test('the name follows the real path: a symlink and a not-yet-created dir name the same daemon', (t) => {
  const dir = tmp();
  const state = path.join(dir, 'state');
  const before = daemonName(state);
  fs.mkdirSync(state);
  fs.symlinkSync(state, path.join(dir, 'link'));
  t.is(daemonName(state), before);
  t.is(daemonName(path.join(dir, 'link')), before);
  t.is(daemonName(path.join(dir, 'x', '..', 'state')), before);
});

test('explicit names win over the derived ones', (t) => {
  const c = loadConfig({ overrides: { stateDir: tmp(), cgroupName: 'hearth', runDir: '/run/hearth' } });
  t.is(c.cgroupName, 'hearth');
  t.is(c.runDir, '/run/hearth');
  t.throws(() => loadConfig({ overrides: { stateDir: tmp(), name: 'a/b' } }), { instanceOf: HearthError });
});

test('a second lock on the same state dir is refused naming the holder; free again after release', async (t) => {
  const dir = tmp();
  const first = await StateLock.acquire(dir);
  t.is(readHolderPid(dir), process.pid);
  const err = await t.throwsAsync(StateLock.acquire(path.join(dir, '.')), { instanceOf: HearthError });
  t.is(err?.code, 'CONFLICT');
  t.regex(err?.message ?? '', new RegExp(`in use by another hearth daemon \\(pid ${process.pid}\\)`));
  const other = await StateLock.acquire(tmp()); // another state dir is independent
  await other.release();
  await first.release();
  t.is(readHolderPid(dir), undefined);
  const again = await StateLock.acquire(dir);
  await again.release();
});

function listen(p: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => c.end());
    s.once('error', reject);
    s.listen(p, () => resolve(s));
  });
}

test('a live control socket is refused and kept; a stale one is replaced', async (t) => {
  const dir = tmp();
  const sock = path.join(dir, 'hearth.sock');
  const live = await listen(sock);
  const err = await t.throwsAsync(
    claimSocketPath(sock, () => ({ pid: 4242, uid: 0, gid: 0 })),
    { instanceOf: HearthError },
  );
  t.is(err?.code, 'CONFLICT');
  t.regex(err?.message ?? '', /served by another live daemon \(pid 4242\)/);
  t.true(fs.existsSync(sock));
  // The live server still answers.
  await new Promise<void>((resolve, reject) =>
    net
      .createConnection(sock)
      .once('connect', function (this: net.Socket) {
        this.destroy();
        resolve();
      })
      .once('error', reject),
  );
  await new Promise((r) => live.close(r));

  // A socket file nobody listens on (a crashed daemon's).
  const stale = net.createServer();
  await new Promise<void>((r) => stale.listen(sock, () => r()));
  const fd = (stale as unknown as { _handle: { fd: number } })._handle.fd;
  t.true(fd >= 0);
  fs.renameSync(sock, `${sock}.keep`); // close() would unlink it; keep the inode, then put it back closed
  await new Promise((r) => stale.close(r));
  fs.renameSync(`${sock}.keep`, sock);
  t.true(fs.statSync(sock).isSocket());
  await claimSocketPath(sock);
  t.false(fs.existsSync(sock));

  fs.writeFileSync(sock, 'not a socket');
  t.is((await t.throwsAsync(claimSocketPath(sock), { instanceOf: HearthError }))?.code, 'CONFIG');
});

test('stop removes the control socket only while it is still the one the server made', async (t) => {
  const dir = tmp();
  const sock = path.join(dir, 'hearth.sock');
  const server = new ControlServer({ socketPath: sock, routes: [], peerCredentials: () => ({ pid: 1, uid: 0, gid: 0 }), log: silentLogger() });
  await server.start();
  // Someone replaced the path meanwhile (e.g. after our socket was removed by hand).
  fs.rmSync(sock);
  const other = await listen(sock);
  await server.stop();
  t.true(fs.existsSync(sock), "the other server's socket stays");
  await new Promise((r) => other.close(r));

  const own = new ControlServer({ socketPath: sock, routes: [], peerCredentials: () => ({ pid: 1, uid: 0, gid: 0 }), log: silentLogger() });
  await own.start();
  await own.stop();
  t.false(fs.existsSync(sock));
});
