/**
 * scripts/bench/loop-probe.ts, in this process: a window sees a callback that holds the loop. The
 * lower bound is the point of the probe (a busy wait of at least 5 ms, timed by the test itself
 * with the same clock), not a speed assertion.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopProbeClient, startLoopProbe } from '../../scripts/bench/loop-probe.js';

const withProbe = async (fn: (socket: string) => Promise<void>): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-loop-probe-'));
  const socket = join(dir, 'probe.sock');
  const stop = startLoopProbe(socket);
  try {
    await fn(socket);
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
  }
};

const busyWait = (ms: number): number => {
  const t0 = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - t0) / 1e6 < ms) {
    /* hold the loop */
  }
  return Number(process.hrtime.bigint() - t0) / 1e6;
};

test('a window reports the longest callback run while it was open', async (t) => {
  await withProbe(async (socket) => {
    const probe = await LoopProbeClient.connect(socket);
    try {
      await probe.start();
      const held = await new Promise<number>((r) => setTimeout(() => r(busyWait(5)), 1));
      await new Promise((r) => setImmediate(r));
      const w = await probe.stop();
      t.true(w.maxSpanMs >= held, `max span ${w.maxSpanMs} ms, held ${held} ms`);
      t.true(w.busyMs >= w.maxSpanMs);
      t.true(w.spans >= 1);
      t.true(w.windowMs >= held);
    } finally {
      probe.close();
    }
  });
});

test('an unknown command is answered with an error, and the connection stays usable', async (t) => {
  await withProbe(async (socket) => {
    const conn = createConnection(socket);
    const line = await new Promise<string>((resolve) => {
      conn.setEncoding('utf8');
      conn.once('data', (s: string) => resolve(s.trim()));
      conn.write('bogus\n');
    });
    conn.destroy();
    t.deepEqual(JSON.parse(line), { error: 'unknown command bogus' });
    const probe = await LoopProbeClient.connect(socket);
    await probe.start();
    t.is(typeof (await probe.stop()).maxSpanMs, 'number');
    probe.close();
  });
});
