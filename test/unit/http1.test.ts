import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Http1Server, type Http1Options, type HttpRequestHead, type HttpResponse } from '../../src/control/http1.js';

interface Seen {
  head: HttpRequestHead;
  body: string;
}

/** A server whose handler echoes the request; `/fail` throws, `/slow` waits for `release()`, `/early` answers from the head. */
async function withServer(
  fn: (path: string, seen: Seen[], ctl: { release: () => void; server: Http1Server<null> }) => Promise<void>,
  over: Partial<Http1Options<null>> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-http1-'));
  const path = join(dir, 's.sock');
  const seen: Seen[] = [];
  let release = (): void => undefined;
  const server: Http1Server<null> = new Http1Server<null>({
    accept: () => ({ context: null }),
    begin: (head) => {
      if (head.target === '/early') return { status: 404, body: 'no such thing' };
      if (head.target === '/nocontent') return { status: 204 };
      return {
        maxBody: 1000,
        respond: async (body) => {
          seen.push({ head, body: body.toString() });
          if (head.target === '/fail') throw new Error('handler bug');
          if (head.target === '/slow') await new Promise<void>((r) => (release = r));
          return { status: 200, headers: { 'X-Seen': String(seen.length) }, body: `${head.method} ${head.target} ${body.toString()}` };
        },
      };
    },
    errorResponse: (status, code, message) => ({ status, body: JSON.stringify({ code, message }) }),
    ...over,
  });
  await server.listen(path);
  try {
    await fn(path, seen, { release: () => release(), server });
  } finally {
    release(); // a /slow handler a failed test left waiting would hold close() forever
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits until the server has started the handler of `n` requests (no fixed sleeps: the machine may be loaded). */
async function handlersRunning(seen: Seen[], n: number): Promise<void> {
  for (const end = Date.now() + 10_000; seen.length < n && Date.now() < end;) await new Promise((r) => setTimeout(r, 5));
  if (seen.length < n) throw new Error(`only ${seen.length} of ${n} handlers started`);
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits a byte stream of responses (Content-Length framed, or none for 1xx/204/HEAD). */
function parseResponses(text: string, headOnly = false): Parsed[] {
  const out: Parsed[] = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = headOnly || status < 200 || status === 204 ? 0 : Number(headers['content-length'] ?? 0);
    out.push({ status, headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

/**
 * Connects, writes `parts` (with a pause between them), and collects until the server closes, `ms`
 * pass, or 50 ms after `until` holds for what arrived (then `closed` is false).
 */
async function exchange(
  path: string,
  parts: string[],
  opts: { ms?: number; halfClose?: boolean; gapMs?: number; until?: (text: string) => boolean } = {},
): Promise<{ text: string; closed: boolean }> {
  const sock = net.connect(path);
  let text = '';
  let enough: (() => void) | undefined;
  sock.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    if (opts.until?.(text)) setTimeout(() => enough?.(), 50); // a close right after the answers would still count
  });
  const closed = new Promise<boolean>((resolve) => {
    enough = () => resolve(false);
    sock.on('close', () => resolve(true));
    sock.on('error', () => undefined);
    setTimeout(() => resolve(false), opts.ms ?? 1500);
  });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  for (const p of parts) {
    sock.write(p);
    if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
  }
  if (opts.halfClose) sock.end();
  const didClose = await closed;
  sock.destroy();
  return { text, closed: didClose };
}

const GET = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`;

test('keep-alive: two requests on one connection, each answered with length, date and the handler headers', async (t) => {
  await withServer(async (path) => {
    const { text, closed } = await exchange(path, [GET('/a'), GET('/b')], { ms: 10_000, gapMs: 50, until: (x) => parseResponses(x).length === 2 });
    t.false(closed, 'an HTTP/1.1 connection stays open');
    const rs = parseResponses(text);
    t.deepEqual(
      rs.map((r) => [r.status, r.body]),
      [
        [200, 'GET /a '],
        [200, 'GET /b '],
      ],
    );
    t.is(rs[0].headers['content-length'], '7');
    t.regex(rs[0].headers['date'], /GMT$/);
    t.is(rs[1].headers['x-seen'], '2');
    t.false('connection' in rs[0].headers);
  });
});

test('pipelined requests in one write are answered in order, one handler at a time', async (t) => {
  await withServer(async (path, seen) => {
    const post = 'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello';
    const { text } = await exchange(path, [GET('/1') + post + GET('/3', 'Connection: close\r\n')]);
    t.deepEqual(
      parseResponses(text).map((r) => r.body),
      ['GET /1 ', 'POST /p hello', 'GET /3 '],
    );
    t.deepEqual(
      seen.map((s) => s.head.target),
      ['/1', '/p', '/3'],
    );
  });
});

test('a chunked body is decoded, extensions and trailers ignored, even one byte per write', async (t) => {
  await withServer(async (path, seen) => {
    const req =
      'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n';
    const { text, closed } = await exchange(path, [...req], { ms: 3000 });
    t.true(closed);
    t.is(parseResponses(text)[0].body, 'POST /c hello world');
    t.is(seen[0].body, 'hello world');
  });
});

test('Expect: 100-continue gets 100 Continue before the body; a body over the limit gets 413 and no 100', async (t) => {
  await withServer(async (path) => {
    const ok = await exchange(path, ['POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'abc'], {
      gapMs: 50,
    });
    t.deepEqual(
      parseResponses(ok.text).map((r) => r.status),
      [100, 200],
    );
    t.is(parseResponses(ok.text)[1].body, 'POST /e abc');
    const big = await exchange(path, ['POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n']);
    const rs = parseResponses(big.text);
    t.deepEqual(
      rs.map((r) => r.status),
      [413],
    );
    t.regex(rs[0].body, /PAYLOAD_TOO_LARGE.*5000 bytes exceeds the limit of 1000/);
    t.is(rs[0].headers['connection'], 'close');
    t.true(big.closed);
  });
});

test('a chunked body that grows past the limit gets 413 and the handler never runs', async (t) => {
  await withServer(async (path, seen) => {
    const { text, closed } = await exchange(path, [
      `POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n${'x'.repeat(1000)}\r\n1\r\ny\r\n0\r\n\r\n`,
    ]);
    t.is(parseResponses(text)[0].status, 413);
    t.true(closed);
    t.is(seen.length, 0);
  });
});

const malformed: Array<[string, string, number]> = [
  ['request line with two parts', 'GET /\r\nHost: h\r\n\r\n', 400],
  ['lower-case protocol', 'GET / http/1.1\r\nHost: h\r\n\r\n', 400],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', 505],
  ['absolute-form target', 'GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n', 400],
  ['target with a space', 'GET /a b HTTP/1.1\r\nHost: h\r\n\r\n', 400],
  ['both Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['two Content-Lengths that differ', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
  ['negative Content-Length', 'POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 400],
  ['Content-Length with a sign', 'POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc', 400],
  ['gzip transfer coding', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 400],
  ['space before the colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n', 400],
  ['obsolete line folding', 'GET / HTTP/1.1\r\nX-A: 1\r\n  more\r\n\r\n', 400],
  ['bare LF inside the head', 'GET / HTTP/1.1\r\nX-A: 1\nX-B: 2\r\n\r\n', 400],
  ['NUL in a header value', 'GET / HTTP/1.1\r\nX-A: a\u0000b\r\n\r\n', 400],
  ['header line without a colon', 'GET / HTTP/1.1\r\nnocolon\r\n\r\n', 400],
  ['chunk size not hex', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
  ['chunk data without its CRLF', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n', 400],
  ['an Expect other than 100-continue', 'GET / HTTP/1.1\r\nExpect: magic\r\n\r\n', 417],
];

for (const [name, raw, status] of malformed) {
  test(`malformed: ${name} -> ${status}, connection closed, handler not run`, async (t) => {
    await withServer(async (path, seen) => {
      const { text, closed } = await exchange(path, [raw]);
      const rs = parseResponses(text);
      t.is(rs.length, 1);
      t.is(rs[0].status, status);
      t.is(rs[0].headers['connection'], 'close');
      t.true(closed);
      t.is(seen.length, 0);
    });
  });
}

test('a head larger than the limit gets 431 before it is complete', async (t) => {
  await withServer(
    async (path) => {
      const { text, closed } = await exchange(path, [`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(600)}\r\n`]);
      t.is(parseResponses(text)[0].status, 431);
      t.true(closed);
    },
    { maxHeadBytes: 512 },
  );
});

test('HTTP/1.0 closes after the answer unless it asks for keep-alive', async (t) => {
  await withServer(async (path) => {
    const plain = await exchange(path, ['GET /x HTTP/1.0\r\n\r\n']);
    t.true(plain.closed);
    t.is(parseResponses(plain.text)[0].headers['connection'], 'close');
    const kept = await exchange(path, ['GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], { ms: 10_000, until: (x) => parseResponses(x).length === 1 });
    t.false(kept.closed);
    t.is(parseResponses(kept.text)[0].headers['connection'], 'keep-alive');
  });
});

test('an answer given from the head closes the connection; the unread body is dropped', async (t) => {
  await withServer(async (path) => {
    const { text, closed } = await exchange(path, ['POST /early HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n', 'x'.repeat(50_000)], {
      halfClose: true,
    });
    const rs = parseResponses(text);
    t.is(rs.length, 1);
    t.is(rs[0].status, 404);
    t.is(rs[0].body, 'no such thing');
    t.true(closed);
    const noBody = await exchange(path, [GET('/early'), GET('/after', 'Connection: close\r\n')]);
    t.deepEqual(
      parseResponses(noBody.text).map((r) => r.status),
      [404, 200],
      'without a body the connection stays usable',
    );
  });
});

test('HEAD gets the length but no body; 204 has neither', async (t) => {
  await withServer(async (path) => {
    const head = await exchange(path, ['HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n', GET('/n', 'Connection: close\r\n')], { gapMs: 50 });
    const rs = parseResponses(head.text, true);
    t.is(rs[0].headers['content-length'], '8');
    t.false(head.text.includes('HEAD /h'));
    const nc = await exchange(path, [GET('/nocontent', 'Connection: close\r\n')]);
    t.regex(nc.text, /^HTTP\/1\.1 204 No Content\r\n/);
    t.false(/content-length/i.test(nc.text));
  });
});

test('a handler that throws gets 500 and the connection stays usable', async (t) => {
  await withServer(async (path) => {
    const { text } = await exchange(path, [GET('/fail') + GET('/ok', 'Connection: close\r\n')]);
    const rs = parseResponses(text);
    t.deepEqual(
      rs.map((r) => r.status),
      [500, 200],
    );
    t.notRegex(rs[0].body, /handler bug/);
  });
});

test('a peer that half-closes after its requests still gets every answer, then the close', async (t) => {
  await withServer(async (path) => {
    const { text, closed } = await exchange(path, [GET('/1') + GET('/2')], { halfClose: true, ms: 3000 });
    t.true(closed);
    t.deepEqual(
      parseResponses(text).map((r) => r.body),
      ['GET /1 ', 'GET /2 '],
    );
  });
});

test('timeouts: idle keep-alive closes quietly, an incomplete head or body gets 408', async (t) => {
  await withServer(
    async (path) => {
      const idle = await exchange(path, [], { ms: 2000 });
      t.true(idle.closed);
      t.is(idle.text, '');
      const head = await exchange(path, ['GET / HTTP/1.1\r\nHost: h\r\n'], { ms: 2000 });
      t.true(head.closed);
      t.is(parseResponses(head.text)[0].status, 408);
      const body = await exchange(path, ['POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'], { ms: 2000 });
      t.true(body.closed);
      t.is(parseResponses(body.text)[0].status, 408);
    },
    { keepAliveMs: 200, headMs: 200, requestMs: 300 },
  );
});

test('a request whose handler is running does not time out', async (t) => {
  await withServer(
    async (path, _seen, ctl) => {
      const pending = exchange(path, [GET('/slow', 'Connection: close\r\n')], { ms: 3000 });
      await new Promise((r) => setTimeout(r, 600));
      ctl.release();
      const { text } = await pending;
      t.is(parseResponses(text)[0].status, 200);
    },
    { keepAliveMs: 100, headMs: 100, requestMs: 100 },
  );
});

test('close(): idle connections go at once, a running handler answers first (with Connection: close)', async (t) => {
  await withServer(async (path, seen, ctl) => {
    const idle = net.connect(path);
    const idleClosed = new Promise<void>((r) => idle.on('close', () => r()));
    await new Promise<void>((r) => idle.once('connect', () => r()));
    const busy = exchange(path, [GET('/slow')], { ms: 3000 });
    await handlersRunning(seen, 1);
    let closedDone = false;
    const closing = ctl.server.close().then(() => (closedDone = true));
    await idleClosed;
    t.false(closedDone, 'close waits for the running handler');
    ctl.release();
    const { text, closed } = await busy;
    await closing;
    t.true(closed);
    const r = parseResponses(text)[0];
    t.is(r.status, 200);
    t.is(r.headers['connection'], 'close');
  });
});

test('a client that disconnects while its handler runs does not disturb the server', async (t) => {
  await withServer(async (path, seen, ctl) => {
    const sock = net.connect(path);
    sock.on('error', () => undefined);
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(GET('/slow'));
    await handlersRunning(seen, 1);
    sock.destroy();
    await new Promise((r) => setTimeout(r, 50));
    ctl.release();
    const { text } = await exchange(path, [GET('/next', 'Connection: close\r\n')]);
    t.is(parseResponses(text)[0].body, 'GET /next ');
  });
});

test('a refused connection gets the refusal and is closed', async (t) => {
  await withServer(
    async (path, seen) => {
      const { text, closed } = await exchange(path, [GET('/x')]);
      t.true(closed);
      t.is(parseResponses(text)[0].status, 403);
      t.is(seen.length, 0);
    },
    { accept: (): { refuse: HttpResponse } => ({ refuse: { status: 403, body: 'go away' } }) },
  );
});
