/**
 * A pool on the in-memory FakeSpawner and a manual clock, for the pool's unit tests: no sandbox,
 * no root. `options` override the defaults (keep-alive 60 s, no generic instances).
 */
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { FixedKeepAlivePolicy } from '../../src/model/fixed-keep-alive.js';
import { FakeSpawner } from '../../src/pool/fake-spawner.js';
import { Pool, type PoolFunction, type PoolOptions } from '../../src/pool/pool.js';

export const LIMITS = { memoryMb: 128, pids: 64, cpuPercent: 100, tmpMb: 16 };

export function fakePool(options: Partial<Omit<PoolOptions, 'spawner' | 'connect' | 'clock'>> = {}): { spawner: FakeSpawner; pool: Pool; clock: ManualClock } {
  const spawner = new FakeSpawner();
  const clock = new ManualClock(1_000_000);
  const pool = new Pool({
    spawner,
    connect: spawner.connect,
    clock,
    log: silentLogger(),
    policy: new FixedKeepAlivePolicy(60_000),
    genericTarget: { node: 0, python: 0, provided: 0 },
    genericLimits: LIMITS,
    ...options,
  });
  return { spawner, pool, clock };
}

/** Lets `n` rounds of pending callbacks run (the fake spawner answers on setImmediate). */
export async function settle(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A function as the pool sees it: `f`, Python, handler `h.h`, 128 MB, 1 s, concurrency 10. */
export function poolFunction(over: Partial<PoolFunction> = {}): PoolFunction {
  return {
    name: 'f',
    runtime: 'python',
    handler: 'h.h',
    memoryMb: 128,
    timeoutMs: 1000,
    env: {},
    concurrency: 10,
    codeSha256: 'abc',
    updatedAt: 'v1',
    ...over,
  };
}
