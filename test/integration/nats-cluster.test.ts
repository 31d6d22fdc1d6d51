/**
 * The test broker harness itself: three real nats-server processes form a JetStream cluster that
 * keeps an R3 stream through the loss of one node, and the node catches up when it comes back.
 */
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { natsServerPath, startNatsCluster } from './nats-cluster.js';

const bin = natsServerPath();

(bin ? test : test.skip)('a 3-node cluster keeps an R3 stream when one node is killed and restarted', async (t) => {
  const cluster = await startNatsCluster({ nodes: 3 });
  t.teardown(() => cluster.stop());
  const nc = await connect({ servers: cluster.urls, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'T', subjects: ['t.>'], num_replicas: 3 });
  const js = jetstream(nc);
  for (let i = 0; i < 50; i++) await js.publish('t.a', `m${i}`);
  await cluster.kill(2);
  // While the stream elects a new leader a publish may time out or find no responder: retried with
  // the same message id, JetStream stores it once.
  for (let i = 50; i < 100; i++) {
    for (let attempt = 0; ; attempt++) {
      try {
        await js.publish('t.a', `m${i}`, { msgID: `m${i}`, timeout: 2000 });
        break;
      } catch (err) {
        if (attempt > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  t.is((await jsm.streams.info('T')).state.messages, 100);
  await cluster.restart(2);
  t.is(cluster.nodes[2].process?.exitCode, null);
  t.is((await jsm.streams.info('T')).state.messages, 100);
});
