/**
 * The `provided` runtime's relay (src/runtimes/provided/runtime_api.py) as a plain child process
 * (no sandbox, no root): fd 3 a Unix socketpair driven through InstanceConnection, the Runtime API
 * on a free loopback port, and the test itself in the place of the bootstrap, speaking raw HTTP
 * so that framing cases the SDKs use (chunked bodies, Expect: 100-continue, keep-alive) and
 * malformed requests can be sent byte for byte. The bootstrap the relay starts only waits.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { InstanceConnection } from '../../src/runtimes/instance-connection.js';
import type { InvokeOutcome } from '../../src/runtimes/types.js';
import { freePort } from '../../scripts/bench/free-port.js';

const RELAY = resolve(__dirname, '../../../src/runtimes/provided/runtime_api.py');
const API = '/2018-06-01/runtime';

const resultOf = (o: InvokeOutcome): unknown => (o.ok ? o.result : o.error);

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw HTTP/1.1 client on one connection: writes bytes, reads responses one at a time. */
class Raw {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once some response bytes are buffered (or the connection closed), without consuming them. */
  async readable(): Promise<void> {
    while (this.buf.length === 0 && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }
  send(data: string | Buffer): void {
    this.sock.write(data);
  }
  /** The next complete response (Content-Length framed), or undefined when the connection closed first. */
  async reply(): Promise<Reply | undefined> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const [line, ...lines] = this.buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        const len = Number(headers['content-length'] ?? 0);
        if (this.buf.length >= end + 4 + len) {
          const body = this.buf.subarray(end + 4, end + 4 + len).toString();
          this.buf = this.buf.subarray(end + 4 + len);
          return { status: Number(line.split(' ')[1]), headers, body };
        }
      }
      if (this.closed) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

interface Relay {
  conn: InstanceConnection;
  port: number;
  connect(): Promise<Raw>;
}

/** Starts the relay, specialises it and takes the bootstrap's place with a first GET /next. */
async function relay(t: ExecutionContext): Promise<{ r: Relay; next: Raw }> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-relay-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Waits while its parent (the relay) lives, so nothing outlives the test.
  writeFileSync(join(dir, 'bootstrap'), '#!/bin/sh\nwhile kill -0 $PPID 2>/dev/null; do sleep 0.1; done\n', { mode: 0o755 });
  const port = await freePort();
  const child = spawn('/usr/bin/python3', ['-I', '-S', RELAY, '--code', dir, '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
    env: {},
  });
  const exit = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  const conn = new InstanceConnection(child.stdio[3] as Duplex);
  t.teardown(() => conn.close());
  t.is((await conn.ready()).runtime, 'provided');
  const connect = async (): Promise<Raw> => {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r, j) => sock.once('connect', r).once('error', j));
    t.teardown(() => sock.destroy());
    return new Raw(sock);
  };
  const specialized = conn.specialize({ name: 'relay-fn', handler: '', memoryMb: 128, timeoutMs: 3000, env: {} });
  const next = await connect();
  // Until the relay has read `specialize` (its bootstrap would not exist yet) /next is refused: retry.
  for (;;) {
    next.send(`GET ${API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n`);
    const won = await Promise.race([specialized.then(() => 'specialized'), next.readable().then(() => 'answer')]);
    if (won === 'specialized') break;
    t.is((await next.reply())?.status, 403);
    await new Promise((res) => setTimeout(res, 20));
  }
  t.true((await specialized).initMs >= 0, 'the first GET /next ends the init');
  return { r: { conn, port, connect }, next };
}

/** Hands one event to the parked GET /next on `next`; returns the outcome to come (wrapped: an async function would wait for it). */
async function event(t: ExecutionContext, r: Relay, next: Raw, id: string, ev: unknown): Promise<{ outcome: Promise<InvokeOutcome> }> {
  const outcome = r.conn.invoke(id, ev, Date.now() + 3000);
  const got = await next.reply();
  t.is(got?.status, 200);
  t.is(got?.headers['lambda-runtime-aws-request-id'], id);
  t.deepEqual(JSON.parse(got?.body ?? 'null'), ev);
  return { outcome };
}

test('keep-alive: event, a chunked response sent a byte at a time, the next event on the same connection', async (t) => {
  const { r, next } = await relay(t);
  const { outcome } = await event(t, r, next, 'inv-1', { a: 1 });
  const body = '{"b": [2, "two"]}';
  next.send(`POST ${API}/invocation/inv-1/response HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
  const chunked = `5;ext=1\r\n${body.slice(0, 5)}\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\nTrailer: x\r\n\r\n`;
  for (const ch of chunked) next.send(ch);
  const accepted = await next.reply();
  t.is(accepted?.status, 202);
  t.is(accepted?.body, '{"status":"OK"}');
  const o = await outcome;
  t.true(o.ok);
  t.deepEqual(o.ok ? o.result : undefined, { b: [2, 'two'] });
  next.send(`GET ${API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n`);
  const { outcome: second } = await event(t, r, next, 'inv-2', 'second');
  next.send(`POST ${API}/invocation/inv-2/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n42`);
  t.is((await next.reply())?.status, 202);
  t.deepEqual(await second, { ok: true, result: 42, logs: '', durationMs: (await second).durationMs });
});

test('Expect: 100-continue: a small body gets 100 Continue, then 202; one over 6 MB gets 413 at once and fails the invocation', async (t) => {
  const { r, next } = await relay(t);
  const { outcome: first } = await event(t, r, next, 'inv-1', {});
  next.send(`POST ${API}/invocation/inv-1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n`);
  t.is((await next.reply())?.status, 100, 'HTTP/1.1 100 Continue before the body');
  next.send('true');
  t.is((await next.reply())?.status, 202);
  t.deepEqual(resultOf(await first), true);

  next.send(`GET ${API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n`);
  const { outcome: second } = await event(t, r, next, 'inv-2', {});
  const size = 6 * 1024 * 1024 + 1;
  next.send(`POST ${API}/invocation/inv-2/response HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\nExpect: 100-continue\r\n\r\n`);
  const refused = await next.reply();
  t.is(refused?.status, 413);
  t.deepEqual(JSON.parse(refused?.body ?? '{}'), {
    errorMessage: 'Exceeded maximum allowed payload size (6291456 bytes).',
    errorType: 'RequestEntityTooLarge',
  });
  t.is(refused?.headers['connection'], 'close', 'the body was never read: the connection ends');
  const o = await second;
  t.false(o.ok);
  t.is(o.ok ? undefined : o.error.type, 'Function.ResponseSizeTooLarge');
});

test('a body over 6 MB without Expect is read, dropped and refused with 413; the connection stays usable', async (t) => {
  const { r, next } = await relay(t);
  const { outcome } = await event(t, r, next, 'inv-1', {});
  const size = 6 * 1024 * 1024 + 10;
  next.send(`POST ${API}/invocation/inv-1/response HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  next.send(Buffer.alloc(size, 0x61));
  t.is((await next.reply())?.status, 413);
  t.is((await outcome).ok, false);
  next.send(`GET ${API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n`);
  const { outcome: again } = await event(t, r, next, 'inv-2', 'still here');
  next.send(`POST ${API}/invocation/inv-2/response HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
  t.is((await next.reply())?.status, 202);
  t.deepEqual(resultOf(await again), null);
});

test('an error post: type from the body, else from the header; a body that is not JSON becomes the message', async (t) => {
  const { r, next } = await relay(t);
  const cases: Array<[string, string, { type: string; message: string; stack: string }]> = [
    ['Runtime.Header', '{"errorMessage":"m1","errorType":"Body.Type","stackTrace":["a","b"]}', { type: 'Body.Type', message: 'm1', stack: 'a\nb' }],
    ['Runtime.Header', '{"errorMessage":"m2"}', { type: 'Runtime.Header', message: 'm2', stack: '' }],
    ['', 'not json at all', { type: 'Unhandled', message: 'not json at all', stack: '' }],
  ];
  let i = 0;
  for (const [header, body, want] of cases) {
    const id = `inv-${++i}`;
    if (i > 1) next.send(`GET ${API}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n`);
    const { outcome } = await event(t, r, next, id, {});
    const h = header ? `Lambda-Runtime-Function-Error-Type: ${header}\r\n` : '';
    next.send(`POST ${API}/invocation/${id}/error HTTP/1.1\r\nHost: x\r\n${h}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    t.is((await next.reply())?.status, 202);
    const o = await outcome;
    t.deepEqual(o.ok ? undefined : o.error, want);
  }
});

test('a malformed request gets 400 and its connection is closed; other connections are served on', async (t) => {
  const { r, next } = await relay(t);
  const bad = await r.connect();
  bad.send('GARBAGE\r\n\r\n');
  const got = await bad.reply();
  t.is(got?.status, 400);
  t.is(JSON.parse(got?.body ?? '{}').errorType, 'InvalidRequestFormat');
  await bad.reply();
  t.true(bad.closed);
  const { outcome } = await event(t, r, next, 'inv-1', [1, 2]);
  next.send(`POST ${API}/invocation/inv-1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n7`);
  t.is((await next.reply())?.status, 202);
  t.deepEqual(resultOf(await outcome), 7);
});
