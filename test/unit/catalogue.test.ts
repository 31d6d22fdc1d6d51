/**
 * The function catalogue with fakes around it: a registry change reaches the pool (retire,
 * lookup, network generic pools), the scheduler, the queue and the code GC, in the documented
 * order, and stops reaching them after stop().
 */
import test from 'ava';
import { ManualClock } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { FunctionCatalogue, type CatalogueFollowers, type CatalogueEntry } from '../../src/registry/catalogue.js';
import type { Runtime } from '../../src/registry/function-spec.js';
import { MemoryCodeStore } from '../../src/registry/memory-code-store.js';
import { MemoryRegistry } from '../../src/registry/registry.js';
import { def, sha } from '../conformance/function-registry.js';

class FakePool {
  readonly calls: string[] = [];
  readonly targets = new Map<string, number>([
    ['node', 1],
    ['python', 1],
  ]);
  live = new Set<string>();
  /** What lookup returned for the retired function at the moment of retiring. */
  readonly seenAtRetire: (CatalogueEntry | undefined)[] = [];
  constructor(private readonly lookup: (n: string) => CatalogueEntry | undefined) {}
  retire(fn: string, deleted: boolean): void {
    this.seenAtRetire.push(this.lookup(fn));
    this.calls.push(`retire ${fn}${deleted ? ' deleted' : ''}`);
  }
  genericTargets(): Record<string, number> {
    return Object.fromEntries(this.targets);
  }
  setGenericTarget(rt: Runtime, n: number, network: string | null): void {
    const key = network === null ? rt : `${rt}@${network}`;
    if (n === 0 && network !== null) this.targets.delete(key);
    else this.targets.set(key, n);
  }
  liveCodeShas(): Set<string> {
    return this.live;
  }
}

async function setup(opts: { expectedColdRatePerHour?: (fn: string) => number } = {}) {
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const registry = new MemoryRegistry({ clock });
  await registry.start();
  const store = new MemoryCodeStore({ root: '/code' });
  const described: string[] = [];
  const policy = {
    describe: (fn: string, traits: { memoryMb: number }) => void described.push(`${fn}:${traits.memoryMb}`),
    ...(opts.expectedColdRatePerHour ? { expectedColdRatePerHour: opts.expectedColdRatePerHour } : {}),
  };
  const catalogue = new FunctionCatalogue({ registry, store, policy, clock, log: createLogger('silent'), genericPerNetwork: 2 });
  const pool = new FakePool(catalogue.lookup);
  const schedules: string[] = [];
  const purged: string[] = [];
  const gcRuns: string[][] = [];
  const followers: CatalogueFollowers = {
    pool,
    queue: { purgeFunction: async (fn) => void purged.push(fn) },
    schedules: {
      set: async (fn, exprs, target) => void schedules.push(`set ${fn} ${exprs.join(',')} attempts=${target.maxAttempts}`),
      remove: async (fn) => void schedules.push(`remove ${fn}`),
    },
    gcCode: async (alsoLive) => {
      gcRuns.push([...alsoLive]);
      return [];
    },
  };
  return { clock, registry, catalogue, pool, followers, described, schedules, purged, gcRuns };
}

const settle = () => new Promise((r) => setImmediate(r));

test('start loads every function: lookup, policy traits, schedules, network generic pools', async (t) => {
  const s = await setup();
  await s.registry.put('a', def({ schedules: ['rate(1 minute)'], retries: 1 }));
  await s.registry.put('b', def({ runtime: 'python', handler: 'app.handler', network: 'vpc', memoryMb: 256, codeSha256: sha('b') }));
  t.is(s.catalogue.lookup('a'), undefined, 'empty before start');
  await s.catalogue.start(s.followers);
  const a = s.catalogue.lookup('a')!;
  t.like(a.fn, { name: 'a', runtime: 'node', handler: 'index.handler', memoryMb: 128, codeSha256: sha('a') });
  t.is(a.codeDir, `/code/${sha('a')}`);
  t.is(a.record.retries, 1);
  t.is(s.catalogue.lookup('b')!.fn.network, 'vpc');
  t.is(s.catalogue.size, 2);
  t.deepEqual(
    s.catalogue.records().map((r) => r.name),
    ['a', 'b'],
  );
  t.deepEqual(s.catalogue.usersOf('vpc'), ['b']);
  t.deepEqual(s.described.sort(), ['a:128', 'b:256']);
  t.deepEqual(s.schedules.sort(), ['remove b', 'set a rate(1 minute) attempts=2']);
  t.deepEqual(s.pool.genericTargets(), { node: 1, python: 1, 'python@vpc': 2 });
  t.deepEqual(s.pool.calls, [], 'nothing retired at start');
  s.catalogue.stop();
});

test('an update retires the old instances first, then lookup gives the new definition', async (t) => {
  const s = await setup();
  const first = await s.registry.put('fn', def());
  await s.catalogue.start(s.followers);
  s.clock.advance(1000);
  await s.registry.put('fn', def({ codeSha256: sha('c'), memoryMb: 512 }));
  t.deepEqual(s.pool.calls, ['retire fn']);
  t.is(s.pool.seenAtRetire[0]?.fn.updatedAt, first.record.updatedAt, 'retired while the table still held the old version');
  const now = s.catalogue.lookup('fn')!;
  t.is(now.fn.codeSha256, sha('c'));
  t.is(now.codeDir, `/code/${sha('c')}`);
  t.not(now.fn.updatedAt, first.record.updatedAt);
  t.true(s.described.includes('fn:512'));
  s.catalogue.stop();
});

test('a delete retires as deleted, empties the lookup, purges events, removes schedules and the network pool', async (t) => {
  const s = await setup();
  await s.registry.put('fn', def({ network: 'vpc', schedules: ['rate(5 minutes)'] }));
  await s.catalogue.start(s.followers);
  t.is(s.pool.genericTargets()['node@vpc'], 2);
  s.schedules.length = 0;
  await s.registry.delete('fn');
  await settle();
  t.deepEqual(s.pool.calls, ['retire fn deleted']);
  t.is(s.catalogue.lookup('fn'), undefined);
  t.deepEqual(s.purged, ['fn']);
  t.deepEqual(s.schedules, ['remove fn']);
  t.false('node@vpc' in s.pool.genericTargets(), 'no function on vpc: its generic pool goes');
  t.is(s.pool.genericTargets()['node'], 1, 'the base pools are not touched');
  s.catalogue.stop();
});

test('code GC runs once after a burst of changes, keeping what live instances mount', async (t) => {
  const s = await setup();
  await s.catalogue.start(s.followers);
  s.clock.advance(5_000);
  await settle();
  t.is(s.gcRuns.length, 1, 'a first GC a few seconds after start');
  s.pool.live = new Set([sha('a')]);
  await s.registry.put('x', def({ codeSha256: sha('b') }));
  await s.registry.put('y', def({ codeSha256: sha('c') }));
  await s.registry.delete('x');
  s.clock.advance(29_000);
  await settle();
  t.is(s.gcRuns.length, 1, 'not before the delay');
  s.clock.advance(1_000);
  await settle();
  t.deepEqual(s.gcRuns, [[], [sha('a')]]);
  s.catalogue.stop();
});

test('after stop, registry changes reach nothing and no GC fires', async (t) => {
  const s = await setup();
  await s.registry.put('fn', def());
  await s.catalogue.start(s.followers);
  s.catalogue.stop();
  await s.registry.put('fn', def({ codeSha256: sha('d') }));
  await s.registry.delete('fn');
  s.clock.advance(60_000);
  await settle();
  t.deepEqual(s.pool.calls, []);
  t.deepEqual(s.purged, []);
  t.deepEqual(s.gcRuns, []);
});

test('predicted cold rate sums the policy over functions of that runtime without a network', async (t) => {
  const s = await setup({ expectedColdRatePerHour: (fn) => ({ a: 3, b: 5, c: 7 })[fn] ?? 0 });
  await s.registry.put('a', def());
  await s.registry.put('b', def());
  await s.registry.put('c', def({ network: 'vpc' }));
  await s.registry.put('d', def({ runtime: 'python', handler: 'app.handler' }));
  await s.catalogue.start(s.followers);
  t.is(s.catalogue.predictedColdRatePerHour('node', 0), 8);
  t.is(s.catalogue.predictedColdRatePerHour('python', 0), 0);
  t.is((await setup()).catalogue.predictedColdRatePerHour('node', 0), 0, 'a policy without the estimate predicts none');
  s.catalogue.stop();
});
