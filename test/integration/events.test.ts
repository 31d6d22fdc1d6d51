/**
 * Async events through the API against a real daemon: accept, run, status, retries, dead letters,
 * redrive, idempotency, batch, limits. Then the crash test: SIGKILL the daemon mid-run with
 * thousands of accepted events, restart it, and prove every one ends `succeeded`.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { packDirectory } from '../../src/cli/pack.js';
import { fixture, isRoot, leftoverCgroups, waitFor, startHarness, type Harness } from './daemon-harness.js';

const it = isRoot ? test.serial : test.skip;
if (!isRoot) test('event integration tests need root', (t) => t.pass());

interface EventView {
  id: string;
  status: string;
  attempts: number;
  result: unknown;
  error: { type: string; message: string } | null;
}

let h: Harness;
test.before(async () => {
  if (!isRoot) return;
  h = await startHarness({ generic: { node: 0, python: 2 } });
  await h.deploy('work', fixture('queue-python'), 'python', 'work.slow', { concurrency: 4 });
  await h.deploy('flaky', fixture('queue-python'), 'python', 'work.flaky', { concurrency: 1, retries: 2 });
  await h.deploy('fails', fixture('queue-python'), 'python', 'work.always_fails', { retries: 1 });
});
test.after.always(async () => {
  await h?.stop();
});

const get = (id: string) => h.client.call<EventView>('GET', `/v1/events/${id}`);
const settled = (id: string) =>
  waitFor(`event ${id}`, async () => {
    const e = await get(id);
    return e.status === 'succeeded' || e.status === 'dead' ? e : undefined;
  });

it('an accepted event runs and its result is kept', async (t) => {
  const r = await h.client.request('POST', '/v1/functions/work/events', { i: 42 });
  t.is(r.status, 202);
  const id = (r.body as { id: string }).id;
  const e = await settled(id);
  t.is(e.status, 'succeeded');
  t.is(e.attempts, 1);
  t.deepEqual(e.result, { i: 42 });
});

it('a failing attempt is retried with backoff and then succeeds', async (t) => {
  const { id } = await h.client.call<{ id: string }>('POST', '/v1/functions/flaky/events', { i: 1 });
  const e = await settled(id);
  t.is(e.status, 'succeeded');
  t.is(e.attempts, 2);
});

it('retries run out -> dead with the error; redrive queues it again', async (t) => {
  const { id } = await h.client.call<{ id: string }>('POST', '/v1/functions/fails/events', {});
  const e = await settled(id);
  t.is(e.status, 'dead');
  t.is(e.attempts, 2);
  t.is(e.error?.type, 'RuntimeError');
  const dead = await h.client.call<{ events: EventView[] }>('GET', '/v1/events?function=fails&status=dead');
  t.true(dead.events.some((x) => x.id === id));
  t.is((await h.client.request('POST', `/v1/events/${id}/redrive`)).status, 202);
  const again = await settled(id);
  t.is(again.status, 'dead');
  t.is(again.attempts, 2, 'attempts start over after a redrive');
});

it('Idempotency-Key returns the same id and queues nothing new', async (t) => {
  const a = await h.client.call<{ id: string }>('POST', '/v1/functions/work/events', { i: 1 }, { 'Idempotency-Key': 'k-1' });
  const b = await h.client.call<{ id: string }>('POST', '/v1/functions/work/events', { i: 1 }, { 'Idempotency-Key': 'k-1' });
  t.is(a.id, b.id);
  const list = await h.client.call<{ events: EventView[] }>('GET', '/v1/events?function=work&limit=1000');
  t.is(list.events.filter((e) => e.id === a.id).length, 1);
});

it('batch: all accepted in order; bad input refused', async (t) => {
  const r = await h.client.call<{ ids: string[] }>(
    'POST',
    '/v1/functions/work/events/batch',
    Array.from({ length: 50 }, (_, i) => ({ i })),
  );
  t.is(r.ids.length, 50);
  const results = await Promise.all(r.ids.map((id) => settled(id)));
  t.deepEqual(
    results.map((e) => (e.result as { i: number }).i),
    Array.from({ length: 50 }, (_, i) => i),
  );
  t.is((await h.client.request('POST', '/v1/functions/ghost/events', {})).status, 404);
  t.is((await h.client.request('POST', '/v1/functions/work/events', '{bad')).status, 400);
  t.is((await h.client.request('POST', '/v1/functions/work/events/batch', '{"not":"array"}')).status, 400);
  t.is((await h.client.request('POST', '/v1/functions/work/events', { s: 'x'.repeat(300 * 1024) })).status, 413);
  const q = await h.client.call<{ total: { depth: number; running: number } }>('GET', '/v1/queue');
  t.is(typeof q.total.depth, 'number');
});

it('a bad schedule expression is refused with 400 naming the fault', async (t) => {
  const code = (await packDirectory(fixture('queue-python'))).toString('base64');
  const r = await h.client.request('PUT', '/v1/functions/sched', { runtime: 'python', handler: 'work.slow', code, schedules: ['rate(5 minute)'] });
  t.is(r.status, 400);
  t.regex(JSON.stringify(r.body), /rate/);
});

// ---- crash safety ----

function startDaemonProcess(dir: string, cgroupName: string): ChildProcess {
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ cgroupName, generic: { node: 0, python: 2 } }));
  return spawn(
    process.execPath,
    [
      join(__dirname, '..', '..', 'src', 'cli', 'main.js'),
      'daemon',
      '--socket',
      join(dir, 'h.sock'),
      '--state-dir',
      join(dir, 'state'),
      '--config',
      cfg,
      '--log-level',
      'error',
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}

it('SIGKILL mid-run: after a restart every accepted event ends succeeded, none left running or orphaned', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-crash-'));
  const cgroupName = `hearth-test-${randomBytes(3).toString('hex')}`;
  const client = new ControlClient(join(dir, 'h.sock'));
  let daemon = startDaemonProcess(dir, cgroupName);
  try {
    await waitFor('daemon', async () => ((await client.request('GET', '/v1/health').catch(() => undefined))?.status === 200 ? true : undefined));
    const code = (await packDirectory(fixture('queue-python'))).toString('base64');
    await client.call('PUT', '/v1/functions/work', { runtime: 'python', handler: 'work.slow', code, concurrency: 4, retries: 5 });
    const ids: string[] = [];
    for (let b = 0; b < 6; b++) {
      const r = await client.call<{ ids: string[] }>(
        'POST',
        '/v1/functions/work/events/batch',
        Array.from({ length: 500 }, (_, i) => ({ i: b * 500 + i, sleep: 0.001 })),
      );
      ids.push(...r.ids);
    }
    for (let i = 0; i < 100; i++) ids.push((await client.call<{ id: string }>('POST', '/v1/functions/work/events', { i: 3000 + i, sleep: 0.001 })).id);
    await waitFor('some progress', async () => {
      const q = await client.call<{ total: { succeeded: number } }>('GET', '/v1/queue');
      return q.total.succeeded >= 200 ? true : undefined;
    });
    const exited = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGKILL');
    await exited;
    daemon = startDaemonProcess(dir, cgroupName);
    await waitFor('daemon restart', async () => ((await client.request('GET', '/v1/health').catch(() => undefined))?.status === 200 ? true : undefined));
    const final = await waitFor(
      'all events settled',
      async () => {
        const q = await client.call<{ total: { succeeded: number; queued: number; running: number; failed: number; dead: number } }>('GET', '/v1/queue');
        return q.total.queued + q.total.running + q.total.failed === 0 ? q.total : undefined;
      },
      180_000,
    );
    t.is(final.dead, 0);
    t.is(final.running, 0);
    for (const id of ids.filter((_, i) => i % 97 === 0)) t.is((await client.call<EventView>('GET', `/v1/events/${id}`)).status, 'succeeded');
    t.true(final.succeeded >= ids.length, `${final.succeeded} succeeded of ${ids.length} accepted`);
  } finally {
    client.close();
    const exited = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
  t.deepEqual(leftoverCgroups(cgroupName), [], 'no cgroups left');
});

it('backpressure: past the bound on queued events submits get 429 with Retry-After and nothing is written', async (t) => {
  const small = await startHarness({ generic: { node: 0, python: 0 }, maxQueuedEvents: 5 });
  try {
    await small.deploy('slow', fixture('queue-python'), 'python', 'work.slow', { concurrency: 1 });
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 12; i++) {
      const r = await small.client.request('POST', '/v1/functions/slow/events', { i, sleep: 2 });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers['retry-after'];
    }
    t.true(statuses.includes(429), `statuses: ${statuses.join(',')}`);
    t.truthy(retryAfter);
    const batch = await small.client.request('POST', '/v1/functions/slow/events/batch', [{ sleep: 0 }, { sleep: 0 }]);
    t.is(batch.status, 429, 'a batch that does not fit is refused whole');
    const q = await small.client.call<{ total: { depth: number; running: number } }>('GET', '/v1/queue');
    t.true(q.total.depth <= 5, `depth ${q.total.depth} stays within the bound`);
    t.is(
      statuses.filter((s) => s === 202).length,
      q.total.depth + q.total.running + (await small.client.call<{ total: { succeeded: number } }>('GET', '/v1/queue')).total.succeeded,
    );
  } finally {
    await small.stop();
  }
});

it('a corrupt queue database: the daemon refuses to start and says why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-corrupt-'));
  try {
    mkdirSync(join(dir, 'state'), { recursive: true });
    writeFileSync(join(dir, 'state', 'queue.db'), Buffer.alloc(8192, 0x5a));
    const child = spawn(
      process.execPath,
      [join(__dirname, '..', '..', 'src', 'cli', 'main.js'), 'daemon', '--socket', join(dir, 'h.sock'), '--state-dir', join(dir, 'state')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    t.is(code, 1);
    t.regex(err, /queue\.db/);
    t.false(existsSync(join(dir, 'h.sock')), 'it never served');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
