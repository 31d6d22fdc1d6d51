/**
 * The EventQueue conformance suite (test/conformance/event-queue.ts) against JetStreamQueue on a
 * real nats-server: one broker for this file, one fresh KV bucket per test, destroyed after it.
 */
import test from 'ava';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamQueue } from '../../src/cluster/jetstream-queue.js';
import { eventQueueConformance } from '../conformance/event-queue.js';
import { natsServerPath, startNatsCluster, type NatsCluster } from './nats-cluster.js';

let cluster: NatsCluster | undefined;
let nc: NatsConnection | undefined;
let n = 0;

if (natsServerPath()) {
  test.before(async () => {
    cluster = await startNatsCluster({ nodes: 1 });
    nc = await connect({ servers: cluster.urls });
  });
  test.after.always(async () => {
    await nc?.close();
    await cluster?.stop();
  });
  eventQueueConformance({
    name: 'jetstream',
    open(t, clock, settings) {
      const q = new JetStreamQueue(nc!, { hostId: 'h1', bucket: `conf-${process.pid}-${++n}`, clock, maintenanceIntervalMs: 0, ...settings });
      void q.start().catch(() => undefined);
      t.teardown(() => q.destroy());
      return q;
    },
  });
} else {
  test.skip('jetstream: the EventQueue conformance suite needs nats-server (apt-get install nats-server)', () => undefined);
}
