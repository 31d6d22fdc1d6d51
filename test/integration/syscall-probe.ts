/**
 * The hostile system-call probe (fixtures/hostile-python/syscalls.py) and what every seccomp
 * profile must answer to it: EPERM for each denied family, ENOSYS for clone3 and unknown numbers,
 * a personality query and getpid still working.
 */
import type { ExecutionContext } from 'ava';
import fs from 'node:fs';
import { fixture } from './daemon-harness.js';

/** The probe's source, to exec in a sandbox that does not have the fixture directory. */
export const SYSCALL_PROBE = fs.readFileSync(`${fixture('hostile-python')}/syscalls.py`, 'utf8').replace(/\nif __name__ == "__main__":[\s\S]*$/, '\n');

const NOT_DENIED = new Set(['personality_query', 'clone3', 'unknown_500', 'getpid']);

export function checkDeniedSyscalls(t: ExecutionContext, r: Record<string, string>): void {
  const denied = Object.keys(r).filter((k) => !NOT_DENIED.has(k));
  t.true(denied.length >= 25, `the probe tried ${denied.length} calls`);
  for (const k of denied) t.is(r[k], 'EPERM', k);
  t.regex(r['personality_query'], /^ok:/, 'querying the personality is allowed');
  t.is(r['clone3'], 'ENOSYS', 'clone3: libc falls back to clone');
  t.is(r['unknown_500'], 'ENOSYS', 'a number the filter does not know');
  t.regex(r['getpid'], /^ok:\d+$/);
}
