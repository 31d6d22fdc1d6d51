import test from 'ava';
import { ReplyPoller } from '../../src/runtimes/reply-poller.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(maxSpinUs = 100, result = 12) {
  const spins: number[] = [];
  const poller = new ReplyPoller({ maxSpinUs, spin: (us) => (spins.push(us), result) });
  return { poller, spins };
}

test('no spin for a connection without a handler time yet; then one spin per invocation, after the current turn', async (t) => {
  const { poller, spins } = setup();
  const w = poller.watch();
  w.sent();
  await turn();
  t.deepEqual(spins, [], 'first invocation: nothing known about the handler');
  w.answered(0.005);
  w.sent();
  t.deepEqual(spins, [], 'the spin waits for the rest of the turn');
  await turn();
  t.deepEqual(spins, [100]);
  w.answered(0.005);
  t.deepEqual(poller.stats, { hits: 1, misses: 0, spunUs: 12 });
});

test('a slow handler never spins: its average must stay under half the cap', async (t) => {
  const { poller, spins } = setup(100);
  const w = poller.watch();
  w.sent();
  w.answered(0.06); // 60 µs
  w.sent();
  await turn();
  t.deepEqual(spins, []);
  w.answered(0.001);
  // the running average moves a quarter of the way: 60 -> 45.25 µs, under 50
  w.sent();
  await turn();
  t.deepEqual(spins, [100]);
});

test('no spin while another invocation is awaited anywhere in the daemon', async (t) => {
  const { poller, spins } = setup();
  const a = poller.watch();
  const b = poller.watch();
  for (const w of [a, b]) {
    w.sent();
    w.answered(0.001);
  }
  a.sent();
  b.sent();
  await turn();
  t.deepEqual(spins, []);
  b.answered(); // a connection that ended: no handler time, still no longer outstanding
  a.answered(0.001);
  a.sent();
  await turn();
  t.deepEqual(spins, [100]);
});

test('a reply that comes before the spin would start cancels it; a spin that runs out counts the whole cap', async (t) => {
  const { poller, spins } = setup(80, -1);
  const w = poller.watch();
  w.sent();
  w.answered(0.001);
  w.sent();
  w.answered(0.001);
  await turn();
  t.deepEqual(spins, []);
  w.sent();
  await turn();
  t.deepEqual(spins, [80]);
  t.deepEqual(poller.stats, { hits: 0, misses: 1, spunUs: 80 });
});

test('a cap of 0 never spins', async (t) => {
  const { poller, spins } = setup(0);
  const w = poller.watch();
  for (let i = 0; i < 3; i++) {
    w.sent();
    await turn();
    w.answered(0);
  }
  t.deepEqual(spins, []);
});
