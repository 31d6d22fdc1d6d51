import test from 'ava';
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
