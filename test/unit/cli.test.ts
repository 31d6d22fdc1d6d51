/**
 * The `hearth` CLI as a user runs it (the built dist/src/cli/main.js in a child process): help and
 * version, local files that are missing, a closed stdout, and how answers are printed (against a
 * stand-in control API on a Unix socket).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS, packageVersion } from '../../src/cli/commands.js';
import { formatInvokeError } from '../../src/cli/actions.js';

const MAIN = join(__dirname, '../../src/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function hearth(args: string[], opts: { closeStdout?: boolean } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HEARTH_SOCKET: '/nonexistent/hearth.sock' },
    });
    let stdout = '';
    let stderr = '';
    if (opts.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const groups = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]))];

test('every command and command group answers --help with exit 0, listing each of its flags', async (t) => {
  for (const group of groups) {
    const r = await hearth([group, '--help']);
    t.is(r.code, 0, `hearth ${group} --help: ${r.stderr}`);
    for (const spec of COMMANDS.filter((c) => c.name === group || c.name.startsWith(group + ' '))) {
      t.true(r.stdout.includes(`hearth ${spec.name}`), `${group} --help shows ${spec.name}`);
      for (const flag of Object.keys(spec.flags)) t.true(r.stdout.includes(`--${flag}`), `hearth ${group} --help lists --${flag}`);
    }
  }
  const sub = await hearth(['network', 'create', '--help']);
  t.is(sub.code, 0);
  t.regex(sub.stdout, /--gateway IP/);
});

test('top-level help lists every command and every flag; --version and version print the package version', async (t) => {
  const r = await hearth(['--help']);
  t.is(r.code, 0);
  for (const spec of COMMANDS) {
    t.true(r.stdout.includes(`hearth ${spec.name}`), spec.name);
    for (const flag of Object.keys(spec.flags)) t.true(r.stdout.includes(`--${flag}`), `${spec.name} --${flag}`);
  }
  t.regex(r.stdout, /--socket-group/);
  const pkg = JSON.parse(readFileSync(join(__dirname, '../../../package.json'), 'utf8')) as { version: string };
  t.is(packageVersion(), pkg.version);
  for (const args of [['--version'], ['version']]) {
    const v = await hearth(args);
    t.is(v.code, 0);
    t.is(v.stdout.trim(), packageVersion());
  }
});

test('an unknown command or flag is a usage error (exit 2) pointing at --help, without a stack trace', async (t) => {
  for (const args of [['bogus'], ['deploy', '--bogus'], ['events'], ['network', 'frob']]) {
    const r = await hearth(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, /--help/);
    t.notRegex(r.stderr, /\n\s+at /);
  }
});

test('a missing local file is named as such, not reported as an unreachable daemon', async (t) => {
  const d = await hearth(['deploy', '/no/such/dir', '--name', 'x', '--runtime', 'node', '--handler', 'index.handler']);
  t.is(d.code, 1);
  t.regex(d.stderr, /\/no\/such\/dir: no such file or directory/);
  t.notRegex(d.stderr, /daemon/);
  const i = await hearth(['invoke', 'f', '--data', '@/no/such.json']);
  t.is(i.code, 1);
  t.regex(i.stderr, /\/no\/such\.json: no such file or directory/);
  t.notRegex(i.stderr, /daemon|\n\s+at /);
  // The daemon really being absent is still reported as that.
  const l = await hearth(['ls']);
  t.is(l.code, 1);
  t.regex(l.stderr, /cannot reach the daemon at \/nonexistent\/hearth\.sock/);
});

test('a closed stdout (a pipe into `head` that has gone) ends the CLI quietly with exit 0', async (t) => {
  const r = await hearth(['--help'], { closeStdout: true });
  t.is(r.code, 0);
  t.is(r.stderr, '');
});

test('a handler error whose stack already shows its message is printed once', (t) => {
  const node = formatInvokeError({ type: 'Error', message: 'boom', stack: 'Error: boom\n    at handler (/code/index.js:1:7)' });
  t.is(node.split('boom').length - 1, 1);
  const py = formatInvokeError({
    type: 'ValueError',
    message: 'bad',
    stack: 'Traceback (most recent call last):\n  File "/code/main.py", line 2\nValueError: bad\n',
  });
  t.is(py.split('bad').length - 1, 1);
  t.is(formatInvokeError({ type: 'Timeout', message: 'exceeded 3000 ms', stack: '' }), 'Timeout: exceeded 3000 ms\n');
});

/** A stand-in control API answering fixed bodies by path. */
async function withApi(bodies: Record<string, unknown>, fn: (socket: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-cli-'));
  const socket = join(dir, 'h.sock');
  const server = http.createServer((req, res) => {
    const body = bodies[`${req.method} ${req.url}`];
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { error: { code: 'NOT_FOUND', message: 'no route' } }));
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    await fn(socket);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

test('network ls shows the address, routes and allow of each network', async (t) => {
  const network = {
    name: 'vpc1',
    spec: { attach: { bridge: 'br0', netns: 'lab' }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'], allow: ['10.77.0.10/32:5432'] },
    innerSubnet: '100.96.0.0/22',
    state: 'ready',
    instances: 0,
    capacity: 1021,
    createdAt: '2026-12-01T00:00:00.000Z',
  };
  await withApi({ 'GET /v1/networks': { networks: [network] } }, async (socket) => {
    const r = await hearth(['network', 'ls', '--socket', socket]);
    t.is(r.code, 0, r.stderr);
    const row = r.stdout.split('\n')[1];
    t.regex(row, /^vpc1\s+lab\/br0\s+10\.77\.0\.2\/24\s+10\.77\.0\.0\/24\s+10\.77\.0\.10\/32:5432\s+0\s+ready$/);
  });
});

test('queue and model print rounded numbers and lists of numbers on one line', async (t) => {
  const buckets = Array.from({ length: 60 }, (_, i) => i % 3);
  await withApi(
    {
      'GET /v1/queue': { depth: 0, latencyMs: { count: 3, p50: 2.360232000000906, p99: 0.01234567 } },
      'GET /v1/functions/wc/model': { window: { buckets }, decisions: { keepAliveMs: 600000 } },
    },
    async (socket) => {
      const q = await hearth(['queue', '--socket', socket]);
      t.is(q.code, 0, q.stderr);
      t.regex(q.stdout, /"p50": 2\.36,/);
      t.regex(q.stdout, /"p99": 0\.0123\n/);
      const m = await hearth(['model', 'wc', '--socket', socket]);
      t.is(m.code, 0, m.stderr);
      t.true(m.stdout.includes(`"buckets": [${buckets.join(', ')}]`));
      t.true(m.stdout.split('\n').length < 15);
      // --json is the API's answer untouched.
      const raw = await hearth(['queue', '--json', '--socket', socket]);
      t.regex(raw.stdout, /"p50": 2\.360232000000906/);
    },
  );
});

test('keys create prints the id and secret (JSON with --json); keys ls never shows a secret', async (t) => {
  const key = { accessKeyId: 'HRTHABCDEFGHIJKLMNOP', secretAccessKey: 's3cr3t', name: 'ci', createdAt: '2026-12-01T00:00:00.000Z' };
  await withApi(
    { 'POST /v1/keys': key, 'GET /v1/keys': { keys: [{ accessKeyId: key.accessKeyId, name: 'ci', createdAt: key.createdAt }] } },
    async (socket) => {
      const json = await hearth(['keys', 'create', 'ci', '--json', '--socket', socket]);
      t.is(json.code, 0, json.stderr);
      t.deepEqual(JSON.parse(json.stdout), { accessKeyId: key.accessKeyId, secretAccessKey: 's3cr3t' });
      const text = await hearth(['keys', 'create', 'ci', '--socket', socket]);
      t.regex(text.stdout, /AWS_ACCESS_KEY_ID=HRTHABCDEFGHIJKLMNOP\n\s+AWS_SECRET_ACCESS_KEY=s3cr3t\n/);
      const ls = await hearth(['keys', 'ls', '--socket', socket]);
      t.is(ls.code, 0, ls.stderr);
      t.regex(ls.stdout, /HRTHABCDEFGHIJKLMNOP\s+ci/);
      t.false(ls.stdout.includes('s3cr3t'));
      const missing = await hearth(['keys', 'create', '--socket', socket]);
      t.is(missing.code, 2, 'NAME is required');
    },
  );
});

test('model prints the decision in words above the figures; --json keeps the summary in the JSON', async (t) => {
  const summary = ['Period found: the function is idle about 15 min between invocations (100 % of recent gaps).', 'Next pre-warm: in 14 min.'];
  await withApi({ 'GET /v1/functions/timer/model': { summary, decisions: { keepAliveMs: 0 } } }, async (socket) => {
    const m = await hearth(['model', 'timer', '--socket', socket]);
    t.is(m.code, 0, m.stderr);
    t.true(m.stdout.startsWith(summary.join('\n') + '\n\n{'), m.stdout);
    t.false(m.stdout.includes('"summary"'), 'the sentences are not repeated in the figures');
    const raw = await hearth(['model', 'timer', '--json', '--socket', socket]);
    t.deepEqual((JSON.parse(raw.stdout) as { summary: string[] }).summary, summary);
  });
});

test("hosts lists the cluster's hosts from /v1/health, this host marked; a daemon without --nats says so", async (t) => {
  const hosts = [
    { hostId: 'a', lastSeenMsAgo: 120, busy: 1, idleWarm: { echo: 2, gone: 0 }, freeGeneric: { node: 1, python: 0 }, memoryInUseMb: 256 },
    { hostId: 'b', lastSeenMsAgo: 900, busy: 0, idleWarm: {}, freeGeneric: { node: 2 }, memoryInUseMb: 64 },
  ];
  await withApi({ 'GET /v1/health': { status: 'ok', cluster: { ready: true, broker: { hostId: 'b' }, hosts } } }, async (socket) => {
    const r = await hearth(['hosts', '--socket', socket]);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    t.regex(lines[0], /^HOST\s+SEENMSAGO\s+BUSY\s+IDLEWARM\s+FREEGENERIC\s+MEMORYMB$/);
    t.regex(lines[1], /^a\s+120\s+1\s+echo:2\s+node:1\s+256$/);
    t.regex(lines[2], /^b \(this\)\s+900\s+0\s+-\s+node:2\s+64$/);
    const j = await hearth(['hosts', '--json', '--socket', socket]);
    t.deepEqual(JSON.parse(j.stdout), { hosts });
  });
  await withApi({ 'GET /v1/health': { status: 'ok' } }, async (socket) => {
    const r = await hearth(['hosts', '--socket', socket]);
    t.is(r.code, 1);
    t.regex(r.stderr, /without --nats/);
  });
});
