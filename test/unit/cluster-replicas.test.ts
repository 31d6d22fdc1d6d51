/**
 * `natsReplicas`: counts JetStream cannot use are refused in the config (with the reason), a count
 * the connected broker can never hold is a CONFIG error at start, and JetStream's own placement
 * refusals are explained in Hearth's terms.
 */
import test from 'ava';
import type { NatsConnection } from '@nats-io/nats-core';
import { replicasFault, replicasHint } from '../../src/cluster/buckets.js';
import { loadConfig } from '../../src/config.js';

for (const n of [0, 2, 4, 6, 7]) {
  test(`natsReplicas ${n} is refused in the config, saying why`, (t) => {
    const e = t.throws(() => loadConfig({ overrides: { natsReplicas: n, stateDir: '/tmp/hearth-replicas-unit' } }));
    t.regex(e?.message ?? '', /natsReplicas/);
    t.regex(e?.message ?? '', /1, 3 or 5/);
  });
}

for (const n of [1, 3, 5]) {
  test(`natsReplicas ${n} is accepted`, (t) => {
    t.is(loadConfig({ overrides: { natsReplicas: n, stateDir: '/tmp/hearth-replicas-unit' } }).natsReplicas, n as never);
  });
}

const broker = (cluster?: string) => ({ info: cluster ? { cluster } : {}, getServer: () => '127.0.0.1:4222' }) as unknown as NatsConnection;

test('more than one replica on a broker outside a cluster is a CONFIG error naming the fix; a clustered broker passes', (t) => {
  const e = replicasFault(broker(), 3);
  t.is(e?.code, 'CONFIG');
  t.regex(e?.message ?? '', /natsReplicas 3 .* not in a cluster: set natsReplicas to 1/);
  t.is(replicasFault(broker(), 1), undefined);
  t.is(replicasFault(broker('c'), 3), undefined);
  t.is(replicasFault(broker('c'), 5), undefined, 'too few brokers in a cluster shows when a bucket is placed');
});

test("JetStream's replica refusals are explained; other errors are not", (t) => {
  t.regex(replicasHint(new Error('no suitable peers for placement'), 5) ?? '', /natsReplicas 5: JetStream found fewer than 5 brokers/);
  t.regex(replicasHint(new Error('insufficient resources'), 3) ?? '', /fewer than 3 brokers/);
  t.regex(replicasHint(new Error('replicas > 1 not supported in non-clustered mode'), 3) ?? '', /not in a cluster, so only 1 replica/);
  t.is(replicasHint(new Error('timeout'), 3), undefined);
});
