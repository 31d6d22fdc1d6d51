/**
 * HostTakeover: a host takes back the events of hosts silent for `afterMs`, only once its own
 * heartbeats have gone round without a gap for as long (a host cut off from the brokers heard
 * nobody, and must not take the events of hosts that were alive all along).
 */
import test from 'ava';
import { HostTakeover } from '../../src/cluster/takeover.js';
import { silentLogger } from '../../src/log.js';

function setup() {
  let now = 100_000;
  const seen = new Map<string, number>();
  const asked: string[][] = [];
  const holders = ['a', 'b', 'c'];
  const t = new HostTakeover({
    hostId: 'a',
    lastSeen: (h) => seen.get(h),
    recoverHeldBy: async (gone) => {
      const taken = holders.filter((h) => h !== 'a' && gone(h));
      asked.push(taken);
      return { requeued: taken.map((h) => `ev-${h}`), dead: [] };
    },
    log: silentLogger(),
    afterMs: 10_000,
    gapMs: 3000,
    now: () => now,
  });
  return { t, seen, asked, advance: (ms: number) => (now += ms), at: () => now };
}

test('silent hosts are taken over after afterMs; live ones never', async (t) => {
  const s = setup();
  const beat = (...hosts: string[]) => hosts.forEach((h) => s.seen.set(h, s.at()));
  beat('a', 'b', 'c');
  await s.t.check();
  t.deepEqual(s.asked, [], 'not before its own heartbeats went round for afterMs');
  for (let i = 0; i < 11; i++) {
    s.advance(1000);
    beat('a', 'b'); // c is dead
    await s.t.check();
  }
  t.deepEqual(s.asked.at(-1), ['c']);
  t.is(s.t.taken >= 1, true);
});

test('a host cut off from the brokers takes nothing when it comes back until it has heard the others again for afterMs', async (t) => {
  const s = setup();
  const beat = (...hosts: string[]) => hosts.forEach((h) => s.seen.set(h, s.at()));
  for (let i = 0; i < 12; i++) {
    s.advance(1000);
    beat('a', 'b');
    await s.t.check();
  }
  const before = s.asked.length;
  t.true(s.asked.every((x) => !x.includes('b')));
  // 30 s without any heartbeat (this host cut off): nothing is taken.
  s.advance(30_000);
  await s.t.check();
  t.is(s.asked.length, before);
  // Back: its own heartbeat first, b's a moment later; b's last one is 30 s old but b is alive.
  beat('a');
  await s.t.check();
  t.is(s.asked.length, before, 'not at once after the gap');
  s.advance(500);
  beat('b');
  for (let i = 0; i < 11; i++) {
    s.advance(1000);
    beat('a', 'b');
    await s.t.check();
  }
  t.true(
    s.asked.every((x) => !x.includes('b')),
    'b, alive all along, lost nothing',
  );
});
