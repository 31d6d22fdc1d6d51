/**
 * The plan search of issue 17, checked against brute force, and what the policy says in words:
 * massBelow equals the kernel-by-kernel sums, the one-pass choosePlan finds the cheapest of all
 * (keep, pre-warm, end) triples, a function with short and long gaps keeps its instance for the
 * short ones and pre-warms for the long one, the memory price shortens keep-alives of larger instances, a kept
 * higher-level instance does not swallow a level-1 pre-warm, and the explanation names the period.
 */
import test from 'ava';
import fc from 'fast-check';
import { choosePlan, massBelow, type GapKernel } from '../../src/model/gap-plan.js';
import { FREQUENCY_MODEL_DEFAULTS } from '../../src/model/frequency-options.js';
import { HearthPolicy, MINUTE_MS } from '../../src/model/index.js';
import { periodOf, spoken } from '../../src/model/explain-words.js';
import { fnv1a, splitTrace, type Trace } from '../../scripts/sim/trace.js';

/** Mass and first moment of one kernel below x, computed directly. */
function direct(k: GapKernel, x: number): [number, number] {
  const lo = Math.max(k.lo, 1);
  if (x <= lo) return [0, 0];
  if (k.hi <= lo * (1 + 1e-9)) return [k.weight, k.weight * lo];
  const L = Math.log(k.hi / lo);
  const xx = Math.min(x, k.hi);
  return [(k.weight * Math.log(xx / lo)) / L, (k.weight * (xx - lo)) / L];
}

const kernelArb = fc
  .record({
    lo: fc.double({ min: 1, max: 1e7, noNaN: true }),
    ratio: fc.double({ min: 1, max: 20, noNaN: true }),
    weight: fc.double({ min: 0.01, max: 5, noNaN: true }),
  })
  .map(({ lo, ratio, weight }) => ({ lo, hi: lo * ratio, weight }));

test('massBelow: the sweep equals the sum over kernels at every point', (t) => {
  fc.assert(
    fc.property(
      fc.array(kernelArb, { minLength: 1, maxLength: 12 }),
      fc.array(fc.double({ min: 1, max: 3e7, noNaN: true }), { minLength: 1, maxLength: 30 }),
      (ks, raw) => {
        const xs = [...raw].sort((a, b) => a - b);
        const { M, S } = massBelow(ks, xs);
        xs.forEach((x, i) => {
          let m = 0;
          let s = 0;
          for (const k of ks) {
            const [a, b] = direct(k, x);
            m += a;
            s += b;
          }
          if (Math.abs(M[i] - m) > 1e-6 * (1 + m) || Math.abs(S[i] - s) > 1e-6 * (1 + s)) throw new Error(`x=${x}: ${M[i]} vs ${m}, ${S[i]} vs ${s}`);
        });
      },
    ),
  );
  t.pass();
});

test('choosePlan: the one-pass search costs no more than the best of all (keep, pre-warm, end) triples', (t) => {
  const o = { ...FREQUENCY_MODEL_DEFAULTS, coldCostMs: 10 * MINUTE_MS };
  fc.assert(
    fc.property(fc.array(kernelArb, { minLength: 1, maxLength: 7 }), fc.double({ min: 0.05, max: 1, noNaN: true }), (ks, q) => {
      const W = ks.reduce((a, k) => a + k.weight, 0);
      // Direct cost from the kernels: a gap g is warm iff g < k or p ≤ g < e, idles min(g, k) +
      // clamp(g − p, 0, e − p); with probability 1 − q the pre-warm does not happen.
      const cost = (k: number, p: number, e: number): number => {
        let [mk, sk, early, late, warmIdle] = [0, 0, 0, 0, 0];
        for (const x of ks) {
          const [a, b] = direct(x, k);
          const [mp, sp] = direct(x, p);
          const [me, se] = direct(x, e);
          mk += a;
          sk += b + k * (x.weight - a);
          early += mp - a;
          late += x.weight - me;
          warmIdle += se - sp - p * (me - mp) + (x.weight - me) * (e - p);
        }
        const hold = o.holdFee * W;
        if (p === 0) return o.coldCostMs * (W - mk) + sk + hold * k; // keep until k = e
        const pre = o.coldCostMs * (early + late) + sk + warmIdle + o.prewarmCostMs * (late + (W - late - early - mk)) + hold * (k + e - p);
        return q * pre + (1 - q) * (o.coldCostMs * (W - mk) + sk + hold * k);
      };
      const plan = choosePlan(ks, o, true, 0, q);
      const got = plan.endMs === 0 ? o.coldCostMs * W : cost(plan.prewarmMs > 0 ? plan.keepMs : plan.endMs, plan.prewarmMs, plan.endMs);
      const cands = [...new Set(ks.flatMap((k) => [k.lo, k.hi, Math.sqrt(k.lo * k.hi)]))].filter((x) => x <= o.windowMs).sort((a, b) => a - b);
      let best = o.coldCostMs * W;
      for (const e of cands) {
        best = Math.min(best, cost(e, 0, e));
        for (const p of cands) {
          if (p >= e || p < o.minPrewarmMs) continue;
          for (const k of [0, ...cands]) if (k + o.minPrewarmMs <= p) best = Math.min(best, cost(k, p, e));
        }
      }
      if (got > best * (1 + 1e-6) + 1e-6) throw new Error(`plan cost ${got} > best ${best}`);
      if (plan.prewarmMs > 0 && !(plan.keepMs + o.minPrewarmMs <= plan.prewarmMs && plan.prewarmMs < plan.endMs))
        throw new Error('keep, pre-warm, end out of order');
    }),
  );
  t.pass();
});

/** One arrival and finish with nothing else running. */
function once(p: HearthPolicy, fn: string, at: number, d = 100): void {
  p.onArrival(fn, at, { idle: 1, busy: 0 });
  p.onFinish(fn, at + d, d, { idle: 1, busy: 0 });
}

test('memory price: the same traffic keeps a 4× larger instance for a shorter time', (t) => {
  const p = new HearthPolicy({ fairRatePerHour: 0 });
  p.describe('small', { memoryMb: 128 });
  p.describe('large', { memoryMb: 512 });
  t.is(p.coldCostMs('small', 0), 4 * p.coldCostMs('large', 0));
  let now = 0;
  const gaps = [3, 40, 12, 5, 25, 60, 4, 11, 30, 8, 18, 50];
  for (const g of gaps) {
    once(p, 'small', now);
    once(p, 'large', now);
    now += g * MINUTE_MS;
  }
  const end = (fn: string): number => p.model(fn).plan(1, now, p.coldCostMs(fn, now)).endMs;
  t.true(end('large') < end('small'), `${end('large')} < ${end('small')}`);
});

test('a pre-warm plan ends the instance even beside another idle one: the pre-warm tops the function up', (t) => {
  const p = new HearthPolicy();
  let now = 0;
  for (let i = 0; i < 12; i++) {
    once(p, 'timer', now);
    now += 15 * MINUTE_MS;
  }
  const fin = now - 15 * MINUTE_MS + 100;
  t.true(p.model('timer').plan(1, fin, p.coldCostMs('timer', fin)).prewarmMs > 0, 'level 1 pre-warms');
  t.is(p.keepAliveMs('timer', fin, { idle: 1, busy: 0, cause: 'finish' }), 0, 'alone: ended, to be pre-warmed');
  // Another idle instance would be taken by the next arrival and the pre-warm would find it: the
  // pre-warm asks for prewarmCount instances in all and loads only what is missing.
  t.is(p.keepAliveMs('timer', fin, { idle: 2, busy: 0, cause: 'finish' }), 0, 'with another idle instance: ended too');
  const at = p.prewarmAt('timer', fin);
  t.not(at, null);
  t.is(p.prewarmCount('timer', at!), 1, 'one level wanted: one instance ready at the pre-warm');
});

test('short and long gaps: the instance is kept for the short gap and loaded again before the long one', (t) => {
  // A 2-hour timer that fires twice, a minute apart (gaps 1 min, 119 min, 1 min, …): keeping the
  // instance through both gaps idles 2 h per cycle; ending it after the short gap and loading it
  // just before the next pair idles about a minute.
  const p = new HearthPolicy({ fairRatePerHour: 0 });
  let now = 0;
  for (let i = 0; i < 16; i++) {
    once(p, 'pair', now);
    now += (i % 2 === 0 ? 1 : 119) * MINUTE_MS;
  }
  // The last run (i = 15) is the second of a pair, released 100 ms after it started.
  const fin = now - 119 * MINUTE_MS + 100;
  const plan = p.model('pair').plan(1, fin, p.coldCostMs('pair', fin));
  t.true(plan.keepMs >= 1 * MINUTE_MS && plan.keepMs < 3 * MINUTE_MS, `kept ${plan.keepMs} ms for the 1 min gaps`);
  t.true(plan.prewarmMs > 110 * MINUTE_MS && plan.prewarmMs < 119 * MINUTE_MS, `pre-warm at ${plan.prewarmMs} ms`);
  t.true(plan.endMs > 119 * MINUTE_MS && plan.endMs < 125 * MINUTE_MS, `end at ${plan.endMs} ms`);
  t.true(plan.expectedIdleMs < 10 * MINUTE_MS, `idle ${plan.expectedIdleMs} ms per gap, not an hour`);
  const ka = p.keepAliveMs('pair', fin, { idle: 1, busy: 0, cause: 'finish' });
  t.is(ka, plan.keepMs, 'the released instance is kept for the short gap only');
  t.is(p.prewarmAt('pair', fin), fin + plan.prewarmMs, 'and one is loaded before the long gap ends');
  t.is(p.prewarmCount('pair', fin + plan.prewarmMs), 1);
  const words = (p.explain('pair', fin).summary ?? []).join('\n');
  t.regex(words, /for the short gaps\), then end it and load a new one/);
});

test('explanation in words: period, plan and next pre-warm of a 15 min timer', (t) => {
  const p = new HearthPolicy();
  let now = 0;
  for (let i = 0; i < 12; i++) {
    once(p, 'timer', now);
    now += 15 * MINUTE_MS;
  }
  const e = p.explain('timer', now - 15 * MINUTE_MS + 200);
  const words = (e.summary ?? []).join('\n');
  t.regex(words, /Period found: the function is idle about 15 min/);
  t.regex(words, /load a new one 1\d min after/);
  t.regex(words, /Next pre-warm: in 1\d min/);
  t.is(periodOf([{ gapMs: 60_000, weight: 1 }]), null, 'one gap is no period');
  t.is(spoken(125 * MINUTE_MS), '2 h 5 min');
});

test('split: the two halves partition the functions by a stable hash', (t) => {
  const f = (id: string) => ({
    id,
    app: id,
    trigger: null,
    perMinute: new Uint32Array([1, 2]),
    durationMs: 1,
    memoryMb: 1,
    coldStartMs: 1,
    defaulted: { duration: false, memory: false },
  });
  const trace: Trace = { functions: ['a', 'b', 'c', 'd', 'e', 'f'].map(f), minutes: 2, invocations: 18 };
  const tune = splitTrace(trace, 'tune');
  const hold = splitTrace(trace, 'holdout');
  t.is(tune.functions.length + hold.functions.length, 6);
  t.is(tune.invocations + hold.invocations, 18);
  for (const x of tune.functions) t.is(fnv1a(x.id) % 2, 0);
  t.is(fnv1a('a'), 0xe40c292c, 'FNV-1a of "a"');
});
