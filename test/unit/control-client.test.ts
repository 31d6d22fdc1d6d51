import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, ControlClient } from '../../src/control/client.js';

interface RawReq {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** 1-based number of the connection this request came on. */
  conn: number;
  /** 1-based number of this request on its connection. */
  seq: number;
}

type Handler = (req: RawReq, sock: net.Socket, srv: RawServer) => void | Promise<void>;

interface RawServer {
  path: string;
  connections: number;
  /** Connections the server saw closed by the client. */
  closedByPeer: number;
  requests: RawReq[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tempSocket(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-cc-'));
  return { dir, path: join(dir, 's.sock') };
}

/** A hand-written HTTP server: parses requests (Content-Length bodies only) and lets `handler` write raw bytes back. */
async function withRaw(handler: Handler, fn: (client: ControlClient, srv: RawServer) => Promise<void>): Promise<void> {
  const { dir, path } = tempSocket();
  const srv: RawServer = { path, connections: 0, closedByPeer: 0, requests: [] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    const conn = ++srv.connections;
    let seq = 0;
    sockets.add(sock);
    sock.on('end', () => srv.closedByPeer++);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [line, ...lines] = buf.toString('latin1', 0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const len = Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.toString('utf8', end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        const [method, p] = line.split(' ');
        const req: RawReq = { method: method, path: p, headers, body, conn, seq: ++seq };
        srv.requests.push(req);
        void handler(req, sock, srv);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  const client = new ControlClient(path);
  try {
    await fn(client, srv);
  } finally {
    client.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function response(status: number, body: string, extra = ''): string {
  return `HTTP/1.1 ${status} X\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

const ok =
  (body = '{"ok":true}', extra = 'Content-Type: application/json\r\n') =>
  (_req: RawReq, sock: net.Socket) =>
    void sock.write(response(200, body, extra));

test('content-length JSON body: status, parsed body, lower-cased headers', async (t) => {
  await withRaw(ok('{"a":[1,2],"s":"h\u00e9"}', 'Content-Type: application/json\r\nX-Thing: one\r\nx-thing: two\r\nSet-Cookie: a=1\r\n'), async (c) => {
    const r = await c.request('GET', '/v1/health');
    t.is(r.status, 200);
    t.deepEqual(r.body, { a: [1, 2], s: 'h\u00e9' });
    t.is(r.headers['content-type'], 'application/json');
    t.is(r.headers['x-thing'], 'one, two');
    t.deepEqual(r.headers['set-cookie'], ['a=1']);
  });
});

test('a text body that is not JSON is kept as text', async (t) => {
  await withRaw(ok('hello, world', 'Content-Type: text/plain\r\n'), async (c) => {
    const r = await c.request('GET', '/');
    t.is(r.body, 'hello, world');
  });
});

test('an empty body is undefined', async (t) => {
  await withRaw(ok(''), async (c) => {
    const r = await c.request('DELETE', '/v1/functions/x');
    t.is(r.status, 200);
    t.is(r.body, undefined);
  });
});

test('a chunked answer written one byte at a time (head included) is decoded; trailers ignored; connection reused', async (t) => {
  const body = '{"w":"caf\u00e9 \u2603","n":12345}';
  const bytes = Buffer.from(body);
  const parts = [bytes.subarray(0, 7), bytes.subarray(7, 15), bytes.subarray(15)];
  const wireBuf = Buffer.concat([
    Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n', 'latin1'),
    ...parts.flatMap((p, i) => [Buffer.from(p.length.toString(16) + (i === 1 ? ';ext=1' : '') + '\r\n'), p, Buffer.from('\r\n')]),
    Buffer.from('0\r\nX-Trailer: yes\r\n\r\n'),
  ]);
  await withRaw(
    async (_req, sock) => {
      for (const b of wireBuf) {
        sock.write(Buffer.from([b]));
        await new Promise((r) => setImmediate(r));
      }
    },
    async (c, srv) => {
      const r = await c.request('GET', '/');
      t.deepEqual(r.body, { w: 'caf\u00e9 \u2603', n: 12345 });
      t.is(r.headers['transfer-encoding'], 'chunked');
      t.is(r.headers['x-trailer'], undefined);
      const r2 = await c.request('GET', '/');
      t.deepEqual(r2.body, r.body);
      t.is(srv.connections, 1);
    },
  );
});

test('without Content-Length or chunking the body runs until the server closes; that connection is not reused', async (t) => {
  await withRaw(
    (_req, sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part ');
      setTimeout(() => sock.end('and the rest'), 10);
    },
    async (c, srv) => {
      t.is((await c.request('GET', '/')).body, 'first part and the rest');
      t.is((await c.request('GET', '/')).body, 'first part and the rest');
      t.is(srv.connections, 2);
    },
  );
});

test('Connection: close from the server: the connection is not reused', async (t) => {
  await withRaw(ok('{}', 'Connection: close\r\n'), async (c, srv) => {
    t.deepEqual((await c.request('GET', '/')).body, {});
    t.deepEqual((await c.request('GET', '/')).body, {});
    t.is(srv.connections, 2);
  });
});

test('204, 304 and HEAD answers have no body, and the connection is reused after them', async (t) => {
  await withRaw(
    (req, sock) => {
      if (req.path === '/204') sock.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n');
      else if (req.path === '/304') sock.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n');
      else if (req.method === 'HEAD') sock.write('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n');
      else sock.write(response(200, '"after"'));
    },
    async (c, srv) => {
      const r = await c.request('DELETE', '/204');
      t.is(r.status, 204);
      t.is(r.body, undefined);
      t.is(r.headers['x-a'], '1');
      t.is((await c.request('GET', '/304')).status, 304);
      const h = await c.request('HEAD', '/x');
      t.is(h.status, 200);
      t.is(h.body, undefined);
      t.is((await c.request('GET', '/x')).body, 'after');
      t.is(srv.connections, 1);
    },
  );
});

test('1xx interim answers are skipped', async (t) => {
  await withRaw(
    (_req, sock) => void sock.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' + response(201, '{"created":true}')),
    async (c) => {
      const r = await c.request('PUT', '/v1/functions/f', { a: 1 });
      t.is(r.status, 201);
      t.deepEqual(r.body, { created: true });
      t.is(r.headers['link'], undefined);
    },
  );
});

test('keep-alive: 5 sequential requests use one connection', async (t) => {
  await withRaw(ok(), async (c, srv) => {
    for (let i = 0; i < 5; i++) t.deepEqual((await c.request('POST', '/v1/x', { i })).body, { ok: true });
    t.is(srv.requests.length, 5);
    t.is(srv.connections, 1);
    t.deepEqual(
      srv.requests.map((r) => JSON.parse(r.body) as unknown),
      [0, 1, 2, 3, 4].map((i) => ({ i })),
    );
  });
});

test('20 parallel requests all complete on at most 20 connections, each gets its own answer', async (t) => {
  await withRaw(
    (req, sock) => void setTimeout(() => sock.write(response(200, JSON.stringify({ echo: req.path }))), 5),
    async (c, srv) => {
      const res = await Promise.all(Array.from({ length: 20 }, (_, i) => c.request('GET', `/n/${i}`)));
      t.deepEqual(
        res.map((r) => r.body),
        Array.from({ length: 20 }, (_, i) => ({ echo: `/n/${i}` })),
      );
      t.true(srv.connections <= 20);
      t.true(srv.connections >= 1);
    },
  );
});

test('at most 64 connections; further requests wait in FIFO order for a free one', async (t) => {
  // Every answer is held back except on connection 1 once all 64 connections are busy: the 86 queued
  // requests must then go through connection 1 one after another, in the order they were made.
  const held: Array<() => void> = [];
  let first: (() => void) | undefined;
  await withRaw(
    (req, sock, srv) => {
      const reply = () => void sock.write(response(200, JSON.stringify(req.path)));
      if (req.conn !== 1) held.push(reply);
      else if (srv.requests.length >= 64) reply();
      else first = reply;
      if (srv.requests.length === 64 && first) {
        first();
        first = undefined;
      }
      if (srv.requests.length === 150) held.splice(0).forEach((f) => f());
    },
    async (c, srv) => {
      const res = await Promise.all(Array.from({ length: 150 }, (_, i) => c.request('GET', `/n/${i}`)));
      t.deepEqual(
        res.map((r) => r.body),
        Array.from({ length: 150 }, (_, i) => `/n/${i}`),
      );
      t.is(srv.connections, 64);
      t.is(srv.requests.length, 150);
      const onFirst = srv.requests.filter((r) => r.conn === 1 && r.seq > 1).map((r) => r.path);
      t.deepEqual(
        onFirst,
        Array.from({ length: 86 }, (_, i) => `/n/${64 + i}`),
      );
    },
  );
});

test('a pooled connection the server dropped without answering is retried once on a fresh connection', async (t) => {
  await withRaw(
    (req, sock) => {
      if (req.conn === 1 && req.seq === 2)
        sock.destroy(); // the keep-alive race: gone before any answer byte
      else sock.write(response(200, JSON.stringify({ conn: req.conn, body: req.body })));
    },
    async (c, srv) => {
      t.deepEqual((await c.request('POST', '/a', { n: 1 })).body, { conn: 1, body: '{"n":1}' });
      t.deepEqual((await c.request('POST', '/a', { n: 2 })).body, { conn: 2, body: '{"n":2}' });
      t.is(srv.connections, 2);
      t.is(srv.requests.length, 3);
    },
  );
});

test('an idle pooled connection the server closed is dropped from the pool', async (t) => {
  await withRaw(
    (req, sock) => {
      sock.write(response(200, String(req.conn)));
      setTimeout(() => sock.end(), 5);
    },
    async (c, srv) => {
      t.is((await c.request('GET', '/')).body, 1);
      // Wait until the client has seen the close and closed its side too (no fixed sleep: on a
      // loaded machine 50 ms was not always enough for the FIN to be read).
      for (const end = Date.now() + 10_000; srv.closedByPeer < 1 && Date.now() < end;) await sleep(5);
      t.is(srv.closedByPeer, 1, 'the client closed the connection the server ended');
      t.is((await c.request('GET', '/')).body, 2);
      t.is(srv.requests.length, 2);
    },
  );
});

test('the retry happens once only, and never for a fresh connection', async (t) => {
  await withRaw(
    (req, sock) => {
      if (req.conn === 1 && req.seq === 1) sock.write(response(200, '1'));
      else sock.destroy();
    },
    async (c, srv) => {
      t.is((await c.request('GET', '/')).body, 1);
      const err = await t.throwsAsync(c.request('GET', '/'));
      t.is((err as NodeJS.ErrnoException).code, 'ECONNRESET');
      t.is(srv.requests.length, 3); // the stale attempt and one retry
      const before = srv.requests.length;
      await t.throwsAsync(c.request('GET', '/'));
      t.is(srv.requests.length, before + 1); // a fresh connection: no retry
    },
  );
});

test('a socket path that does not exist rejects with ENOENT; a non-socket file with ECONNREFUSED', async (t) => {
  const { dir, path } = tempSocket();
  try {
    const c = new ControlClient(path);
    const e1 = await t.throwsAsync(c.request('GET', '/v1/health'));
    t.is((e1 as NodeJS.ErrnoException).code, 'ENOENT');
    const e2 = await t.throwsAsync(c.call('GET', '/v1/health'));
    t.is((e2 as NodeJS.ErrnoException).code, 'ENOENT');
    writeFileSync(path, '');
    const e3 = await t.throwsAsync(c.request('GET', '/v1/health'));
    t.is((e3 as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a malformed status line rejects clearly and the connection is dropped', async (t) => {
  await withRaw(
    (req, sock) =>
      void sock.write(
        req.path === '/bad' ? 'HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n' : req.path === '/junk' ? 'SSH-2.0-OpenSSH\r\n\r\n' : response(200, '"fine"'),
      ),
    async (c, srv) => {
      const e = await t.throwsAsync(c.request('GET', '/bad'));
      t.regex(e.message, /malformed HTTP response.*status line/);
      await t.throwsAsync(c.request('GET', '/junk'), { message: /malformed/ });
      t.is((await c.request('GET', '/ok')).body, 'fine');
      t.is(srv.connections, 3);
    },
  );
});

test('a malformed header line or chunk size rejects', async (t) => {
  await withRaw(
    (req, sock) =>
      void sock.write(
        req.path === '/hdr' ? 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n' : 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      ),
    async (c) => {
      await t.throwsAsync(c.request('GET', '/hdr'), { message: /malformed.*header/ });
      await t.throwsAsync(c.request('GET', '/chunk'), { message: /malformed.*chunk size/ });
    },
  );
});

test('the server closing mid-body rejects', async (t) => {
  await withRaw(
    (req, sock) => {
      if (req.path === '/len') sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial":');
      else sock.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc');
    },
    async (c) => {
      const e = await t.throwsAsync(c.request('GET', '/len'));
      t.is((e as NodeJS.ErrnoException).code, 'ECONNRESET');
      await t.throwsAsync(c.request('GET', '/chunked'), { message: /closed before a complete response/ });
    },
  );
});

test('bytes after a complete answer are not taken as the next answer', async (t) => {
  await withRaw(
    (req, sock) => void sock.write(response(200, JSON.stringify(req.conn)) + (req.conn === 1 ? response(200, '"stray"') : '')),
    async (c, srv) => {
      t.is((await c.request('GET', '/')).body, 1);
      t.is((await c.request('GET', '/')).body, 2);
      t.is(srv.connections, 2);
    },
  );
});

test('call(): 2xx gives the body; otherwise ApiError with status, code and message', async (t) => {
  await withRaw(
    (req, sock) => {
      if (req.path === '/missing') sock.write(response(404, '{"error":{"code":"FUNCTION_NOT_FOUND","message":"no such function"}}'));
      else if (req.path === '/plain') sock.write(response(502, 'bad gateway'));
      else sock.write(response(200, '{"v":1}'));
    },
    async (c) => {
      t.deepEqual(await c.call<{ v: number }>('GET', '/fine'), { v: 1 });
      const e = await t.throwsAsync(c.call('GET', '/missing'), { instanceOf: ApiError });
      t.is(e.status, 404);
      t.is(e.code, 'FUNCTION_NOT_FOUND');
      t.is(e.message, 'no such function');
      const e2 = await t.throwsAsync(c.call('GET', '/plain'), { instanceOf: ApiError });
      t.is(e2.status, 502);
      t.is(e2.code, 'HTTP_502');
      t.is(e2.message, 'HTTP 502');
    },
  );
});

test('what goes on the wire: method, path, Host, JSON/Buffer/string bodies, caller headers', async (t) => {
  await withRaw(ok(), async (c, srv) => {
    await c.request('post', '/v1/functions/f/events?x=1', { hello: 'w\u00f6rld' }, { 'Idempotency-Key': 'abc-123', 'X-Extra': 'v' });
    await c.request('GET', '/v1/pool');
    await c.request('PUT', '/raw', Buffer.from([0x7b, 0x7d]));
    await c.request('PUT', '/str', '{"s":"\u2603"}');
    await c.request('POST', '/typed', 'plain', { 'Content-Type': 'text/plain' });
    const [a, b, d, e, f] = srv.requests;
    t.is(a.method, 'POST');
    t.is(a.path, '/v1/functions/f/events?x=1');
    t.is(a.headers['host'], 'localhost');
    t.is(a.headers['content-type'], 'application/json');
    t.is(a.headers['content-length'], String(Buffer.byteLength('{"hello":"w\u00f6rld"}')));
    t.is(a.headers['idempotency-key'], 'abc-123');
    t.is(a.headers['x-extra'], 'v');
    t.deepEqual(JSON.parse(a.body), { hello: 'w\u00f6rld' });
    t.is(b.method, 'GET');
    t.deepEqual(Object.keys(b.headers), ['host']);
    t.is(b.body, '');
    t.is(d.body, '{}');
    t.is(d.headers['content-type'], 'application/json');
    t.is(e.body, '{"s":"\u2603"}');
    t.is(e.headers['content-length'], String(Buffer.byteLength('{"s":"\u2603"}')));
    t.is(f.headers['content-type'], 'text/plain');
    t.is(f.body, 'plain');
  });
});

test('header injection and bad paths are refused before anything is sent', async (t) => {
  await withRaw(ok(), async (c, srv) => {
    await t.throwsAsync(c.request('GET', '/x', undefined, { 'X-A': 'v\r\nX-Evil: 1' }), { instanceOf: TypeError });
    await t.throwsAsync(c.request('GET', '/a b'), { instanceOf: TypeError });
    await t.throwsAsync(c.request('GET\r\n', '/'), { instanceOf: TypeError });
    t.is(srv.requests.length, 0);
  });
});

test('close() rejects requests in flight; the client keeps working afterwards', async (t) => {
  await withRaw(
    (req, sock) => {
      if (req.path !== '/hang') sock.write(response(200, '"ok"'));
    },
    async (c, srv) => {
      t.is((await c.request('GET', '/')).body, 'ok');
      const pending = c.request('GET', '/hang');
      await sleep(20);
      c.close();
      await t.throwsAsync(pending, { message: /closed/ });
      t.is((await c.request('GET', '/')).body, 'ok');
      t.is(srv.connections, 2);
    },
  );
});

test('idle pooled connections do not keep the process alive', async (t) => {
  // A server that never closes connections; a child process makes one request and must exit on its own.
  await withRaw(ok('{"from":"server"}'), async (_c, srv) => {
    const clientJs = join(__dirname, '../../src/control/client.js');
    const script = `const { ControlClient } = require(${JSON.stringify(clientJs)});
      new ControlClient(${JSON.stringify(srv.path)}).request('GET', '/').then((r) => process.stdout.write(JSON.stringify(r.body)));`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s) => r([c, s])));
    clearTimeout(timer);
    t.is(signal, null, 'the child was still running after 5 s');
    t.is(code, 0);
    t.is(out, '{"from":"server"}');
  });
});

test('works end to end against a node http server on a Unix socket', async (t) => {
  const { dir, path } = tempSocket();
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      if (req.url === '/chunked') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{"parts":');
        res.end('[1,2]}');
        return;
      }
      if (req.method === 'POST') {
        res.writeHead(201, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ got: JSON.parse(body) as unknown, type: req.headers['content-type'], key: req.headers['idempotency-key'] ?? null }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url }));
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(path, r));
  const c = new ControlClient(path);
  try {
    const g = await c.request('GET', '/v1/health');
    t.is(g.status, 200);
    t.deepEqual(g.body, { method: 'GET', url: '/v1/health' });
    t.is(g.headers['content-type'], 'application/json');
    const p = await c.request('POST', '/v1/functions/x/invoke', { name: 'x' }, { 'Idempotency-Key': 'k1' });
    t.is(p.status, 201);
    t.deepEqual(p.body, { got: { name: 'x' }, type: 'application/json', key: 'k1' });
    t.deepEqual(await c.call('GET', '/chunked'), { parts: [1, 2] });
    t.deepEqual(
      (await Promise.all(Array.from({ length: 10 }, (_, i) => c.call('GET', `/p/${i}`)))).map((b) => (b as { url: string }).url),
      Array.from({ length: 10 }, (_, i) => `/p/${i}`),
    );
    t.true(connections >= 1 && connections <= 10);
  } finally {
    c.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});
