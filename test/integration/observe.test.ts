/**
 * Observability against a real daemon: metrics from real invocations (checked by the real
 * promtool), invocation records and logs through the API and the CLI, a deleted function's
 * series and records removed, and records that survive a daemon restart.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { ControlClient } from '../../src/control/client.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/log.js';
import { fixture, isRoot, startHarness, waitFor, type Harness } from './daemon-harness.js';
import { httpGet, sample } from './observe-http.js';

const it = isRoot ? test.serial : test.skip;
if (!isRoot) test('observability integration tests need root', (t) => t.pass());

const CLI = join(__dirname, '../../src/cli/main.js');

let h: Harness;
let port: number;
test.before(async () => {
  if (!isRoot) return;
  h = await startHarness({ generic: { node: 1, python: 0 }, metricsListen: '127.0.0.1:0' });
  port = h.daemon.metricsAddress!.port;
  await h.deploy('hello', fixture('observe-node'), 'node', 'app.hello');
  await h.deploy('boom', fixture('observe-node'), 'node', 'app.boom', { retries: 0 });
});
test.after.always(async () => {
  await h?.stop();
});

/** Runs the CLI as a child process; asynchronously, since the daemon answers from this process. */
const cli = (...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args, '--socket', h.config.socket]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });

it('the listener binds to loopback where told, and is read-only', async (t) => {
  t.is(h.daemon.metricsAddress?.host, '127.0.0.1');
  t.is((await httpGet(port, '/metrics', 'POST')).status, 405);
  t.is((await httpGet(port, '/metrics', 'DELETE')).status, 405);
});

it('real invocations show in /metrics with start kind, outcome and trigger; promtool accepts the text', async (t) => {
  for (let n = 0; n < 3; n++) await h.invoke('hello', { n });
  await h.invoke('boom');
  const { id } = await h.client.call<{ id: string }>('POST', '/v1/functions/hello/events', { n: 99 });
  const ev = await h.client.call<{ id: string }>('POST', '/v1/functions/boom/events', {});
  await waitFor('async events to settle', async () => {
    const a = await h.client.call<{ status: string }>('GET', `/v1/events/${id}`);
    const b = await h.client.call<{ status: string }>('GET', `/v1/events/${ev.id}`);
    return a.status === 'succeeded' && b.status === 'dead' ? true : undefined;
  });

  const m = await httpGet(port, '/metrics');
  t.is(m.status, 200);
  const text = m.body;
  const inv = (labels: string) => sample(text, `hearth_invocations_total{${labels}}`) ?? 0;
  t.is(inv('function="hello",start="generic",outcome="ok",trigger="sync"') + inv('function="hello",start="cold",outcome="ok",trigger="sync"'), 1);
  t.is(inv('function="hello",start="warm",outcome="ok",trigger="sync"'), 2);
  t.is(inv('function="hello",start="warm",outcome="ok",trigger="async"'), 1);
  const anyStart = (rest: string) => ['cold', 'generic', 'warm'].reduce((n, k) => n + inv(`function="boom",start="${k}",${rest}`), 0);
  t.is(anyStart('outcome="error",trigger="sync"'), 1);
  t.is(anyStart('outcome="error",trigger="async"'), 1, 'retries 0: one attempt, then dead');
  t.is(sample(text, 'hearth_dead_letters_total{function="boom"}'), 1);
  t.is(sample(text, 'hearth_invocation_duration_seconds_count{function="hello"}'), 4);
  t.is(sample(text, 'hearth_queue_events{function="boom",status="dead"}'), 1);
  t.is(sample(text, 'hearth_functions'), 2);
  t.true((sample(text, 'hearth_pool_instances{function="hello",runtime="node",state="idle"}') ?? 0) >= 1);
  t.true((sample(text, 'hearth_pool_memory_bytes') ?? 0) > 0);
  t.not(sample(text, 'hearth_model_keep_alive_seconds{function="hello"}'), undefined);

  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.is(check.status, 0, `${check.stdout}${check.stderr}`);
});

it('hearth invocations and hearth logs show the records and output, from the API and the CLI', async (t) => {
  const r = await h.invoke('hello', { n: 7 });
  const inv = await h.client.call<{ invocations: Array<Record<string, unknown>> }>('GET', '/v1/functions/hello/invocations?last=3');
  t.is(inv.invocations.length, 3);
  t.like(inv.invocations[0], { function: 'hello', trigger: 'sync', start: 'warm', outcome: 'ok' });
  t.true(inv.invocations.some((i) => i['trigger'] === 'async'));
  const id = inv.invocations[0]['id'] as string;
  t.true(r.logs.includes(id), 'the id is the one the handler saw');

  const logs = await h.client.call<{ lines: Array<{ invocationId: string; line: string }> }>('GET', '/v1/functions/hello/logs?since=10m');
  t.true(logs.lines.some((l) => l.invocationId === id && l.line === `hello 7 from ${id}`));
  t.true(logs.lines.some((l) => l.invocationId === id && l.line === 'to stderr'));

  const out = await cli('logs', 'hello', '--since', '10m');
  t.is(out.status, 0, out.stderr);
  t.regex(out.stdout, new RegExp(`^\\S+Z ${id} hello 7 from ${id}$`, 'm'));
  const table = await cli('invocations', 'hello', '--last', '2');
  t.is(table.status, 0, table.stderr);
  t.regex(table.stdout, /^ENDED\s+ID\s+TRIGGER\s+START\s+INITMS\s+DURATIONMS\s+OUTCOME\s+ERROR$/m);
  t.is(table.stdout.trim().split('\n').length, 3);
  const bad = await cli('logs', 'hello', '--since', 'yesterday');
  t.is(bad.status, 1);
  t.regex(bad.stderr, /since must be an age/);
  const missing = await cli('invocations', 'nope');
  t.is(missing.status, 1);
  t.regex(missing.stderr, /no function named "nope"/);
});

it('logs --follow prints output of invocations made after it started', async (t) => {
  const child = spawn(process.execPath, [CLI, 'logs', 'hello', '--follow', '--since', '1s', '--socket', h.config.socket]);
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((r) => setTimeout(r, 1500));
  await h.invoke('hello', { n: 4242 });
  await waitFor('the followed line', async () => (out.includes('hello 4242 from') ? true : undefined), 20_000);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  t.is(code, 0);
  t.is(out.split('\n').filter((l) => l.includes('hello 4242 from')).length, 1, 'printed once');
});

it('deleting a function removes its series and its records', async (t) => {
  t.true((await httpGet(port, '/metrics')).body.includes('function="boom"'));
  const dir = join(h.config.stateDir, 'invocations', 'boom');
  t.true(existsSync(dir));
  await h.client.call('DELETE', '/v1/functions/boom');
  await waitFor('records removed', async () => (existsSync(dir) ? undefined : true));
  t.false((await httpGet(port, '/metrics')).body.includes('function="boom"'));
});

it('records survive a daemon restart', async (t) => {
  const h2 = await startHarness({ generic: { node: 1, python: 0 } });
  // The daemon running now (the first, then the restarted one): stopped in teardown, also on failure.
  let running: Daemon = h2.daemon;
  t.teardown(async () => {
    h2.client.close();
    await running.stop();
    rmSync(h2.dir, { recursive: true, force: true });
  });
  await h2.deploy('hello', fixture('observe-node'), 'node', 'app.hello');
  await h2.invoke('hello', { n: 1 });
  await h2.invoke('hello', { n: 2 });
  await h2.daemon.stop();
  running = new Daemon(h2.config, createLogger('silent'), systemClock);
  await running.start();
  const client = new ControlClient(h2.config.socket);
  t.teardown(() => client.close());
  const inv = await client.call<{ invocations: Array<{ outcome: string }> }>('GET', '/v1/functions/hello/invocations');
  t.is(inv.invocations.length, 2);
  const logs = await client.call<{ lines: Array<{ line: string }> }>('GET', '/v1/functions/hello/logs?since=1h');
  t.deepEqual(
    logs.lines.filter((l) => l.line.startsWith('hello ')).map((l) => l.line.split(' from ')[0]),
    ['hello 1', 'hello 2'],
  );
});
