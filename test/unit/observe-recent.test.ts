/**
 * The dashboard's recent window: per function it counts only the last `perFunction` invocations
 * and holds no more; the per-second series forgets seconds older than `seconds`.
 */
import test from 'ava';
import { RecentInvocations } from '../../src/observe/recent.js';
import type { SampleRing } from '../../src/observe/sample-ring.js';
import { rec } from './observe-fixture.js';

test('a function counts its last perFunction invocations and holds no more', (t) => {
  const r = new RecentInvocations({ perFunction: 8 });
  const now = Date.UTC(2026, 11, 2, 3, 0, 0);
  for (let i = 0; i < 100; i++) {
    r.add(rec({ function: 'f', endedAt: now, durationMs: i, outcome: i < 95 ? 'ok' : 'error' }));
    const ring = (r as unknown as { fns: Map<string, { ring: SampleRing }> }).fns.get('f')!.ring;
    t.true(ring.allocated <= 8 && ring.size === Math.min(8, i + 1), `${ring.size} samples in room for ${ring.allocated} after ${i + 1}`);
  }
  const w = r.window('f', now);
  t.is(w.starts.warm, 8, 'the last 8 only');
  t.is(w.errors, 5);
  t.is(w.p50Ms, 96, 'the step median of the last 8 durations (92..99)');
  t.is(w.total, 100);
});

test('the per-second series counts start kinds and errors per second, zeros elsewhere, and forgets old seconds', (t) => {
  const r = new RecentInvocations({ seconds: 5 });
  const t0 = Date.UTC(2026, 11, 2, 3, 0, 0);
  r.add(rec({ endedAt: t0 + 100, start: 'cold' }));
  r.add(rec({ endedAt: t0 + 900, start: 'warm', outcome: 'error', error: { type: 'E', message: 'boom' } }));
  r.add(rec({ endedAt: t0 + 2500, start: 'generic' }));
  r.add(rec({ endedAt: t0 + 2600, start: null, outcome: 'throttled' }));
  let s = r.series(t0 + 4200);
  t.deepEqual(
    s.t,
    [-1, 0, 1, 2, 3].map((d) => t0 / 1000 + d),
  );
  t.deepEqual(s.cold, [0, 1, 0, 0, 0]);
  t.deepEqual(s.warm, [0, 1, 0, 0, 0]);
  t.deepEqual(s.generic, [0, 0, 0, 1, 0]);
  t.deepEqual(s.errors, [0, 1, 0, 1, 0]);
  // Seven seconds on, second 0's slot is reused by second 5; a record of second 0 is too old now.
  r.add(rec({ endedAt: t0 + 5100, start: 'warm' }));
  r.add(rec({ endedAt: t0 + 300, start: 'cold' }));
  s = r.series(t0 + 7000);
  t.deepEqual(
    s.t,
    [2, 3, 4, 5, 6].map((d) => t0 / 1000 + d),
  );
  t.deepEqual(s.warm, [0, 0, 0, 1, 0]);
  t.deepEqual(s.cold, [0, 0, 0, 0, 0]);
  t.deepEqual(s.generic, [1, 0, 0, 0, 0]);
  t.deepEqual(
    r.recentFailures().map((f) => f.error),
    ['throttled', 'E: boom'],
  );
  t.is(r.window('f', t0 + 7000).total, 6);
  t.is(r.window('nobody', t0).p50Ms, null);
});
