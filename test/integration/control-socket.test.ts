/**
 * The control socket against real peers (root): a temporary group made with groupadd (removed
 * after, also on failure), a daemon with `socketGroup` set to it, and requests from child
 * processes running under other uids (Node's spawn with uid/gid: setgroups(0) + setgid + setuid),
 * so the kernel's file permissions and SO_PEERCRED decide, not a fake.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { isRoot, startHarness, type Harness } from './daemon-harness.js';

const t0 = isRoot ? test.serial : test.skip;
if (!isRoot) test('control socket tests need root (groupadd, other uids)', (t) => t.pass());

const group = `hearth-t${randomBytes(3).toString('hex')}`;
let gid = -1;
let h: Harness | undefined;
/** uids with no passwd entry, far from any real account. */
const MEMBER_UID = 61000 + Math.floor(Math.random() * 1000);
const OTHER_UID = MEMBER_UID + 1;

interface Reply {
  status?: number;
  body?: { error?: { code: string; message: string } };
  error?: string;
}

/** One HTTP request over the socket from a child process running as uid/gid. */
function requestAs(uid: number, childGid: number, method: string, path: string, body?: unknown): Promise<Reply> {
  const script = `
const http = require('node:http');
const [socketPath, method, path, body] = process.argv.slice(1);
const req = http.request({ socketPath, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
  let data = '';
  res.on('data', (c) => (data += c));
  res.on('end', () => { console.log(JSON.stringify({ status: res.statusCode, body: data ? JSON.parse(data) : undefined })); });
});
req.on('error', (e) => console.log(JSON.stringify({ error: e.code })));
req.end(body || undefined);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, h!.config.socket, method, path, body === undefined ? '' : JSON.stringify(body)], {
      uid,
      gid: childGid,
      cwd: '/',
      env: {},
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as Reply);
      } catch {
        reject(new Error(`child exited ${code}: ${out} ${err}`));
      }
    });
  });
}

test.before(async () => {
  if (!isRoot) return;
  const add = spawnSync('groupadd', ['--system', group], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`groupadd: ${add.stderr}`);
  gid = Number(spawnSync('getent', ['group', group], { encoding: 'utf8' }).stdout.split(':')[2]);
  h = await startHarness({ socketGroup: group, generic: { node: 0, python: 0 } });
  chmodSync(h.dir, 0o755); // the harness's temp dir is 0700: let the other uids reach the socket file itself
});

test.after.always(async () => {
  if (!isRoot) return;
  await h?.stop();
  spawnSync('groupdel', [group]);
});

t0('the socket is 0660, owned by root and the socket group', async (t) => {
  const st = spawnSync('stat', ['-c', '%a %u %g', h!.config.socket], { encoding: 'utf8' }).stdout.trim();
  t.is(st, `660 0 ${gid}`);
});

t0('a uid outside the group cannot connect at all', async (t) => {
  const r = await requestAs(OTHER_UID, OTHER_UID, 'GET', '/v1/health');
  t.is(r.error, 'EACCES');
});

t0('a member of the group (not root) may use the API', async (t) => {
  const health = await requestAs(MEMBER_UID, gid, 'GET', '/v1/health');
  t.is(health.status, 200);
  const fns = await requestAs(MEMBER_UID, gid, 'GET', '/v1/functions');
  t.is(fns.status, 200);
  const nets = await requestAs(MEMBER_UID, gid, 'GET', '/v1/networks');
  t.is(nets.status, 200);
});

t0('a member gets 403 with a clear message for network changes and deploys with a network; root gets past the check', async (t) => {
  const put = await requestAs(MEMBER_UID, gid, 'PUT', '/v1/networks/n1', { subnet: '10.99.0.0/24' });
  t.is(put.status, 403);
  t.is(put.body?.error?.code, 'FORBIDDEN');
  t.regex(put.body?.error?.message ?? '', new RegExp(`creating or changing network 'n1' requires root; uid ${MEMBER_UID} may not`));
  const del = await requestAs(MEMBER_UID, gid, 'DELETE', '/v1/networks/n1');
  t.is(del.status, 403);
  const deploy = await requestAs(MEMBER_UID, gid, 'PUT', '/v1/functions/f1', { runtime: 'node', handler: 'index.handler', code: '', network: 'n1' });
  t.is(deploy.status, 403);
  t.regex(deploy.body?.error?.message ?? '', /deploying function 'f1' with a network requires root/);
  // the same deploy as root is checked further (no such network), so the 403 was the root rule
  const asRoot = await requestAs(0, 0, 'PUT', '/v1/functions/f1', { runtime: 'node', handler: 'index.handler', code: '', network: 'n1' });
  t.not(asRoot.status, 403);
  t.is(asRoot.status, 400, JSON.stringify(asRoot.body));
});
