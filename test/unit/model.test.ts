/**
 * The frequency model and the policies, driven with explicit times (no clock, no sleeping):
 * steady, periodic, bursty, dying, new and changing functions, plus one shared contract suite
 * run against every policy.
 */
import test from 'ava';
import { choosePlan, FrequencyModel, kernelsOf, FREQUENCY_MODEL_DEFAULTS } from '../../src/model/frequency-model.js';
import { createPolicy, GreedyDual, HearthPolicy, MINUTE_MS, POLICY_NAMES, type Policy } from '../../src/model/index.js';

const S = 1000;

/** Drives a policy as the pool would for one function with one instance: arrive, run, finish. */
function invoke(p: Policy, fn: string, at: number, durationMs: number, idleBefore = 1): void {
  p.onArrival(fn, at, { idle: idleBefore, busy: 0 });
  p.onFinish(fn, at + durationMs, durationMs, { idle: 1, busy: 0 });
}

const finishKeepAlive = (p: Policy, fn: string, now: number): number => p.keepAliveMs(fn, now, { idle: 1, busy: 0, cause: 'finish' });

/**
 * Whether an instance will be there for an arrival at `next`, given the function finished at
 * `finish` with nothing else running: either kept across the gap or pre-warmed before it.
 * Returns how long it idles before `next` (ms), or null when the arrival would be cold.
 */
function idleBefore(p: Policy, fn: string, finish: number, next: number): number | null {
  const ka = finishKeepAlive(p, fn, finish);
  if (ka > next - finish) return next - finish;
  const at = p.prewarmAt(fn, finish);
  if (at === null || at > next) return null;
  const ka2 = p.keepAliveMs(fn, at, { idle: 1, busy: 0, cause: 'prewarm' });
  return at + ka2 > next ? next - at : null;
}

test('new function: no history gives a finite keep-alive from the prior and no pre-warm', (t) => {
  const p = new HearthPolicy();
  invoke(p, 'new', 0, 100, 0);
  const ka = finishKeepAlive(p, 'new', 100);
  t.true(ka > 0 && ka <= FREQUENCY_MODEL_DEFAULTS.windowMs);
  t.is(p.prewarmAt('new', 100), null);
  t.is(p.targetInstances('new', 100), 1);
  // Never seen at all: nothing to keep, nothing to prepare.
  t.is(p.prewarmAt('unknown', 0), null);
  t.is(p.targetInstances('unknown', 0), 0);
});

test('steady function: every 30 s → an instance is there for the next arrival, idle only briefly', (t) => {
  const p = new HearthPolicy();
  let now = 0;
  for (let i = 0; i < 60; i++) {
    invoke(p, 'steady', now, 200);
    now += 30 * S;
  }
  const finish = now - 30 * S + 200;
  const idle = idleBefore(p, 'steady', finish, now);
  t.not(idle, null, 'the next arrival is warm');
  t.true(idle! < 5 * S, `idle ${idle} ms before it: loaded just in time, not kept for the whole gap`);
});

test('steady function without pre-warming: kept across the gap, well under a fixed 10 min', (t) => {
  const p = new HearthPolicy({ minPrewarmMs: 60_000 });
  let now = 0;
  for (let i = 0; i < 60; i++) {
    invoke(p, 'steady', now, 200);
    now += 30 * S;
  }
  const finish = now - 30 * S + 200;
  const ka = finishKeepAlive(p, 'steady', finish);
  t.true(ka >= 29.8 * S, `keep-alive ${ka} covers the next arrival`);
  t.true(ka < 10 * MINUTE_MS, `keep-alive ${ka} is well under a fixed 10 min`);
  // A plan may still load an instance later for the tail of the distribution (issue 17, third
  // pass), but never within minPrewarmMs of the kept instance's end.
  const at = p.prewarmAt('steady', finish);
  t.true(at === null || at >= finish + ka + 60_000, `pre-warm at ${at}, after the kept part`);
});

test('periodic function: every 15 min → unloaded after each run and pre-warmed just before the next', (t) => {
  const p = new HearthPolicy();
  const period = 15 * MINUTE_MS;
  let finish = 0;
  for (let i = 0; i < 12; i++) {
    invoke(p, 'timer', i * period, 500);
    finish = i * period + 500;
  }
  t.is(finishKeepAlive(p, 'timer', finish), 0);
  const at = p.prewarmAt('timer', finish);
  t.not(at, null);
  const next = 12 * period;
  t.true(at! <= next && at! >= next - 60 * S, `pre-warm at ${at! - finish} ms after the finish`);
  const ka = p.keepAliveMs('timer', at!, { idle: 1, busy: 0, cause: 'prewarm' });
  t.true(at! + ka > next, 'the pre-warmed instance is still there at the predicted arrival');
  t.true(at! + ka < next + 60 * MINUTE_MS, 'and is ended if the timer does not fire');
  const plan = p.explain('timer', finish).predictions['level1Plan'] as { coldProbability: number };
  t.true(plan.coldProbability < 0.2);
  // 4 arrivals an hour, few of them expected cold.
  t.true(p.expectedColdRatePerHour('timer', finish) < 0.2 * 4);
  t.is(p.expectedColdRatePerHour('unknown', finish), 0);
});

test('bursty function: the instances of a burst are ready for the next burst (kept or pre-warmed together), and counted', (t) => {
  // Bursts of 6 concurrent 20 s invocations every 5 min.
  const p = new HearthPolicy();
  const fn = 'bursty';
  for (let b = 0; b < 10; b++) {
    const t0 = b * 5 * MINUTE_MS;
    for (let k = 0; k < 6; k++) p.onArrival(fn, t0 + k * 100, { idle: b === 0 ? 0 : 6 - k, busy: k });
    for (let k = 5; k >= 0; k--) p.onFinish(fn, t0 + 20 * S + (5 - k) * 100, 20 * S, { idle: 6 - k, busy: k });
  }
  const lastFinish = 9 * 5 * MINUTE_MS + 20 * S + 500;
  // The 6th instance (released when 5 were still running) is needed again at the next burst:
  // either kept until then, or ended and loaded again with the burst's others before it.
  const nextBurst = 10 * 5 * MINUTE_MS;
  const ka6 = p.keepAliveMs(fn, lastFinish - 500, { idle: 1, busy: 5, cause: 'finish' });
  if (ka6 > 0) t.true(lastFinish - 500 + ka6 >= nextBurst, `6th instance kept ${ka6} ms`);
  else {
    const at = p.prewarmAt(fn, lastFinish);
    t.true(at !== null && at <= nextBurst && at > lastFinish + 3 * MINUTE_MS, `pre-warm at ${at}`);
    t.is(p.prewarmCount(fn, at!), 6, 'the whole burst is loaded at the pre-warm');
    // The 6th of the pre-warmed instances lives until the burst.
    t.true(at! + p.keepAliveMs(fn, at!, { idle: 6, busy: 0, cause: 'prewarm' }) > nextBurst + 500);
  }
  t.true(p.targetInstances(fn, lastFinish) >= 2);
  const w = p.explain(fn, lastFinish).window as { maxRunning: number; arrivalsInWindow: number };
  t.is(w.maxRunning, 6);
  t.is(w.arrivalsInWindow, 60);
});

test('dying function: frequent, then silent → short keep-alive, window empties, target drops to 0', (t) => {
  const p = new HearthPolicy();
  let now = 0;
  for (let i = 0; i < 100; i++) {
    invoke(p, 'dying', now, 100);
    now += 10 * S;
  }
  const last = now - 10 * S + 100;
  t.true(finishKeepAlive(p, 'dying', last) < 5 * MINUTE_MS);
  const later = last + 5 * 3_600_000;
  const m = p.model('dying');
  t.is(
    m.window(later).reduce((a, b) => a + b, 0),
    0,
  );
  t.is(m.ratePerHour(later), 0);
  t.is(p.targetInstances('dying', later), 0);
});

test('changing pattern: a 20 min timer that becomes a 20 s stream is followed within a minute', (t) => {
  const p = new HearthPolicy();
  let now = 0;
  for (let i = 0; i < 10; i++) {
    invoke(p, 'chg', now, 100);
    now += 20 * MINUTE_MS;
  }
  const before = p.prewarmAt('chg', now - 20 * MINUTE_MS + 100);
  t.not(before, null);
  t.true(before! > now - 2 * MINUTE_MS, 'pre-warmed just before the next 20 min tick');
  for (let i = 0; i < 5; i++) {
    invoke(p, 'chg', now, 100);
    now += 20 * S;
  }
  const finish = now - 20 * S + 100;
  t.not(idleBefore(p, 'chg', finish, now), null, 'the next 20 s arrival is warm');
});

test('choosePlan: repeated gaps give a narrow pre-warm window; a cheap cold start gives no keep at all', (t) => {
  const opts = { ...FREQUENCY_MODEL_DEFAULTS, coldCostMs: 3_600_000 };
  const gaps = Array.from({ length: 10 }, () => ({ gapMs: 600_000, weight: 1 }));
  const plan = choosePlan(kernelsOf(gaps, opts), opts, true, 10);
  t.true(plan.prewarmMs > 550_000 && plan.prewarmMs < 600_000);
  t.true(plan.endMs > 600_000 && plan.endMs < 650_000);
  t.is(plan.coldProbability, 0);
  const cheap = choosePlan(kernelsOf(gaps, opts), { ...opts, coldCostMs: 1_000 }, true, 10);
  t.is(cheap.endMs, 0);
  t.is(cheap.coldProbability, 1);
  // Without pre-warming the same gaps mean keeping the instance across them.
  const keep = choosePlan(kernelsOf(gaps, opts), opts, false, 10);
  t.is(keep.prewarmMs, 0);
  t.true(keep.endMs > 600_000);
});

test('kernelsOf: an isolated sample is smeared, repeated samples stay sharp', (t) => {
  const k = kernelsOf(
    [
      { gapMs: 60_000, weight: 1 },
      { gapMs: 60_000, weight: 1 },
      { gapMs: 60_000, weight: 1 },
      { gapMs: 3_600_000, weight: 1 },
    ],
    FREQUENCY_MODEL_DEFAULTS,
  );
  t.true(k[0].hi / k[0].lo < 1.1);
  t.true(k[3].hi / k[3].lo > 3);
});

test('FrequencyModel: arrivals land in minute buckets of the sliding window', (t) => {
  const m = new FrequencyModel({ windowMs: 10 * MINUTE_MS });
  for (let i = 0; i < 5; i++) {
    m.recordArrival(i * 20 * S, 0);
    m.recordFinish(i * 20 * S + 10, 10, 0);
  }
  const w = m.window(2 * MINUTE_MS);
  t.is(w.length, 10);
  t.deepEqual(w.slice(-3), [3, 2, 0]);
  t.is(m.ratePerHour(2 * MINUTE_MS), 5 * 6);
  // 10 minutes later the first bucket has slid out.
  t.is(
    m.window(10 * MINUTE_MS + 1).reduce((a, b) => a + b, 0),
    2,
  );
});

test('GreedyDual: victims by frequency × cost / size, clock rises to the last victim', (t) => {
  const gd = new GreedyDual();
  gd.touch('big-rare', 1, 100, 1000); // 0.1
  gd.touch('small-hot', 50, 100, 100); // 50
  gd.touch('mid', 5, 100, 100); // 5
  const c = (id: string, fn: string, idleSince: number) => ({ id, fn, memoryMb: 100, idleSince });
  t.deepEqual(gd.chooseVictims([c('1', 'small-hot', 0), c('2', 'mid', 5), c('3', 'big-rare', 10)], 150), ['3', '2']);
  t.is(gd.clock, 5);
  gd.touch('new', 1, 100, 100);
  t.is(gd.priority('new'), 6);
});

for (const name of POLICY_NAMES) {
  test(`policy contract: ${name}`, (t) => {
    const p = createPolicy(name);
    t.is(p.name, name);
    p.describe('f', { memoryMb: 128, coldStartMs: 200, group: 'app' });
    let now = 1_000;
    for (let i = 0; i < 20; i++) {
      p.onArrival('f', now, { idle: i === 0 ? 0 : 1, busy: 0 });
      now += 300;
      p.onFinish('f', now, 300, { idle: 1, busy: 0 });
      const ka = p.keepAliveMs('f', now, { idle: 1, busy: 0, cause: 'finish' });
      t.true(ka >= 0, 'keep-alive is never negative');
      const at = p.prewarmAt('f', now);
      t.true(at === null || at >= now, 'a pre-warm is never in the past');
      if (at !== null) t.true(p.keepAliveMs('f', at, { idle: 1, busy: 0, cause: 'prewarm' }) >= 0);
      now += (i % 3) * 60_000 + 5_000;
    }
    t.true(p.targetInstances('f', now) >= 0);
    const candidates = [
      { id: 'a', fn: 'f', memoryMb: 128, idleSince: now - 10 },
      { id: 'b', fn: 'g', memoryMb: 64, idleSince: now - 20 },
    ];
    const victims = p.chooseVictims(candidates, 100, now);
    t.true(victims.every((v) => v === 'a' || v === 'b'));
    const freed = candidates.filter((c) => victims.includes(c.id)).reduce((a, c) => a + c.memoryMb, 0);
    t.true(freed >= 100);
    const ex = p.explain('f', now);
    t.is(ex.policy, name);
    t.is(ex.fn, 'f');
    t.deepEqual(JSON.parse(JSON.stringify(ex)), ex);
    // What metrics read at every scrape is the explanation's decisions, computed alone.
    for (const at of [now, now + 90_000]) t.deepEqual(p.decisions('f', at), p.explain('f', at).decisions);
    p.onArrival('f', now, { idle: 0, busy: 1 });
    t.deepEqual(p.decisions('f', now), p.explain('f', now).decisions, 'also while instances run');
    p.forget('f');
    t.notThrows(() => p.explain('f', now));
  });
}
