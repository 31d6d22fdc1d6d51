/**
 * The durable event queue through the API, from a client of the control socket (the daemon is a
 * separate process): accepted events per second (one per request, and in batches), queue-to-start
 * latency when a warm instance is idle, and drain rate. Root only; cleans up after itself.
 *
 *   node dist/scripts/bench-events.js [--events N] [--json OUT]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlClient } from '../src/control/client.js';
import { withBenchDaemon } from './bench/daemon-process.js';
import { sleep, summarize } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

async function main(): Promise<void> {
  const usage = 'usage: node dist/scripts/bench-events.js [--events N] [--json OUT]';
  const { total, json } = scriptArgs('bench-events', usage, { events: VALUE, json: VALUE }, ({ values: v }) => ({
    total: numberArg(v.events, '--events', 20000, COUNT),
    json: v.json,
  }));
  if (process.getuid?.() !== 0) throw new Error('needs root');
  const settings = { generic: { node: 0, python: 2 }, logLevel: 'error', extra: { maxQueuedEvents: 1_000_000 } };
  await withBenchDaemon('hearth-bev-', settings, async (d, cleanup) => {
    const client = (): ControlClient => {
      const cc = new ControlClient(d.socket);
      cleanup.add('client', () => cc.close());
      return cc;
    };
    const c = d.client;
    const sleepy = join(__dirname, '..', '..', 'scripts', 'fixtures', 'sleepy');
    // `held`: one instance sleeps, so everything else stays queued: the accept path alone.
    await d.deploy('held', sleepy, 'python', 'sleepy.hold', { concurrency: 1, timeoutMs: 60_000 });
    await d.deploy('noop', sleepy, 'python', 'sleepy.noop', { concurrency: 8 });

    const rate = async (
      label: string,
      parallel: number,
      count: number,
      one: (c: ControlClient, i: number) => Promise<number>,
    ): Promise<{ label: string; eventsPerS: number; events: number; parallel: number }> => {
      const cs = Array.from({ length: parallel }, () => client());
      let next = 0;
      let events = 0;
      const t0 = performance.now();
      await Promise.all(
        cs.map(async (cc) => {
          for (;;) {
            const i = next++;
            if (i >= count) return;
            const n = await one(cc, i);
            events += n;
          }
        }),
      );
      const s = (performance.now() - t0) / 1000;
      return { label, eventsPerS: events / s, events, parallel };
    };
    const single = (cc: ControlClient, i: number) => cc.call('POST', '/v1/functions/held/events', { i }).then(() => 1);
    const batch = (size: number) => (cc: ControlClient, i: number) =>
      cc
        .call(
          'POST',
          '/v1/functions/held/events/batch',
          Array.from({ length: size }, (_, k) => ({ i, k })),
        )
        .then(() => size);
    const accept = [
      await rate('single, 1 request in flight', 1, Math.min(2000, total / 10), single),
      await rate('single, 32 requests in flight', 32, Math.min(10_000, total / 2), single),
      await rate('batches of 100, 4 in flight', 4, total / 100, batch(100)),
      await rate('batches of 1000, 4 in flight', 4, total / 1000, batch(1000)),
    ];
    await c.call('DELETE', '/v1/functions/held'); // its queued events go with it

    // Queue-to-start with a warm idle instance: one event at a time, after the instance is idle.
    await c.call('POST', '/v1/functions/noop/invoke', {});
    const e2e: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      const { id } = await c.call<{ id: string }>('POST', '/v1/functions/noop/events', { i });
      for (;;) {
        const e = await c.call<{ status: string }>('GET', `/v1/events/${id}`);
        if (e.status === 'succeeded') break;
        await sleep(0.2);
      }
      e2e.push(performance.now() - t0);
      await sleep(5);
    }
    const q = await c.call<{ queueToStartMs: { count: number; p50: number | null; p99: number | null } }>('GET', '/v1/queue');

    // Drain: N events queued at once, run by up to 8 instances of a no-op handler.
    const drainN = Math.min(5000, total);
    const t0 = performance.now();
    for (let b = 0; b < drainN / 500; b++)
      await c.call(
        'POST',
        '/v1/functions/noop/events/batch',
        Array.from({ length: 500 }, (_, k) => ({ b, k })),
      );
    for (;;) {
      const s = await c.call<{ functions: Record<string, { succeeded: number }> }>('GET', '/v1/queue');
      if ((s.functions['noop']?.succeeded ?? 0) >= drainN + 300) break;
      await sleep(20);
    }
    const drainPerS = drainN / ((performance.now() - t0) / 1000);

    const out = {
      command: `node dist/scripts/bench-events.js --events ${total}`,
      date: new Date().toISOString(),
      accept,
      queueToStartMs: { serverSide: q.queueToStartMs, submitToSucceededClientSide: summarize(e2e) },
      drain: { events: drainN, concurrency: 8, eventsPerS: drainPerS },
    };
    console.log(JSON.stringify(out, null, 2));
    if (json) writeFileSync(json, JSON.stringify(out, null, 2));
  });
}

main().catch((err: Error) => {
  console.error(`bench-events: ${err.message}`);
  process.exitCode = 1;
});
