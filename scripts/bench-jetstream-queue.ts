/**
 * The cluster event queue against the embedded one, in the same run: accepted async events per
 * second (one submit awaited at a time, 64 in flight, batches of 100) and end-to-end latency
 * (submit → leased → completed, one event at a time, a consumer woken by onAvailable) for
 * SqliteQueue (synchronous=full), JetStreamQueue on one broker (R1) and on three (R3). Starts its
 * own nats-server processes on loopback ports in a temp dir (the test harness) and removes them.
 *
 *   npx tsc -p tsconfig.json && flock /tmp/hearth-bench.lock node dist/scripts/bench-jetstream-queue.js [--runs 3] [--events 2000] [--latency 300]
 *
 * Throughput: median of the runs (events/s); latency: p50 / p99 over all runs' samples (ms).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamQueue } from '../src/cluster/jetstream-queue.js';
import type { EventQueue } from '../src/queue/event-queue.js';
import { SqliteQueue } from '../src/queue/sqlite-queue.js';
import { percentile } from '../src/stats/percentile.js';
import { startNatsCluster, type NatsCluster } from '../test/integration/nats-cluster.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

const USAGE = 'usage: node dist/scripts/bench-jetstream-queue.js [--runs N] [--events N] [--latency N]';
const { RUNS, EVENTS, LATENCY } = scriptArgs('bench-jetstream-queue', USAGE, { runs: VALUE, events: VALUE, latency: VALUE }, ({ values: v }) => ({
  RUNS: numberArg(v.runs, '--runs', 3, COUNT),
  EVENTS: numberArg(v.events, '--events', 2000, COUNT),
  LATENCY: numberArg(v.latency, '--latency', 300, COUNT),
}));
const PAYLOAD = JSON.stringify({ order: 12345, customer: 'c-000042', items: [{ sku: 'abc', qty: 2 }], note: 'x'.repeat(40) });

interface Backend {
  name: string;
  open(): Promise<{ q: EventQueue; close(this: void): Promise<void> }>;
}

async function rate(n: number, work: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await work();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const sequential = (q: EventQueue, n: number): Promise<number> =>
  rate(n, async () => {
    for (let i = 0; i < n; i++) await q.submit('bench', PAYLOAD);
  });

const concurrent = (q: EventQueue, n: number, inFlight: number): Promise<number> =>
  rate(n, async () => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        next++;
        await q.submit('bench', PAYLOAD);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  });

const batched = (q: EventQueue, n: number, size: number): Promise<number> =>
  rate(n, async () => {
    const batch = Array.from({ length: size }, () => PAYLOAD);
    for (let i = 0; i < n; i += size) await q.submitBatch('bench', batch);
  });

/** One event at a time: ms from submit to leased, and to completed, with a consumer woken by onAvailable. */
async function latency(q: EventQueue, n: number): Promise<{ leased: number[]; done: number[] }> {
  const out = { leased: [] as number[], done: [] as number[] };
  const started = new Map<string, bigint>();
  const finished = new Map<string, () => void>();
  const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
  let busy = false;
  const consume = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        const evs = await q.lease({ functions: ['lat'], perFunction: 10 });
        if (evs.length === 0) return;
        for (const e of evs) {
          const t0 = started.get(e.id);
          if (t0 !== undefined) out.leased.push(ms(t0));
          await q.complete(e.id, '{"ok":true}', { attempt: e.attempts });
          if (t0 !== undefined) out.done.push(ms(t0));
          finished.get(e.id)?.();
        }
      }
    } finally {
      busy = false;
    }
  };
  const off = q.onAvailable((fn) => void (fn === 'lat' && consume()));
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const { id } = await q.submit('lat', PAYLOAD);
    started.set(id, t0);
    finished.set(id, resolve);
    void consume();
    await done;
  }
  off();
  return out;
}

function jetstreamBackend(name: string, cluster: NatsCluster, replicas: number): Backend {
  let n = 0;
  return {
    name,
    async open() {
      const nc: NatsConnection = await connect({ servers: cluster.urls });
      const q = new JetStreamQueue(nc, { hostId: 'bench', bucket: `bench-${process.pid}-${++n}`, replicas, maintenanceIntervalMs: 0, maxQueued: 10_000_000 });
      await q.start();
      return {
        q,
        close: async () => {
          await q.destroy();
          await nc.close();
        },
      };
    },
  };
}

const sqliteBackend: Backend = {
  name: 'SqliteQueue (full fsync)',
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-jsq-'));
    const q = SqliteQueue.open({ stateDir: dir, maintenanceIntervalMs: 0, maxQueued: 10_000_000 });
    return {
      q,
      close: async () => {
        await q.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

async function main(): Promise<void> {
  const clusters: NatsCluster[] = [];
  try {
    const one = await startNatsCluster({ nodes: 1 });
    clusters.push(one);
    const three = await startNatsCluster({ nodes: 3 });
    clusters.push(three);
    const backends = [sqliteBackend, jetstreamBackend('JetStreamQueue R1 (1 broker)', one, 1), jetstreamBackend('JetStreamQueue R3 (3 brokers)', three, 3)];
    const measures: Array<[string, (q: EventQueue) => Promise<number>]> = [
      ['accept, one submit awaited at a time', (q) => sequential(q, Math.min(EVENTS, 1000))],
      ['accept, single submits, 64 in flight', (q) => concurrent(q, EVENTS, 64)],
      ['accept, batches of 100', (q) => batched(q, EVENTS, 100)],
    ];
    console.log(`bench-jetstream-queue: ${RUNS} runs, ${EVENTS} events, ${LATENCY} latency samples per run, payload ${PAYLOAD.length} B`);
    for (const b of backends) {
      console.log(`\n${b.name}`);
      for (const [name, m] of measures) {
        const rs: number[] = [];
        for (let r = 0; r < RUNS; r++) {
          const { q, close } = await b.open();
          try {
            rs.push(await m(q));
          } finally {
            await close();
          }
        }
        console.log(
          `  ${name.padEnd(40)} median ${Math.round(percentile(rs, 0.5)).toString().padStart(7)} events/s   (runs: ${rs.map(Math.round).join(', ')})`,
        );
      }
      const leased: number[] = [];
      const done: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const { q, close } = await b.open();
        try {
          const l = await latency(q, LATENCY);
          leased.push(...l.leased);
          done.push(...l.done);
        } finally {
          await close();
        }
      }
      const f = (xs: number[]): string => `p50 ${percentile(xs, 0.5).toFixed(2)} ms, p99 ${percentile(xs, 0.99).toFixed(2)} ms`;
      console.log(`  ${'latency submit -> leased'.padEnd(40)} ${f(leased)}   (${leased.length} samples)`);
      console.log(`  ${'latency submit -> completed'.padEnd(40)} ${f(done)}`);
    }
  } finally {
    for (const c of clusters) await c.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
