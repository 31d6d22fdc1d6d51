/**
 * The EventQueue conformance suite (test/conformance/event-queue.ts) against the embedded SQLite
 * queue and the in-memory fake; the JetStream queue runs it in test/integration/queue-jetstream.test.ts.
 * Plus the shared backoff and retry rules.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffMs, retryPlan } from '../../src/queue/event-queue.js';
import { MemoryQueue } from '../../src/queue/memory-queue.js';
import { SqliteQueue } from '../../src/queue/sqlite-queue.js';
import { eventQueueConformance, type Backend } from '../conformance/event-queue.js';

const backends: Backend[] = [
  {
    name: 'sqlite',
    open(t, clock, settings) {
      const dir = mkdtempSync(join(tmpdir(), 'hearth-queue-test-'));
      const q = SqliteQueue.open({ stateDir: dir, clock, maintenanceIntervalMs: 0, ...settings });
      t.teardown(async () => {
        await q.close();
        rmSync(dir, { recursive: true, force: true });
      });
      return q;
    },
  },
  {
    name: 'memory',
    open(t, clock, settings) {
      const q = new MemoryQueue({ clock, ...settings });
      t.teardown(() => q.close());
      return q;
    },
  },
];

for (const b of backends) eventQueueConformance(b);

test('backoffMs: about 1 s first, doubling, jittered ±25 %, capped', (t) => {
  t.is(
    backoffMs(1, () => 0.5),
    1000,
  );
  t.is(
    backoffMs(1, () => 0),
    750,
  );
  t.is(
    backoffMs(1, () => 0.999999),
    1250,
  );
  t.is(
    backoffMs(2, () => 0.5),
    2000,
  );
  t.is(
    backoffMs(3, () => 0.5),
    4000,
  );
  t.is(
    backoffMs(30, () => 0.5),
    300_000,
  );
  t.is(
    backoffMs(1000, () => 0.5, { capMs: 10_000 }),
    10_000,
  );
  const spread = new Set(Array.from({ length: 50 }, () => backoffMs(2)));
  t.true(spread.size > 1, 'jitter spreads retries');
  for (const v of spread) t.true(v >= 1500 && v <= 2500);
});

test('retryPlan: dead when attempts are used up or the retry would pass expiry', (t) => {
  const half = () => 0.5;
  t.deepEqual(retryPlan({ attempts: 1, maxAttempts: 3, expiresAt: null }, 0, half), { retryAt: 1000 });
  t.deepEqual(retryPlan({ attempts: 3, maxAttempts: 3, expiresAt: null }, 0, half), { dead: true });
  t.deepEqual(retryPlan({ attempts: 1, maxAttempts: 3, expiresAt: 1000 }, 0, half), { dead: true });
  t.deepEqual(retryPlan({ attempts: 1, maxAttempts: 3, expiresAt: 1001 }, 0, half), { retryAt: 1000 });
});
