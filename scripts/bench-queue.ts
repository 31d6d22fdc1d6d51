/**
 * Queue throughput straight on the SQLite queue (no HTTP): durable accept rate one event per
 * submit (awaited one by one, and with many submits in flight so group commit merges them),
 * accept rate in batches, and drain rate (lease + complete).
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-queue.js [--runs 5] [--events 20000] [--sync full|normal] [--dir /var/tmp]
 *
 * Prints the median of the runs for each measure, as events/s. The database lives in a fresh
 * temporary directory (on --dir's file system, default the OS temp dir) per run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteQueue } from '../src/queue/sqlite-queue.js';
import { percentile } from '../src/stats/percentile.js';
import { COUNT, numberArg, scriptArgs, UsageError, VALUE } from './cli-args.js';

const USAGE = 'usage: node dist/scripts/bench-queue.js [--runs N] [--events N] [--sync full|normal] [--dir DIR]';
const OPTIONS = { runs: VALUE, events: VALUE, sync: VALUE, dir: VALUE };
const { RUNS, EVENTS, SYNC, BASE } = scriptArgs('bench-queue', USAGE, OPTIONS, ({ values: v }) => {
  if (v.sync !== undefined && v.sync !== 'full' && v.sync !== 'normal') throw new UsageError(`--sync must be full or normal, got ${v.sync}`);
  const sync: 'full' | 'normal' = v.sync ?? 'full';
  return { RUNS: numberArg(v.runs, '--runs', 5, COUNT), EVENTS: numberArg(v.events, '--events', 20000, COUNT), SYNC: sync, BASE: v.dir ?? tmpdir() };
});
const PAYLOAD = JSON.stringify({ order: 12345, customer: 'c-000042', items: [{ sku: 'abc', qty: 2 }], note: 'x'.repeat(40) });

const median = (xs: number[]): number => percentile(xs, 0.5);

async function withQueue<T>(fn: (q: SqliteQueue) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(BASE, 'hearth-bench-queue-'));
  const q = SqliteQueue.open({ stateDir: dir, synchronous: SYNC, maintenanceIntervalMs: 0, maxQueued: 10_000_000 });
  try {
    return await fn(q);
  } finally {
    await q.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rate(n: number, work: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await work();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return n / s;
}

async function singleSequential(q: SqliteQueue, n: number): Promise<number> {
  return rate(n, async () => {
    for (let i = 0; i < n; i++) await q.submit('bench', PAYLOAD);
  });
}

async function singleConcurrent(q: SqliteQueue, n: number, inFlight: number): Promise<number> {
  return rate(n, async () => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        next++;
        await q.submit('bench', PAYLOAD);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  });
}

async function batched(q: SqliteQueue, n: number, size: number): Promise<number> {
  const batch = Array.from({ length: size }, () => PAYLOAD);
  return rate(n, async () => {
    for (let i = 0; i < n; i += size) await q.submitBatch('bench', batch);
  });
}

async function drain(q: SqliteQueue, n: number, per: number): Promise<number> {
  const batch = Array.from({ length: 1000 }, () => PAYLOAD);
  for (let i = 0; i < n; i += 1000) await q.submitBatch(`bench-${(i / 1000) % 4}`, batch);
  return rate(n, async () => {
    let done = 0;
    while (done < n) {
      const evs = await q.lease({ perFunction: per, limit: 4 * per });
      if (evs.length === 0) throw new Error('queue ran dry early');
      await Promise.all(evs.map((e) => q.complete(e.id, '{"ok":true}', { attempt: e.attempts })));
      done += evs.length;
    }
  });
}

async function main(): Promise<void> {
  const measures: Array<[string, (q: SqliteQueue) => Promise<number>]> = [
    ['accept, single submit awaited one by one', (q) => singleSequential(q, Math.min(EVENTS, 2000))],
    ['accept, single submits, 64 in flight (group commit)', (q) => singleConcurrent(q, EVENTS, 64)],
    ['accept, single submits, 256 in flight (group commit)', (q) => singleConcurrent(q, EVENTS, 256)],
    ['accept, batches of 100', (q) => batched(q, EVENTS, 100)],
    ['accept, batches of 1000', (q) => batched(q, EVENTS, 1000)],
    ['drain, lease 100/function x4 + complete', (q) => drain(q, EVENTS, 100)],
    ['drain, lease 1 x4 functions + complete', (q) => drain(q, Math.min(EVENTS, 4000), 1)],
  ];
  console.log(`bench-queue: synchronous=${SYNC}, ${RUNS} runs, ${EVENTS} events, payload ${PAYLOAD.length} B, dir ${BASE}`);
  for (const [name, m] of measures) {
    const rs: number[] = [];
    for (let r = 0; r < RUNS; r++) rs.push(await withQueue(m));
    console.log(`${name.padEnd(56)} median ${Math.round(median(rs)).toString().padStart(8)} events/s   (runs: ${rs.map((x) => Math.round(x)).join(', ')})`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
