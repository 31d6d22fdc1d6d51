/**
 * The JetStream stores against a real nats-server: JetStreamRegistry and ObjectCodeStore pass the
 * same conformance suites as the embedded stores, and what only a cluster has: changes made through
 * another connection (another host) are seen, racing writers get CONFLICT, history is kept, an
 * entry that does not parse and an object whose hash does not match are refused while the rest
 * keeps serving, an existing bucket with other settings is refused clearly.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import pino from 'pino';
import { Writable } from 'node:stream';
import { ClusterConnection } from '../../src/cluster/connection.js';
import { JetStreamNetworkDefinitions } from '../../src/cluster/jetstream-networks.js';
import { JetStreamRegistry } from '../../src/cluster/jetstream-registry.js';
import { ObjectCodeStore } from '../../src/cluster/object-code-store.js';
import { HearthError } from '../../src/errors.js';
import { sha256Hex } from '../../src/registry/code-store.js';
import type { FunctionRecord } from '../../src/registry/function-spec.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { makeTarGz } from '../conformance/archives.js';
import { codeStoreConformance } from '../conformance/code-store.js';
import { def, functionRegistryConformance, sha } from '../conformance/function-registry.js';
import { Heard, netDef, networkDefinitionsConformance } from '../conformance/network-definitions.js';
import { natsServerPath, startNatsCluster, type NatsCluster } from './nats-cluster.js';

const bin = natsServerPath();
if (!bin) test('JetStream store tests need nats-server (apt-get install nats-server)', (t) => t.pass());

let cluster: Promise<NatsCluster> | undefined;
const broker = (): Promise<NatsCluster> => (cluster ??= startNatsCluster({ nodes: 1 }));
test.after.always(async () => {
  if (cluster) await (await cluster).stop();
});

const uid = (): string => randomBytes(4).toString('hex');

async function connection(log: Logger = silentLogger()): Promise<ClusterConnection> {
  const c = await broker();
  const conn = new ClusterConnection({ servers: c.urls, hostId: `h-${uid()}`, log });
  await conn.start();
  if (!conn.connected) throw new Error('no connection to the test broker');
  return conn;
}

/** A logger whose lines a test can read. */
function recordingLogger(): { log: Logger; lines: () => { msg: string; level: number }[] } {
  const lines: { msg: string; level: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { msg: string; level: number });
      cb();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines: () => lines };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

if (bin) {
  functionRegistryConformance('JetStreamRegistry', async (clock) => {
    const conn = await connection();
    const bucket = `fn-${uid()}`;
    const registry = new JetStreamRegistry({ connection: conn, log: silentLogger(), clock, bucket });
    return {
      registry,
      cleanup: async () => {
        await registry.stop();
        await (await new Kvm(conn.connection!).open(bucket)).destroy().catch(() => undefined);
        await conn.stop();
      },
    };
  });

  networkDefinitionsConformance('JetStreamNetworkDefinitions', async () => {
    const bucket = `net-${uid()}`;
    const made: { nets: JetStreamNetworkDefinitions; conn: ClusterConnection }[] = [];
    const host = (conn: ClusterConnection) => {
      const nets = new JetStreamNetworkDefinitions({ connection: conn, log: silentLogger(), bucket });
      made.push({ nets, conn });
      return nets;
    };
    const [ca, cb] = await Promise.all([connection(), connection()]);
    return {
      a: host(ca),
      b: host(cb),
      host: async () => host(await connection()),
      cleanup: async () => {
        for (const m of made) await m.nets.stop();
        await (await new Kvm(ca.connection!).open(bucket)).destroy().catch(() => undefined);
        for (const m of made) await m.conn.stop();
      },
    };
  });

  codeStoreConformance('ObjectCodeStore', async (limits) => {
    const conn = await connection();
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-obj-'));
    const bucket = `code-${uid()}`;
    const store = new ObjectCodeStore({
      connection: conn,
      cacheDir: dir,
      log: silentLogger(),
      bucket,
      fsync: false,
      gcGraceMs: 0,
      ...(limits ? { limits } : {}),
    });
    await store.start();
    return {
      store,
      cleanup: async () => {
        await store.stop();
        await (await new Objm(conn.connection!).open(bucket)).destroy().catch(() => undefined);
        await conn.stop();
        await fsp.rm(dir, { recursive: true, force: true });
      },
    };
  });
}

const it = bin ? test.serial : test.skip;

/** Two "hosts": two connections, two registries on one bucket. */
async function twoRegistries(t: { teardown(fn: () => Promise<void>): void }, opts: { logB?: Logger; prepareB?: (r: FunctionRecord) => Promise<void> } = {}) {
  const bucket = `fn-${uid()}`;
  const ca = await connection();
  const cb = await connection();
  const a = new JetStreamRegistry({ connection: ca, log: silentLogger(), bucket });
  const b = new JetStreamRegistry({ connection: cb, log: opts.logB ?? silentLogger(), bucket, ...(opts.prepareB ? { prepare: opts.prepareB } : {}) });
  t.teardown(async () => {
    await a.stop();
    await b.stop();
    await (await new Kvm(ca.connection!).open(bucket)).destroy().catch(() => undefined);
    await ca.stop();
    await cb.stop();
  });
  await a.start();
  await b.start();
  return { a, b, bucket, ca, cb };
}

it('a change on one host is seen and announced on the other; deletes too', async (t) => {
  const { a, b } = await twoRegistries(t);
  const heard: [string, string | undefined][] = [];
  b.onChange((name, r) => heard.push([name, r?.codeSha256]));
  await a.put('fn', def());
  const got = await waitFor('b sees fn', () => b.get('fn'));
  t.is(got.codeSha256, sha('a'));
  // b can update what a created (it has seen its revision).
  await b.put('fn', def({ codeSha256: sha('b') }));
  await waitFor('a sees the update', async () => (await a.get('fn'))?.codeSha256 === sha('b'));
  await a.delete('fn');
  await waitFor('b sees the delete', async () => (await b.get('fn')) === undefined);
  t.deepEqual(heard, [
    ['fn', sha('a')],
    ['fn', sha('b')],
    ['fn', undefined],
  ]);
});

it('racing deploys of one function on two hosts: one wins, the other gets CONFLICT and changes nothing', async (t) => {
  const { a, b } = await twoRegistries(t);
  await a.put('fn', def());
  await waitFor('b sees fn', () => b.get('fn'));
  const results = await Promise.allSettled([a.put('fn', def({ codeSize: 1 })), b.put('fn', def({ codeSize: 2 }))]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.is(won.length, 1);
  t.is(lost.length, 1);
  t.is((lost[0].reason as HearthError).code, 'CONFLICT');
  const winner = (won[0] as PromiseFulfilledResult<{ record: FunctionRecord }>).value.record.codeSize;
  await waitFor('both agree', async () => (await a.get('fn'))?.codeSize === winner && (await b.get('fn'))?.codeSize === winner);
  // Racing creates too.
  const creates = await Promise.allSettled([a.put('new', def()), b.put('new', def())]);
  t.is(creates.filter((r) => r.status === 'rejected' && (r.reason as HearthError).code === 'CONFLICT').length, 1);
});

it('history keeps earlier revisions', async (t) => {
  const { a } = await twoRegistries(t);
  await a.put('fn', def({ codeSize: 1 }));
  await a.put('fn', def({ codeSize: 2 }));
  await a.delete('fn');
  const h = await a.history('fn');
  t.deepEqual(
    h.map((e) => [e.operation, e.record?.codeSize]),
    [
      ['PUT', 1],
      ['PUT', 2],
      ['DEL', undefined],
    ],
  );
});

it('an entry that does not parse is refused with a log line; the rest keeps serving', async (t) => {
  const rec = recordingLogger();
  const { a, b, ca } = await twoRegistries(t, { logB: rec.log });
  await a.put('good', def());
  await waitFor('b sees good', () => b.get('good'));
  const kv = await new Kvm(ca.connection!).open(a.bucket);
  await kv.put('good', '{"name": "good", "runtime": 7');
  await kv.put('other', JSON.stringify({ name: 'other' }));
  await kv.put('third', '{}');
  await a.put('later', def());
  await waitFor('b sees later', () => b.get('later'));
  t.is((await b.get('good'))?.codeSha256, sha('a'), 'the previous definition stays');
  t.is(await b.get('other'), undefined);
  const refused = rec.lines().filter((l) => l.msg.startsWith('refusing function record'));
  t.is(refused.length, 3);
  t.regex(refused[0].msg, /"good".*not JSON.*previous definition stays/);
  t.regex(refused[1].msg, /"other".*runtime/);
});

it('a second registry starting later loads every function; one refused entry does not stop the load', async (t) => {
  const { a, ca } = await twoRegistries(t);
  await a.put('x', def());
  await a.put('y', def());
  await (await new Kvm(ca.connection!).open(a.bucket)).put('z', 'garbage');
  const conn = await connection();
  const c = new JetStreamRegistry({ connection: conn, log: silentLogger(), bucket: a.bucket });
  t.teardown(async () => {
    await c.stop();
    await conn.stop();
  });
  await c.start();
  t.deepEqual(
    (await c.list()).map((r) => r.name),
    ['x', 'y'],
  );
});

it('a bucket with other settings is refused with a clear error', async (t) => {
  const conn = await connection();
  const bucket = `fn-${uid()}`;
  t.teardown(async () => {
    await (await new Kvm(conn.connection!).open(bucket)).destroy().catch(() => undefined);
    await conn.stop();
  });
  await new Kvm(conn.connection!).create(bucket, { history: 1 });
  const r = new JetStreamRegistry({ connection: conn, log: silentLogger(), bucket });
  const err = await t.throwsAsync(r.start(), { instanceOf: HearthError });
  t.is(err.code, 'CONFIG');
  t.regex(err.message, new RegExp(`bucket ${bucket} exists with other settings: history 1 \\(hearth needs 16\\)`));
  await r.stop();
});

it('a bundle stored on one host is fetched on the other, and an object whose hash does not match is refused', async (t) => {
  const rec = recordingLogger();
  const bucket = `code-${uid()}`;
  const ca = await connection();
  const cb = await connection();
  const dirA = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-obj-a-'));
  const dirB = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-obj-b-'));
  const a = new ObjectCodeStore({ connection: ca, cacheDir: dirA, log: silentLogger(), bucket, fsync: false });
  const b = new ObjectCodeStore({ connection: cb, cacheDir: dirB, log: rec.log, bucket, fsync: false });
  t.teardown(async () => {
    await a.stop();
    await b.stop();
    await (await new Objm(ca.connection!).open(bucket)).destroy().catch(() => undefined);
    await ca.stop();
    await cb.stop();
    await fsp.rm(dirA, { recursive: true, force: true });
    await fsp.rm(dirB, { recursive: true, force: true });
  });
  await a.start();
  await b.start();
  const archive = await makeTarGz([{ name: 'index.js', data: 'exports.handler = async () => 1' }]);
  const put = await a.put(archive);
  t.false(put.reused);
  t.true(await b.has(put.sha256));
  t.deepEqual(await b.cached(), []);
  await b.fetch(put.sha256);
  t.is(await fsp.readFile(path.join(b.path(put.sha256), 'index.js'), 'utf8'), 'exports.handler = async () => 1');
  t.true((await b.put(archive)).reused, 'the cluster already had it');

  // Someone writes other bytes under a bundle's name.
  const fake = sha256Hex(Buffer.from('the name of bytes that are not these'));
  await (await new Objm(ca.connection!).open(bucket)).putBlob({ name: fake }, await makeTarGz([{ name: 'index.js', data: 'evil' }]));
  const err = await t.throwsAsync(b.fetch(fake), { instanceOf: HearthError });
  t.regex(err.message, /does not match its hash/);
  t.false((await b.cached()).includes(fake), 'nothing cached');
  t.true(rec.lines().some((l) => l.msg.startsWith(`refusing code object ${fake}`)));
  // The good bundle still serves.
  t.true(await b.hasHandlerFile(put.sha256, 'index.handler', 'node'));
  // gc on b drops its local copy of what is not live; the young object stays in the bucket.
  t.deepEqual(await b.gc([]), [put.sha256]);
  t.deepEqual(await b.cached(), []);
  t.true(await a.has(put.sha256));
});

it('a host whose registry cannot fetch code refuses that function and serves the others', async (t) => {
  const rec = recordingLogger();
  const { a, b } = await twoRegistries(t, {
    logB: rec.log,
    prepareB: async (r) => {
      if (r.codeSha256 === sha('f')) throw new Error('code bundle is not in the store');
    },
  });
  await a.put('bad', def({ codeSha256: sha('f') }));
  await a.put('good', def());
  await waitFor('b sees good', () => b.get('good'));
  t.is(await b.get('bad'), undefined);
  t.deepEqual(b.refusedCode(), [sha('f')], 'its bundle is kept in the bucket: other hosts may serve it');
  t.true(rec.lines().some((l) => /refusing function "bad" \(revision \d+\): code bundle is not in the store/.test(l.msg)));
});

it('gc removes from the bucket only what it may: nothing before the registry is loaded, never what it is told to keep', async (t) => {
  const conn = await connection();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-obj-'));
  const bucket = `code-${uid()}`;
  let keeps: string[] | undefined = undefined;
  const store = new ObjectCodeStore({ connection: conn, cacheDir: dir, log: silentLogger(), bucket, fsync: false, gcGraceMs: 0, bucketKeeps: () => keeps });
  t.teardown(async () => {
    await store.stop();
    await (await new Objm(conn.connection!).open(bucket)).destroy().catch(() => undefined);
    await conn.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  await store.start();
  const x = await store.put(await makeTarGz([{ name: 'x.js', data: 'x' }]));
  const y = await store.put(await makeTarGz([{ name: 'y.js', data: 'y' }]));
  t.deepEqual(await store.gc([]), [x.sha256, y.sha256].sort(), 'the local copies go');
  t.deepEqual(await store.list(), [x.sha256, y.sha256].sort(), 'the bucket is not touched while the registry is not loaded');
  keeps = [x.sha256];
  t.deepEqual(await store.gc([]), [y.sha256]);
  t.deepEqual(await store.list(), [x.sha256]);
});

it('network definitions: a bad entry from the broker is refused with a log line, the previous one stays; writes before the broker answers are UNAVAILABLE', async (t) => {
  const bucket = `net-${uid()}`;
  const [ca, cb] = await Promise.all([connection(), connection()]);
  const rec = recordingLogger();
  const a = new JetStreamNetworkDefinitions({ connection: ca, log: silentLogger(), bucket });
  const b = new JetStreamNetworkDefinitions({ connection: cb, log: rec.log, bucket });
  const heard = new Heard();
  b.follow(heard);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
    await (await new Kvm(ca.connection!).open(bucket)).destroy().catch(() => undefined);
    await ca.stop();
    await cb.stop();
  });
  await a.start();
  await b.start();
  await a.create(netDef('vpc'));
  await waitFor('b hears vpc', () => heard.last('vpc') ?? undefined);
  const kv = await new Kvm(ca.connection!).open(bucket);
  await kv.put('vpc', 'not json');
  await kv.put('vpc', JSON.stringify({ ...netDef('vpc'), spec: { ...netDef('vpc').spec, address: '10.77.0.0/24' } }));
  await kv.put('other', JSON.stringify(netDef('vpc')));
  await a.create(netDef('later', '10.77.0.9/24'));
  await waitFor('b hears later', () => heard.last('later') ?? undefined);
  t.is(b.list().find((d) => d.name === 'vpc')?.spec.address, '10.77.0.2/24', 'the previous definition stays');
  t.false(b.list().some((d) => d.name === 'other'));
  const refused = rec.lines().filter((l) => l.msg.startsWith('refusing network definition'));
  t.is(refused.length, 3, JSON.stringify(refused));
  t.regex(refused[0].msg, /"vpc".*not JSON.*previous definition stays/);
  t.regex(refused[1].msg, /"vpc".*network or broadcast/);
  t.regex(refused[2].msg, /"other".*names network "vpc"/);

  // A host whose broker never answered: writes are UNAVAILABLE and nothing is listed.
  const away = new ClusterConnection({ servers: ['nats://127.0.0.1:1'], hostId: `h-${uid()}`, log: silentLogger(), firstWaitMs: 50 });
  t.teardown(() => away.stop());
  await away.start();
  const c = new JetStreamNetworkDefinitions({ connection: away, log: silentLogger(), bucket });
  await c.start();
  t.false(c.attached);
  const err = await t.throwsAsync(c.create(netDef('x')));
  t.is((err as HearthError).code, 'UNAVAILABLE');
  t.deepEqual(c.list(), []);
  await c.stop();
});
