import test from 'ava';
import { fakePool, poolFunction, settle } from './pool-fixture.js';
import { FixedKeepAlivePolicy } from '../../src/model/fixed-keep-alive.js';
import type { PoolFunction } from '../../src/pool/pool.js';
import type { IdleContext } from '../../src/model/policy.js';

const f: PoolFunction = poolFunction({ runtime: 'node' });

/** Keeps an instance 1 s, and predicts the next arrival `gapMs` after each decision. */
class PredictingPolicy extends FixedKeepAlivePolicy {
  constructor(private readonly gapMs: number | null) {
    super(1000, 'predicting');
  }
  override prewarmAt(_fn: string, now: number): number | null {
    return this.gapMs === null ? null : now + this.gapMs;
  }
}

function setup(gapMs: number | null, known = true) {
  const fixture = fakePool({
    policy: new PredictingPolicy(gapMs),
    lookup: (name) => (known && name === 'f' ? { fn: f, codeDir: '/c' } : undefined),
  });
  fixture.spawner.define('/c', 'h.h', () => 'ok');
  return fixture;
}

test('after its instance ends, the function gets a pre-warmed one at the predicted time', async (t) => {
  const { spawner, pool, clock } = setup(5000);
  await pool.invoke({ fn: f, codeDir: '/c', event: {} });
  clock.advance(1001); // keep-alive over: the instance ends, the next arrival is predicted 5 s on
  await settle();
  t.is(spawner.live().length, 0);
  t.deepEqual(pool.prewarmSchedule(), { f: new Date(clock.now() + 4999).toISOString() });
  clock.advance(4998);
  await settle();
  t.is(spawner.live().length, 0, 'not before the predicted time');
  clock.advance(1);
  await settle();
  const [view] = pool.list();
  t.is(view?.state, 'idle');
  t.regex(view?.why ?? '', /^pre-warmed by predicting/);
  t.is((await pool.invoke({ fn: f, codeDir: '/c', event: {} })).start, 'warm');
  await pool.stop();
});

test('no pre-warm while the function has an instance, nor when the policy predicts nothing', async (t) => {
  const busy = setup(10);
  await busy.pool.invoke({ fn: f, codeDir: '/c', event: {} });
  busy.clock.advance(10); // the pre-warm time comes while the instance is still kept
  await settle();
  t.is(busy.spawner.spawnCount, 1);
  await busy.pool.stop();

  const none = setup(null);
  await none.pool.invoke({ fn: f, codeDir: '/c', event: {} });
  none.clock.advance(60_000);
  await settle();
  t.deepEqual(none.pool.prewarmSchedule(), {});
  t.is(none.spawner.spawnCount, 1);
  await none.pool.stop();
});

test('a function gone by the pre-warm time is not pre-warmed; retiring it drops its plan', async (t) => {
  const gone = setup(5000, false);
  await gone.pool.invoke({ fn: f, codeDir: '/c', event: {} });
  gone.clock.advance(10_000);
  await settle();
  t.is(gone.spawner.spawnCount, 1);
  await gone.pool.stop();

  const retired = setup(5000);
  await retired.pool.invoke({ fn: f, codeDir: '/c', event: {} });
  t.not(retired.pool.prewarmSchedule().f, undefined);
  retired.pool.retire('f', true);
  t.deepEqual(retired.pool.prewarmSchedule(), {});
  await retired.pool.stop();
});

/** PredictingPolicy that wants a burst's worth of instances ready at the pre-warm. */
class BurstPolicy extends PredictingPolicy {
  constructor(private readonly burst: number) {
    super(5000);
  }
  override prewarmCount(_fn: string, _now: number): number {
    return this.burst;
  }
}

test('a pre-warm loads as many instances as the policy wants ready, counting idle ones, one after another', async (t) => {
  const fixture = fakePool({ policy: new BurstPolicy(3), lookup: (name) => (name === 'f' ? { fn: f, codeDir: '/c' } : undefined) });
  fixture.spawner.define('/c', 'h.h', () => 'ok');
  const { spawner, pool, clock } = fixture;
  await pool.invoke({ fn: f, codeDir: '/c', event: {} });
  clock.advance(1001); // the used instance ends; the pre-warm is 5 s on
  await settle();
  t.is(spawner.live().length, 0);
  clock.advance(4999);
  await settle(20);
  const views = pool.list();
  t.is(views.length, 3, 'three instances for the predicted burst');
  t.true(views.every((v) => v.state === 'idle' && /^pre-warmed by predicting/.test(v.why ?? '')));
  const starts = await Promise.all([1, 2, 3].map(() => pool.invoke({ fn: f, codeDir: '/c', event: {} })));
  t.deepEqual(
    starts.map((s) => s.start),
    ['warm', 'warm', 'warm'],
  );
  t.is(spawner.spawnCount, 4);
  await pool.stop();
});

/** Wants three instances at the pre-warm but ends every pre-warmed one at once. */
class EndsPrewarmedPolicy extends BurstPolicy {
  override keepAliveMs(fn: string, now: number, ctx: IdleContext): number {
    return ctx.cause === 'prewarm' ? 0 : super.keepAliveMs(fn, now, ctx);
  }
}

test('a pre-warm stops when the policy ends what it loads (no loop of starts)', async (t) => {
  const fixture = fakePool({ policy: new EndsPrewarmedPolicy(3), lookup: (name) => (name === 'f' ? { fn: f, codeDir: '/c' } : undefined) });
  fixture.spawner.define('/c', 'h.h', () => 'ok');
  const { spawner, pool, clock } = fixture;
  await pool.invoke({ fn: f, codeDir: '/c', event: {} });
  clock.advance(1001);
  await settle();
  clock.advance(4999);
  await settle(40);
  t.is(spawner.spawnCount, 2, 'the invocation and one pre-warm, ended at once');
  t.is(pool.list().length, 0);
  await pool.stop();
});
