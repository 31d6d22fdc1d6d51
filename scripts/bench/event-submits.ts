/**
 * Async event submits through the control API, shared by the cluster benchmarks
 * (bench-cluster.ts, bench-cluster-events.ts): the function is `ev`.
 */
import { loadavg } from 'node:os';
import type { ControlClient } from '../../src/control/client.js';
import { msSince } from './stats.js';

/** The 1, 5 and 15 minute load averages, for the tables. */
export const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** Events per second the APIs accept: `total` single submits, `inflight` at a time, round-robin over the clients. */
export async function acceptSingles(clients: ControlClient[], total: number, inflight: number): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < total) {
        const i = next++;
        await clients[i % clients.length].call('POST', '/v1/functions/ev/events', { i });
      }
    }),
  );
  return total / (msSince(t0) / 1000);
}

/** The same with `batches` batches of 100, 4 in flight. */
export async function acceptBatches(clients: ControlClient[], batches: number): Promise<number> {
  let next = 0;
  const body = Array.from({ length: 100 }, (_, i) => ({ i }));
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < batches) {
        const i = next++;
        await clients[i % clients.length].call('POST', '/v1/functions/ev/events/batch', body);
      }
    }),
  );
  return (batches * 100) / (msSince(t0) / 1000);
}
