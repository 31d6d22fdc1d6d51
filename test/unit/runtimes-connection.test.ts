import test from 'ava';
import { Duplex } from 'node:stream';
import { InstanceConnection, InstanceError, isInstanceError } from '../../src/runtimes/instance-connection.js';
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';

/** An in-memory socket pair: what one side writes the other reads; end() is EOF for the peer. */
function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  for (const i of [0, 1]) {
    sides.push(
      new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) {
          sides[1 - i].push(chunk);
          cb();
        },
        final(cb) {
          sides[1 - i].push(null);
          cb();
        },
      }),
    );
  }
  return [sides[0], sides[1]];
}

/** A scripted shim: records what the daemon sent and lets the test reply. */
function fakeShim() {
  const [daemonEnd, shimEnd] = duplexPair();
  const received: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  const decoder = new FrameDecoder((m) => {
    received.push(m);
    waiters.splice(0).forEach((w) => w());
  });
  shimEnd.on('data', (c: Buffer) => decoder.push(c));
  const conn = new InstanceConnection(daemonEnd);
  return {
    conn,
    received,
    send: (m: object) => shimEnd.write(encodeFrame(m)),
    raw: (b: Buffer) => shimEnd.write(b),
    exit: () => shimEnd.end(),
    async next(): Promise<Record<string, unknown>> {
      while (received.length === 0) await new Promise<void>((r) => waiters.push(r));
      return received.shift()!;
    },
  };
}

const spec = { name: 'f', handler: 'index.handler', memoryMb: 128, timeoutMs: 1000, env: { A: 'b' } };

test('ready, specialize and invoke round trip', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 42 });
  t.deepEqual(await s.conn.ready(), { runtime: 'node', pid: 42 });
  const sp = s.conn.specialize(spec);
  t.deepEqual(await s.next(), { t: 'specialize', ...spec });
  s.send({ t: 'specialized', initMs: 1.25 });
  t.deepEqual(await sp, { initMs: 1.25 });

  const inv = s.conn.invoke('id-1', { x: [1] }, 5000);
  t.deepEqual(await s.next(), { t: 'invoke', id: 'id-1', event: { x: [1] }, deadline: 5000 });
  s.send({ t: 'result', id: 'id-1', result: { y: 2 }, logs: 'hello\n', durationMs: 0.5 });
  t.deepEqual(await inv, { ok: true, result: { y: 2 }, logs: 'hello\n', durationMs: 0.5 });

  const inv2 = s.conn.invokeJson('id-2', '{"raw":true}', 6000);
  t.deepEqual(await s.next(), { t: 'invoke', id: 'id-2', event: { raw: true }, deadline: 6000 });
  s.send({ t: 'error', id: 'id-2', error: { type: 'TypeError', message: 'm', stack: 's' }, logs: '', durationMs: 1 });
  t.deepEqual(await inv2, { ok: false, error: { type: 'TypeError', message: 'm', stack: 's' }, logs: '', durationMs: 1 });
  s.conn.close();
  t.deepEqual(await s.conn.closed, { reason: 'closed' });
});

test('init_error rejects specialize with INIT_ERROR and keeps the shim error', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'python', pid: 1 });
  const sp = s.conn.specialize(spec);
  await s.next();
  s.send({ t: 'init_error', error: { type: 'InitError', message: 'no module app', stack: 'tb' } });
  const e = await t.throwsAsync(sp, { instanceOf: InstanceError });
  t.is(e?.code, 'INIT_ERROR');
  t.deepEqual(e?.shimError, { type: 'InitError', message: 'no module app', stack: 'tb' });
  t.false(s.conn.isClosed);
  s.conn.close();
});

test('a second request while one is pending is refused with BUSY and not sent', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 1 });
  t.false(s.conn.busy);
  const first = s.conn.invoke('a', 1, 0);
  t.true(s.conn.busy);
  const e = await t.throwsAsync(s.conn.invoke('b', 2, 0), { instanceOf: InstanceError });
  t.is(e?.code, 'BUSY');
  t.is((await s.next()).id, 'a');
  s.send({ t: 'result', id: 'a', result: null, logs: '', durationMs: 0 });
  t.true((await first).ok);
  t.false(s.conn.busy);
  t.is(s.received.length, 0);
  s.conn.close();
});

test('the socket ending while a request is pending rejects it with INSTANCE_EXITED', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 1 });
  await s.conn.ready();
  const inv = s.conn.invoke('a', {}, 0);
  await s.next();
  s.exit();
  const e = await t.throwsAsync(inv);
  t.true(isInstanceError(e, 'INSTANCE_EXITED'));
  t.is((await s.conn.closed).reason, 'exited');
  const later = await t.throwsAsync(s.conn.invoke('b', {}, 0));
  t.true(isInstanceError(later, 'INSTANCE_EXITED'));
});

test('the socket ending before ready rejects ready() with INSTANCE_EXITED', async (t) => {
  const s = fakeShim();
  s.exit();
  const e = await t.throwsAsync(s.conn.ready());
  t.true(isInstanceError(e, 'INSTANCE_EXITED'));
});

test('close() rejects a pending request with CLOSED', async (t) => {
  const s = fakeShim();
  const inv = s.conn.invoke('a', {}, 0);
  s.conn.close();
  const e = await t.throwsAsync(inv);
  t.true(isInstanceError(e, 'CLOSED'));
  t.deepEqual(await s.conn.closed, { reason: 'closed' });
});

const violations: Array<[string, (s: ReturnType<typeof fakeShim>) => void]> = [
  ['a result for another invocation', (s) => s.send({ t: 'result', id: 'other', result: 1, logs: '', durationMs: 0 })],
  ['a specialized reply to an invoke', (s) => s.send({ t: 'specialized', initMs: 1 })],
  ['an error reply without an error object', (s) => s.send({ t: 'error', id: 'a', error: 'boom', logs: '', durationMs: 0 })],
  ['a second ready', (s) => s.send({ t: 'ready', runtime: 'node', pid: 2 })],
  ['bytes that are not a frame', (s) => s.raw(Buffer.from('\u0000\u0000\u0000\u0005hello'))],
  ['a frame header above the limit', (s) => s.raw(Buffer.from([0xff, 0xff, 0xff, 0xff]))],
];
for (const [name, act] of violations) {
  test(`${name} is a protocol error that ends the connection`, async (t) => {
    const s = fakeShim();
    s.send({ t: 'ready', runtime: 'node', pid: 1 });
    await s.conn.ready();
    const inv = s.conn.invoke('a', {}, 0);
    await s.next();
    act(s);
    const e = await t.throwsAsync(inv);
    t.true(isInstanceError(e, 'PROTOCOL_ERROR'));
    t.is((await s.conn.closed).reason, 'protocol');
    t.true(s.conn.isClosed);
  });
}

test('an unsolicited message while idle ends the connection', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 1 });
  await s.conn.ready();
  s.send({ t: 'result', id: 'x', result: 1, logs: '', durationMs: 0 });
  t.is((await s.conn.closed).reason, 'protocol');
  const e = await t.throwsAsync(s.conn.invoke('a', {}, 0));
  t.true(isInstanceError(e, 'PROTOCOL_ERROR'));
});

test('shim-supplied fields are normalised: missing logs, non-numeric durations, oversized text', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 'x' });
  t.deepEqual(await s.conn.ready(), { runtime: 'node', pid: 0 });
  const inv = s.conn.invoke('a', {}, 0);
  await s.next();
  s.send({ t: 'error', id: 'a', error: { type: 'E', message: 'm'.repeat(3 * 1024 * 1024) }, durationMs: 'slow' });
  const out = await inv;
  t.false(out.ok);
  if (!out.ok) {
    t.is(out.error.type, 'E');
    t.is(out.error.message.length, 1024 * 1024);
    t.is(out.error.stack, '');
    t.is(out.logs, '');
    t.is(out.durationMs, 0);
  }
  s.conn.close();
});

test('an exiting error reply makes the connection unusable: later requests reject without being sent', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 1 });
  const inv = s.conn.invoke('a', {}, 0);
  await s.next();
  s.send({ t: 'error', id: 'a', error: { type: 'RuntimeExit', message: 'bye', stack: '' }, logs: 'last words', durationMs: 1, exiting: true });
  t.deepEqual(await inv, { ok: false, error: { type: 'RuntimeExit', message: 'bye', stack: '' }, logs: 'last words', durationMs: 1, exiting: true });
  t.false(s.conn.usable);
  t.false(s.conn.isClosed);
  const e = await t.throwsAsync(s.conn.invoke('b', {}, 0));
  t.true(isInstanceError(e, 'INSTANCE_EXITED'));
  t.is(s.received.length, 0);
  s.conn.close();
});

test('an INIT_ERROR exposes the shim error as functionError too', async (t) => {
  const s = fakeShim();
  const sp = s.conn.specialize(spec);
  await s.next();
  s.send({ t: 'init_error', error: { type: 'InitError', message: 'm', stack: '' } });
  const e = await t.throwsAsync<InstanceError>(sp);
  t.is(e.functionError, e.shimError);
  t.is(e.functionError?.message, 'm');
  s.conn.close();
});

test('specializeThenInvoke sends both frames at once; the invocation settles after the specialisation', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 7 });
  const before = Date.now();
  const { specialized, outcome } = s.conn.specializeThenInvoke(spec, 'id-p', { n: 1 }, 3000);
  t.deepEqual(await s.next(), { t: 'specialize', ...spec });
  const inv = await s.next();
  t.is(inv.t, 'invoke');
  t.is(inv.id, 'id-p');
  t.deepEqual(inv.event, { n: 1 });
  t.is(inv.budgetMs, 3000);
  t.true((inv.deadline as number) >= before + 3000);
  t.true(s.conn.busy);
  // Another request is refused while either is outstanding.
  const busy = await t.throwsAsync(s.conn.invoke('x', {}, 1));
  t.true(isInstanceError(busy, 'BUSY'));
  s.send({ t: 'specialized', initMs: 2 });
  t.deepEqual(await specialized, { initMs: 2 });
  t.true(s.conn.busy, 'the invocation is still pending');
  s.send({ t: 'result', id: 'id-p', result: 5, logs: '', durationMs: 0.1 });
  t.deepEqual(await outcome, { ok: true, result: 5, logs: '', durationMs: 0.1 });
  t.false(s.conn.busy);
  s.conn.close();
});

test("specializeThenInvoke: an init_error rejects the specialisation, the shim's answer to the invocation settles it", async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'python', pid: 1 });
  const { specialized, outcome } = s.conn.specializeThenInvoke(spec, 'id-q', null, 1000);
  await s.next();
  await s.next();
  s.send({ t: 'init_error', error: { type: 'InitError', message: 'no module', stack: '' } });
  const err = await t.throwsAsync(specialized);
  t.true(isInstanceError(err, 'INIT_ERROR'));
  s.send({ t: 'error', id: 'id-q', error: { type: 'InitError', message: 'instance is not specialised', stack: '' }, logs: '', durationMs: 0 });
  const o = await outcome;
  t.false(o.ok);
  t.true(s.conn.usable);
  s.conn.close();
});

test('specializeThenInvoke: the socket ending rejects both with INSTANCE_EXITED', async (t) => {
  const s = fakeShim();
  s.send({ t: 'ready', runtime: 'node', pid: 1 });
  const { specialized, outcome } = s.conn.specializeThenInvoke(spec, 'id-r', {}, 1000);
  await s.next();
  s.exit();
  t.true(isInstanceError(await t.throwsAsync(specialized), 'INSTANCE_EXITED'));
  t.true(isInstanceError(await t.throwsAsync(outcome), 'INSTANCE_EXITED'));
});
