/**
 * The reaper and the pre-warmer, observed through the API: a function invoked on a regular
 * period (a timer) is unloaded after each run and gets an instance pre-warmed just before its next
 * arrival, so it stops cold-starting. The policy runs on a clock 300x faster than real time (one
 * 15-minute period in 3 s); invocation deadlines stay real.
 */
import test from 'ava';
import { ScaledClock } from '../../src/clock.js';
import { isRoot, startHarness } from './daemon-harness.js';
import { join } from 'node:path';

const it = isRoot ? test.serial : test.skip;
if (!isRoot) test('pool policy integration needs root', (t) => t.pass());

const examples = join(__dirname, '..', '..', '..', 'examples');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PoolView {
  instances: Array<{ function: string | null; state: string; why?: string }>;
}

it('a periodic function gets a pre-warmed instance and stops cold-starting', async (t) => {
  const factor = 300;
  const periodMs = (15 * 60_000) / factor; // 15 virtual minutes
  const h = await startHarness({ generic: { node: 0, python: 1 }, policy: 'model' }, { policyClock: new ScaledClock(factor) });
  try {
    await h.deploy('timer', join(examples, 'hello-python'), 'python', 'main.handler');
    const starts: string[] = [];
    const t0 = Date.now();
    let sawUnloaded = false;
    let sawPrewarmed = false;
    let prewarmAt: string | null = null;
    for (let i = 0; i < 16; i++) {
      const wait = t0 + i * periodMs - Date.now();
      if (wait > 0) await sleep(wait);
      starts.push((await h.invoke('timer', { i })).start);
      if (i >= 12) {
        // Halfway to the next arrival: the instance is gone and a pre-warm is planned.
        await sleep(periodMs / 2);
        const pool = await h.client.call<PoolView>('GET', '/v1/pool');
        if (!pool.instances.some((x) => x.function === 'timer')) sawUnloaded = true;
        const model = await h.client.call<{ decisions: { prewarmAt: string | null } }>('GET', '/v1/functions/timer/model');
        prewarmAt ??= model.decisions.prewarmAt;
        // Before the arrival: a pre-warmed idle instance waits for it. The model pre-warms a few
        // tens of milliseconds ahead here (seconds of policy time), so look until just before the
        // arrival rather than at one instant that could fall inside the pre-warm itself.
        const until = t0 + (i + 1) * periodMs - 15;
        while (!sawPrewarmed && Date.now() < until) {
          const pool2 = await h.client.call<PoolView>('GET', '/v1/pool');
          if (pool2.instances.some((x) => x.function === 'timer' && x.state === 'idle' && /pre-warmed/.test(x.why ?? ''))) sawPrewarmed = true;
          else await sleep(5);
        }
      }
    }
    t.log(`starts: ${starts.join(' ')}`);
    t.not(starts[0], 'warm', 'the first arrival cannot be warm');
    t.deepEqual(starts.slice(-3), ['warm', 'warm', 'warm'], 'once learned, every arrival finds a pre-warmed instance');
    t.true(sawUnloaded, 'between arrivals the function holds no instance (the reaper ended it)');
    t.truthy(prewarmAt, 'the model view shows the planned pre-warm');
    t.true(sawPrewarmed, 'the pool shows why the instance is alive: pre-warmed');
  } finally {
    await h.stop();
  }
});
