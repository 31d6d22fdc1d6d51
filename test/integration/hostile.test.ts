/**
 * Hostile handlers against a real daemon (root): orphaned zombies by the thousand, a /tmp filled to
 * the brim, output far past the log limit. Each time the daemon stays healthy, the limits hold, and
 * the next invocation on the same function works. Fixtures: test/integration/fixtures/hostile-*.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, isRoot, leftoverCgroups, startHarness, type Harness } from './daemon-harness.js';
import { checkDeniedSyscalls } from './syscall-probe.js';

const t0 = isRoot ? test.serial : test.skip;
if (!isRoot) test('hostile-handler tests need root (they build namespaces and cgroups)', (t) => t.pass());

const PIDS_MAX = 32;
const TMP_MB = 8;
/** The shims' per-invocation log cap (src/runtimes/node/capture.js, python/_hearth_capture.py). */
const MAX_LOG_BYTES = 256 * 1024;

interface Runtime {
  runtime: 'node' | 'python';
  dir: string;
  handler: (name: string) => string;
}
const RUNTIMES: Runtime[] = [
  { runtime: 'node', dir: 'hostile-node', handler: (n) => `hostile.${n.replace(/_(\w)/g, (_m, c: string) => c.toUpperCase())}` },
  { runtime: 'python', dir: 'hostile-python', handler: (n) => `hostile.${n}` },
];

let h: Harness;

/** The Node fixture runs the Python fixture's scripts (orphans.py, syscalls.py) with python3: one copy of each, bundled with it here. */
function bundleDir(r: Runtime): string {
  if (r.runtime === 'python') return fixture(r.dir);
  const dir = join(h.dir, 'hostile-node');
  mkdirSync(dir, { recursive: true });
  cpSync(fixture(r.dir), dir, { recursive: true });
  for (const f of ['orphans.py', 'syscalls.py']) cpSync(join(fixture('hostile-python'), f), join(dir, f));
  return dir;
}

test.before(async () => {
  if (!isRoot) return;
  h = await startHarness({ generic: { node: 1, python: 1 }, pidsMax: PIDS_MAX, tmpMb: TMP_MB });
  for (const r of RUNTIMES) {
    const dir = bundleDir(r);
    for (const fn of ['echo', 'leave_orphans', 'fill_tmp', 'remove_tmp', 'flood', 'syscalls']) {
      await h.deploy(`${r.runtime}-${fn.replace(/_/g, '-')}`, dir, r.runtime, r.handler(fn), { timeoutMs: 120_000, concurrency: 1 });
    }
  }
});

test.after.always(async () => {
  if (!isRoot) return;
  const cg = h?.config.cgroupName;
  await h?.stop();
  if (cg) {
    const left = leftoverCgroups(cg);
    if (left.length) throw new Error(`cgroups left after stop: ${left.join(', ')}`);
  }
});

for (const { runtime } of RUNTIMES) {
  t0(`${runtime}: PID 1 reaps thousands of orphaned zombies; the pids limit (${PIDS_MAX}) is never exhausted; the next invocation works`, async (t) => {
    t.timeout(180_000);
    const rounds = 1000;
    const r = await h.invoke<{ made: number; error: string | null; zombiesLeft: number }>(`${runtime}-leave-orphans`, { rounds });
    t.is(r.error, null, JSON.stringify(r.error));
    t.is(r.result.error, null);
    t.is(r.result.made, rounds, 'every round could fork: the orphans did not pile up as zombies');
    t.true(r.result.zombiesLeft < PIDS_MAX);
    const again = await h.invoke<{ made: number; error: string | null }>(`${runtime}-leave-orphans`, { rounds: 50 });
    t.is(again.instance, r.instance, 'the same instance, still healthy');
    t.is(again.result.made, 50);
    const echo = await h.invoke(`${runtime}-echo`, { after: 'zombies' });
    t.deepEqual(echo.result, { ok: true, event: { after: 'zombies' } });
  });

  t0(
    `${runtime}: filling /tmp stops at the instance's tmpMb (${TMP_MB} MiB) with ENOSPC, the host's /tmp is untouched, the next invocation works`,
    async (t) => {
      t.timeout(60_000);
      const name = `hearth-fill-${randomBytes(4).toString('hex')}`;
      const r = await h.invoke<{ written: number; errno: string | null; tmpBytes: number }>(`${runtime}-fill-tmp`, { name });
      t.is(r.error, null, JSON.stringify(r.error));
      t.is(r.result.errno, 'ENOSPC');
      t.is(r.result.tmpBytes, TMP_MB * 1024 * 1024, 'a tmpfs of tmpMb');
      t.true(r.result.written <= TMP_MB * 1024 * 1024 && r.result.written > 0, `wrote ${r.result.written} bytes`);
      t.false(existsSync(join('/tmp', name)), 'not on the host');
      const again = await h.invoke<{ written: number; errno: string | null }>(`${runtime}-fill-tmp`, { name });
      t.is(again.error, null, 'a full /tmp does not break the instance');
      t.is(again.result.errno, 'ENOSPC');
      const echo = await h.invoke(`${runtime}-echo`, { after: 'tmp' });
      t.deepEqual(echo.result, { ok: true, event: { after: 'tmp' } });
    },
  );

  t0(`${runtime}: output past the log limit is cut at ${MAX_LOG_BYTES} bytes per invocation with a note; raw writes to fd 1/2 go nowhere`, async (t) => {
    t.timeout(60_000);
    const r = await h.invoke(`${runtime}-flood`, { lines: 200_000 });
    t.is(r.error, null, JSON.stringify(r.error));
    t.is(r.result, 'flooded');
    const bytes = Buffer.byteLength(r.logs);
    t.true(bytes <= MAX_LOG_BYTES + 200, `logs of ${bytes} bytes`);
    t.true(bytes >= MAX_LOG_BYTES - 200, `logs of ${bytes} bytes: filled up to the cap`);
    t.regex(r.logs, /\[hearth: log output truncated, \d+ (bytes|characters) dropped\]/);
    t.notRegex(r.logs, /z{1000}/, 'raw fd writes are not captured');
    const echo = await h.invoke(`${runtime}-echo`, { after: 'flood' });
    t.deepEqual(echo.result, { ok: true, event: { after: 'flood' } });
    t.false(/\[hearth: log output truncated/.test(echo.logs), 'the cap is per invocation');
  });
}

for (const { runtime } of RUNTIMES) {
  t0(
    `${runtime}: bpf, userfaultfd, perf_event_open, keyctl, io_uring, ptrace, mount, setns, unshare, kexec, modules, personality fail with EPERM (${runtime} seccomp profile)`,
    async (t) => {
      const r = await h.invoke<Record<string, string>>(`${runtime}-syscalls`, {});
      t.is(r.error, null, JSON.stringify(r.error));
      checkDeniedSyscalls(t, r.result);
      const echo = await h.invoke(`${runtime}-echo`, { after: 'syscalls' });
      t.deepEqual(echo.result, { ok: true, event: { after: 'syscalls' } });
    },
  );
}

t0('the daemon is healthy after all of it', async (t) => {
  const health = await h.client.call<{ status?: string }>('GET', '/v1/health');
  t.truthy(health);
});
