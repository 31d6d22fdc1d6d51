import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHearthError } from '../../src/errors.js';
import { SandboxDriver } from '../../src/sandbox/sandbox-driver.js';
import { fromInitStatus } from '../../src/sandbox/sandbox-instance.js';

test("an instance's reaper reports the runtime's death by signal N as exit code 128 + N", (t) => {
  t.deepEqual(fromInitStatus({ code: 137, signal: null }), { code: null, signal: 9 });
  t.deepEqual(fromInitStatus({ code: 139, signal: null }), { code: null, signal: 11 });
  t.deepEqual(fromInitStatus({ code: 0, signal: null }), { code: 0, signal: null });
  t.deepEqual(fromInitStatus({ code: 1, signal: null }), { code: 1, signal: null });
  t.deepEqual(fromInitStatus({ code: 128, signal: null }), { code: 128, signal: null }, '128 is an exit code');
  t.deepEqual(fromInitStatus({ code: 200, signal: null }), { code: 200, signal: null }, 'past the signal numbers: an exit code');
  t.deepEqual(fromInitStatus({ code: null, signal: 9 }), { code: null, signal: 9 }, 'PID 1 itself killed (SIGKILL from the daemon)');
});

test('a native directory without hearth-init fails the driver start with MISSING_DEPENDENCY naming the fix, before anything is made', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-noinit-'));
  try {
    const driver = new SandboxDriver({ stateDir: join(dir, 'state'), nativeDir: join(dir, 'native'), cgroupName: 'hearth-test-never-made' });
    const err = await t.throwsAsync(driver.start());
    t.true(isHearthError(err) && err.code === 'MISSING_DEPENDENCY');
    t.regex(err?.message ?? '', /hearth-init is missing: run `npm run build:native`/);
    t.false(existsSync(join(dir, 'state')), 'no state dir made');
    await driver.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
