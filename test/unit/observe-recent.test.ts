/**
 * The dashboard's recent window: per function it counts only the last `perFunction` invocations,
 * and keeps at most a quarter more in memory (trimmed in one go, not at every invocation).
 */
import test from 'ava';
import { RecentInvocations } from '../../src/observe/recent.js';
import { rec } from './observe-fixture.js';

test('a function counts its last perFunction invocations; memory stays within a quarter more', (t) => {
  const r = new RecentInvocations({ perFunction: 8 });
  const now = Date.UTC(2026, 11, 2, 3, 0, 0);
  for (let i = 0; i < 100; i++) {
    r.add(rec({ function: 'f', endedAt: now, durationMs: i, outcome: i < 95 ? 'ok' : 'error' }));
    const kept = (r as unknown as { samples: Map<string, unknown[]> }).samples.get('f')!.length;
    t.true(kept <= 10, `kept ${kept} after ${i + 1}`);
  }
  const w = r.window('f', now);
  t.is(w.starts.warm, 8, 'the last 8 only');
  t.is(w.errors, 5);
  t.is(w.p50Ms, 96, 'the step median of the last 8 durations (92..99)');
  t.is(w.total, 100);
});
