/**
 * The `provided` runtime end to end, as root: a real daemon, real sandboxes, custom runtimes
 * written as plain scripts against the Lambda Runtime API (a Python `bootstrap` using urllib, a
 * POSIX shell one using curl). The same invoke cases as the Python and Node runtimes: result,
 * function error, timeout, exit of the runtime, environment, warm reuse, init errors, payload
 * limits, and the Runtime API's answers to bad requests.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../../src/control/client.js';
import { fixture, isRoot, leftoverCgroups, startHarness, type Harness } from './daemon-harness.js';

const t0 = isRoot ? test.serial : test.skip;

function hasCurl(): boolean {
  try {
    execFileSync('which', ['curl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const withCurl = isRoot && hasCurl() ? test.serial : test.skip;

if (!isRoot) test('provided runtime integration tests need root (they build namespaces and cgroups)', (t) => t.pass());
if (isRoot && !hasCurl()) test('the shell bootstrap test needs curl on the host (the sandbox shares /usr): skipped', (t) => t.pass());

interface Echo {
  event: Record<string, unknown>;
  count: number;
  pid: number;
  cwd: string;
  seen: Array<[number, unknown]>;
  headers: Record<string, string>;
  env: Record<string, string | null>;
}

let h: Harness;
let scratch: string;

test.before(async () => {
  if (!isRoot) return;
  scratch = mkdtempSync(join(tmpdir(), 'hearth-provided-'));
  h = await startHarness({ generic: { node: 0, python: 0, provided: 1 } });
  const py = fixture('provided-python');
  await h.deploy('custom', py, 'provided', 'my.handler', { memoryMb: 256, timeoutMs: 3000, env: { FOO: 'bar' } });
  await h.deploy('custom-timeout', py, 'provided', '', { timeoutMs: 3000 }); // 3 s: also the init's budget, on a busy host
  await h.deploy('custom-initerr', py, 'provided', '', { env: { INIT_MODE: 'init-error' } });
  await h.deploy('custom-initexit', py, 'provided', '', { env: { INIT_MODE: 'exit' } });
  await h.deploy('custom-pair', py, 'provided', '', { concurrency: 2, timeoutMs: 5000 });
});

test.after.always(async () => {
  if (!isRoot) return;
  const cg = h?.config.cgroupName;
  await h?.stop();
  rmSync(scratch, { recursive: true, force: true });
  if (cg) {
    const left = leftoverCgroups(cg);
    if (left.length) throw new Error(`cgroups left after stop: ${left.join(', ')}`);
  }
});

t0('a bootstrap gets the Lambda environment and headers; the next invocation is warm on the same process', async (t) => {
  const first = await h.invoke<Echo>('custom', { action: 'echo', n: 1 });
  t.is(first.error, null);
  t.not(first.start, 'warm');
  const r = first.result;
  t.deepEqual(r.event, { action: 'echo', n: 1 });
  t.deepEqual(r.env, {
    AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9001',
    _HANDLER: 'my.handler',
    LAMBDA_TASK_ROOT: '/code',
    AWS_LAMBDA_FUNCTION_NAME: 'custom',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_REGION: 'us-east-1',
    FOO: 'bar',
    PATH: '/usr/local/bin:/usr/bin:/bin',
  });
  t.is(r.cwd, '/code');
  t.is(r.headers['Lambda-Runtime-Aws-Request-Id'], first.result.headers['Lambda-Runtime-Aws-Request-Id']);
  t.regex(r.headers['Lambda-Runtime-Aws-Request-Id'] ?? '', /\S/);
  t.is(r.headers['Lambda-Runtime-Invoked-Function-Arn'], 'arn:aws:lambda:us-east-1:000000000000:function:custom');
  const deadline = Number(r.headers['Lambda-Runtime-Deadline-Ms']);
  t.true(deadline > Date.now() - 60_000 && deadline < Date.now() + 3000 + 60_000, `deadline ${deadline} is about now + the 3 s timeout`);
  t.regex(r.headers['Lambda-Runtime-Trace-Id'] ?? '', /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};/);
  t.regex(first.logs, /init ok/);
  t.regex(first.logs, /event echo 1/);

  const second = await h.invoke<Echo>('custom', { action: 'echo', n: 2 });
  t.is(second.start, 'warm');
  t.is(second.instance, first.instance);
  t.is(second.result.pid, r.pid);
  t.is(second.result.count, 2);
  t.notRegex(second.logs, /init ok/, 'the init output belongs to the first invocation only');
  t.regex(second.logs, /event echo 2/);
});

t0('a posted error is the invocation error (type, message, stack); the instance stays warm', async (t) => {
  const r = await h.invoke('custom', { action: 'error', why: 'nope' });
  t.deepEqual(r.error, { type: 'ValueError', message: 'bad input: nope', stack: 'at step one\nat step two' });
  t.is(r.result, null);
  const next = await h.invoke<Echo>('custom', { action: 'echo' });
  t.is(next.start, 'warm');
  t.deepEqual(next.result.seen, [[202, { status: 'OK' }]], 'the error post was answered 202 Accepted');
});

t0('a response that is not JSON comes back as a string; an empty one as null', async (t) => {
  t.is((await h.invoke('custom', { action: 'raw', text: 'plain text' })).result, 'plain text');
  t.is((await h.invoke('custom', { action: 'raw', text: '' })).result, null);
  t.deepEqual((await h.invoke('custom', { action: 'raw', text: '{"a": [1, 2]}' })).result, { a: [1, 2] });
});

t0('bad requests to the Runtime API get the documented status codes and error bodies', async (t) => {
  const r = await h.invoke('custom', { action: 'probe' });
  t.is(r.error, null);
  t.is(r.result, 'probed');
  const echo = await h.invoke<Echo>('custom', { action: 'echo' });
  const seen = echo.result.seen;
  const body = (i: number): Record<string, string> => seen[i][1] as Record<string, string>;
  t.is(seen[0][0], 400, 'a response for an unknown request id');
  t.is(body(0)['errorType'], 'InvalidRequestID');
  t.is(seen[1][0], 403, 'an init error after init');
  t.is(body(1)['errorType'], 'InvalidStateTransition');
  t.is(seen[2][0], 403, '/next while an invocation is in progress');
  t.is(body(2)['errorType'], 'InvalidStateTransition');
  t.is(seen[3][0], 404, 'an unknown path');
  t.is(seen[4][0], 405, 'GET on the response path');
  t.deepEqual(seen[5], [202, { status: 'OK' }], 'the real response');
  t.is(seen[6][0], 403, 'a second response for the same invocation');
  t.is(body(6)['errorType'], 'InvalidStateTransition');
  t.is(echo.start, 'warm');
});

t0('payload limit: a 5 MB response is returned; one over 6 MB is refused with 413 and the invocation fails', async (t) => {
  const five = await h.invoke<string>('custom', { action: 'big', n: 5 * 1024 * 1024 });
  t.is(five.error, null);
  t.is(five.result.length, 5 * 1024 * 1024);
  const over = await h.invoke('custom', { action: 'big', n: 6 * 1024 * 1024 + 1 });
  t.is(over.error?.type, 'Function.ResponseSizeTooLarge');
  t.regex(over.error?.message ?? '', /exceeded maximum allowed payload size \(6291456 bytes\)/);
  const echo = await h.invoke<Echo>('custom', { action: 'echo' });
  t.is(echo.start, 'warm', 'the runtime goes on after a refused response');
  t.is(echo.result.seen[0][0], 202);
  t.deepEqual(echo.result.seen[1], [413, { errorMessage: 'Exceeded maximum allowed payload size (6291456 bytes).', errorType: 'RequestEntityTooLarge' }]);
});

t0('a bootstrap that exits during an invocation fails it with RuntimeExit and its output; the next starts afresh', async (t) => {
  const before = await h.invoke<Echo>('custom', { action: 'echo' });
  const r = await h.invoke('custom', { action: 'exit' });
  t.is(r.error?.type, 'RuntimeExit');
  t.regex(r.error?.message ?? '', /exit status 7/);
  t.regex(r.logs, /exiting mid-invocation/);
  const after = await h.invoke<Echo>('custom', { action: 'echo' });
  t.not(after.start, 'warm');
  t.not(after.instance, before.instance);
  t.is(after.result.count, 1);
});

t0('a handler that runs past its timeout fails with Timeout; the instance is replaced', async (t) => {
  const r = await h.invoke('custom-timeout', { action: 'sleep', s: 30 });
  t.is(r.error?.type, 'Timeout');
  const next = await h.invoke<Echo>('custom-timeout', { action: 'echo' });
  t.is(next.error, null);
  t.not(next.instance, r.instance);
});

t0('POST /runtime/init/error fails the init with its message; an exit before /next is an init error too', async (t) => {
  const r = await h.invoke('custom-initerr', { action: 'echo' });
  t.is(r.error?.type, 'InitError');
  t.regex(r.error?.message ?? '', /Init\.ConfigError: config missing/);
  const exited = await h.invoke('custom-initexit', { action: 'echo' });
  t.is(exited.error?.type, 'InitError');
  t.regex(exited.error?.message ?? '', /Runtime\.ExitError.*exit status 3/);
  t.regex(exited.error?.stack ?? '', /giving up before the first event/, "the bootstrap's output is kept with the init error");
});

t0('each instance has its own endpoint: two concurrent invocations run in two instances, both on 127.0.0.1:9001', async (t) => {
  const [a, b] = await Promise.all([
    h.invoke<string>('custom-pair', { action: 'sleep', s: 1 }),
    (async () => {
      await new Promise((r) => setTimeout(r, 100));
      return h.invoke<string>('custom-pair', { action: 'sleep', s: 1 });
    })(),
  ]);
  t.is(a.result, 'slept');
  t.is(b.result, 'slept');
  t.not(a.instance, b.instance);
});

t0('deploy refuses a provided bundle without an executable bootstrap, and changes nothing', async (t) => {
  const noBoot = join(scratch, 'no-bootstrap');
  cpSync(fixture('provided-python'), noBoot, { recursive: true });
  rmSync(join(noBoot, 'bootstrap'));
  writeFileSync(join(noBoot, 'main.sh'), '#!/bin/sh\n');
  const e1 = await t.throwsAsync(h.deploy('nb', noBoot, 'provided', ''), { instanceOf: ApiError });
  t.is(e1.status, 400);
  t.regex(e1?.message ?? '', /executable file named "bootstrap"/);
  const notExec = join(scratch, 'not-executable');
  cpSync(fixture('provided-python'), notExec, { recursive: true });
  chmodSync(join(notExec, 'bootstrap'), 0o644);
  const e2 = await t.throwsAsync(h.deploy('nx', notExec, 'provided', ''), { instanceOf: ApiError });
  t.is(e2.status, 400);
  const names = (await h.client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions')).functions.map((f) => f.name);
  t.false(names.includes('nb') || names.includes('nx'));
});

withCurl('a POSIX shell bootstrap with curl: result, posted error, environment', async (t) => {
  await h.deploy('shell', fixture('provided-sh'), 'provided', 'function.handler', { memoryMb: 128 });
  const r = await h.invoke('shell', { hello: 'world' });
  t.is(r.error, null);
  t.deepEqual(r.result, { event: { hello: 'world' }, name: 'shell', memory: '128', handler: 'function.handler', root: '/code' });
  t.regex(r.logs, /shell runtime starting, handler function\.handler/);
  const e = await h.invoke('shell', { fail: true });
  t.deepEqual(e.error, { type: 'Shell.Failure', message: 'the shell says no', stack: '' });
  const again = await h.invoke('shell', { hello: 'again' });
  t.is(again.start, 'warm');
  t.deepEqual((again.result as { event: unknown }).event, { hello: 'again' });
});
