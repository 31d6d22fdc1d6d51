/**
 * A consumer host for the fault tests: one JetStreamQueue in its own process, leasing events of
 * every function and completing each with its host id as the result. Prints `ready` once
 * started; answers the line `stats` on stdin with the queue's total counts as JSON.
 * Usage: node queue-worker.js URLS BUCKET HOST_ID LEASE_MS
 */
import { createInterface } from 'node:readline';
import { connect } from '@nats-io/transport-node';
import { JetStreamQueue } from '../../src/cluster/jetstream-queue.js';

async function main(): Promise<void> {
  const [urls, bucket, hostId, leaseMs] = process.argv.slice(2);
  const nc = await connect({ servers: urls.split(','), reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  const q = new JetStreamQueue(nc, { hostId, bucket, maintenanceIntervalMs: 250 });
  await q.start();
  let wake: () => void = () => undefined;
  q.onAvailable(() => wake());
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'stats') void q.stats().then((s) => process.stdout.write(`stats ${JSON.stringify(s.total)}\n`));
  });
  process.stdout.write('ready\n');
  for (;;) {
    const events = await q.lease({ perFunction: 5, leaseMs: Number(leaseMs) }).catch(() => []);
    await Promise.all(
      events.map(async (e) => {
        await new Promise((r) => setTimeout(r, 10));
        await q.complete(e.id, JSON.stringify(hostId), { attempt: e.attempts }).catch(() => undefined);
      }),
    );
    if (events.length === 0) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  }
}

void main();
