/**
 * Several daemons on one host (real daemons as child processes, as `hearth daemon` runs): each
 * keeps its warm instances while the other starts, stops and is killed with SIGKILL and restarted;
 * a second daemon on the same state dir or the same socket is refused and the first keeps serving;
 * nothing is left on the host once both stop.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { packDirectory } from '../../src/cli/pack.js';
import { daemonName } from '../../src/config.js';
import { fixture, isRoot, leftoverCgroups, waitFor, type InvokeReply } from './daemon-harness.js';

const it = isRoot ? test.serial : test.skip;
if (!isRoot) test('multi-daemon tests need root (real daemons)', (t) => t.pass());

const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

interface Run {
  proc: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Starts `hearth daemon` on dir's state dir (or the given socket/state dir). */
function spawnDaemon(dir: string, over: { socket?: string; stateDir?: string } = {}): Run {
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ generic: { node: 0, python: 1 } }));
  const proc = spawn(
    process.execPath,
    [
      MAIN,
      'daemon',
      '--socket',
      over.socket ?? join(dir, 'h.sock'),
      '--state-dir',
      over.stateDir ?? join(dir, 'state'),
      '--config',
      cfg,
      '--log-level',
      'error',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return { proc, exit, stderr: () => err };
}

class Host {
  run: Run | undefined;
  readonly client: ControlClient;
  constructor(readonly dir: string) {
    this.client = new ControlClient(join(dir, 'h.sock'));
  }
  get name(): string {
    return daemonName(join(this.dir, 'state'));
  }
  async start(): Promise<void> {
    const run = spawnDaemon(this.dir);
    this.run = run;
    await waitFor('daemon ready', async () => {
      if (run.proc.exitCode !== null) throw new Error(`daemon exited ${run.proc.exitCode}: ${run.stderr()}`);
      return (await this.client.request('GET', '/v1/health').catch(() => undefined))?.status === 200 ? true : undefined;
    });
  }
  async stop(): Promise<void> {
    const run = this.run;
    this.run = undefined;
    if (!run || run.proc.exitCode !== null || run.proc.signalCode !== null) return;
    run.proc.kill('SIGTERM');
    await run.exit;
  }
  async crash(): Promise<void> {
    const run = this.run!;
    this.run = undefined;
    run.proc.kill('SIGKILL');
    await run.exit;
  }
  async deploy(): Promise<void> {
    for (const [name, runtime, dir, handler] of [
      ['py', 'python', 'probe-python', 'probe.echo'],
      ['js', 'node', 'probe-node', 'probe.echo'],
    ] as const) {
      const code = (await packDirectory(fixture(dir))).toString('base64');
      await this.client.call('PUT', `/v1/functions/${name}`, { runtime, handler, code, memoryMb: 128 });
    }
  }
  invoke(name: string): Promise<InvokeReply> {
    return this.client.call<InvokeReply>('POST', `/v1/functions/${name}/invoke`, { from: this.dir });
  }
  /** Invokes each function until it is warm; returns the warm instance of each. */
  async warm(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const fn of ['py', 'js']) {
      await this.invoke(fn);
      const r = await this.invoke(fn);
      if (r.start !== 'warm' || r.error !== null) throw new Error(`${fn} not warm: ${JSON.stringify(r)}`);
      out[fn] = r.instance;
    }
    return out;
  }
}

/**
 * Invokes `stable`'s functions over and over while `during` runs; returns every answer's
 * (function, start kind, instance).
 */
async function invokeWhile(stable: Host, during: () => Promise<void>): Promise<Array<[string, string, string]>> {
  const seen: Array<[string, string, string]> = [];
  let done = false;
  const loop = (async () => {
    while (!done) {
      for (const fn of ['py', 'js']) {
        const r = await stable.invoke(fn);
        seen.push([fn, r.error === null ? r.start : `error: ${r.error.message}`, r.instance]);
      }
    }
  })();
  try {
    await during();
  } finally {
    done = true;
    await loop;
  }
  return seen;
}

let a: Host;
let b: Host;
test.before(() => {
  if (!isRoot) return;
  a = new Host(mkdtempSync(join(tmpdir(), 'hearth-multi-a-')));
  b = new Host(mkdtempSync(join(tmpdir(), 'hearth-multi-b-')));
});
test.after.always(async () => {
  if (!isRoot) return;
  for (const h of [a, b]) {
    h.client.close();
    await h.stop();
    rmSync(h.dir, { recursive: true, force: true });
  }
});

it('two daemons keep their own warm instances while the other starts, stops, crashes and restarts', async (t) => {
  t.not(a.name, b.name);
  await a.start();
  await a.deploy();
  const warmA = await a.warm();

  // B starts (its start-up cleans only what its own state left), deploys and warms up.
  let seen = await invokeWhile(a, async () => {
    await b.start();
    await b.deploy();
  });
  const warmB = await b.warm();
  // B stops, starts again, is killed with SIGKILL, and starts again (cleaning its own leftovers).
  seen = seen.concat(
    await invokeWhile(a, async () => {
      await b.stop();
      await b.start();
      await b.crash();
      await b.start();
    }),
  );
  t.true(seen.length > 0);
  for (const [fn, start, instance] of seen) t.deepEqual([start, instance], ['warm', warmA[fn]], `A's ${fn} stayed warm on its instance`);
  const againB = await b.warm(); // B's functions run again after its own crash
  t.truthy(againB['py']);

  // The same, the other way round: A churns while B is invoked.
  const warmB2 = await b.warm();
  const seenB = await invokeWhile(b, async () => {
    await a.crash();
    await a.start();
    await a.stop();
    await a.start();
  });
  t.true(seenB.length > 0);
  for (const [fn, start, instance] of seenB) t.deepEqual([start, instance], ['warm', warmB2[fn]], `B's ${fn} stayed warm on its instance`);
  t.not(warmB['py'], undefined);

  await a.stop();
  await b.stop();
  for (const h of [a, b]) {
    t.deepEqual(leftoverCgroups(h.name), [], `no cgroups of ${h.name} left`);
    t.false(existsSync(`/run/${h.name}`), 'its run dir is gone');
    t.false(existsSync(join(h.dir, 'h.sock')), 'its socket is gone');
    t.false(existsSync(join(h.dir, 'state', 'daemon.pid')), 'its pid file is gone');
  }
});

it('a second daemon on the same state dir, or on the same socket, is refused and the first keeps serving', async (t) => {
  await a.start();
  const warm = await a.warm();
  const pid = a.run!.proc.pid!;

  const other = mkdtempSync(join(tmpdir(), 'hearth-multi-c-'));
  try {
    const sameState = spawnDaemon(other, { stateDir: join(a.dir, 'state') });
    t.is((await sameState.exit).code, 1);
    t.regex(sameState.stderr(), new RegExp(`state directory .* is in use by another hearth daemon \\(pid ${pid}\\)`));

    const sameSocket = spawnDaemon(other, { socket: join(a.dir, 'h.sock') });
    t.is((await sameSocket.exit).code, 1);
    t.regex(sameSocket.stderr(), new RegExp(`control socket .* is served by another live daemon \\(pid ${pid}\\)`));
    t.deepEqual(leftoverCgroups(daemonName(join(other, 'state'))), [], 'the refused daemon made no cgroups');
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
  t.true(existsSync(join(a.dir, 'h.sock')), "the first daemon's socket stays");
  for (const fn of ['py', 'js']) {
    const r = await a.invoke(fn);
    t.deepEqual([r.start, r.instance], ['warm', warm[fn]]);
  }
  await a.stop();
  t.deepEqual(leftoverCgroups(a.name), []);
  t.false(existsSync(join(a.dir, 'h.sock')));
});

it('SIGTERM while the daemon is still starting: the start finishes, then it stops cleanly and leaves nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-multi-term-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const name = daemonName(join(dir, 'state'));
  const run = spawnDaemon(dir);
  // The daemon's cgroup appears early in its start, before the socket answers (the Python zygote
  // and its generic instance are still being made): that is the window.
  await waitFor('the start has made its cgroup', async () => (leftoverCgroups(name).length > 0 || run.proc.exitCode !== null ? true : undefined), 30_000);
  t.is(run.proc.exitCode, null, `the daemon is still running: ${run.stderr()}`);
  run.proc.kill('SIGTERM');
  const exit = await run.exit;
  t.deepEqual(exit, { code: 0, signal: null }, run.stderr());
  t.deepEqual(leftoverCgroups(name), [], 'no cgroup left');
  t.false(existsSync(join(dir, 'h.sock')), 'the socket is removed');
  t.false(existsSync(join(dir, 'state', 'daemon.pid')), 'the pid file is removed');
});
