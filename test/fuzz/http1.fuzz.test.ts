/**
 * Fuzzing the control API's HTTP/1.1 parser (src/control/http1*.ts): the head parser alone, and a
 * real Http1Server on a Unix socket fed arbitrary byte streams, chunked arbitrarily.
 * Properties: the parser throws only HttpParseError with a 4xx/5xx status, and what it accepts is
 * well-formed; the server answers every stream with well-formed responses (or none) and closes the
 * connection once the client has finished sending; it never crashes.
 */
import test from 'ava';
import fc from 'fast-check';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Http1Server } from '../../src/control/http1.js';
import { HttpParseError, parseHead } from '../../src/control/http1-message.js';
import { corpus, params } from './fuzz-config.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function checkHead(text: string): void {
  let head;
  try {
    head = parseHead(text);
  } catch (e) {
    if (!(e instanceof HttpParseError)) throw new Error(`parseHead threw a ${(e as Error).constructor.name}: ${(e as Error).message}`, { cause: e });
    if (e.status < 400 || e.status > 599) throw new Error(`status ${e.status}`, { cause: e });
    return;
  }
  if (!TOKEN.test(head.method)) throw new Error(`accepted method ${JSON.stringify(head.method)}`);
  if (!head.target.startsWith('/')) throw new Error(`accepted target ${JSON.stringify(head.target)}`);
  for (const [k, v] of Object.entries(head.headers)) {
    if (k !== k.toLowerCase() || !TOKEN.test(k)) throw new Error(`header name ${JSON.stringify(k)}`);
    if (/[\r\n\0]/.test(v)) throw new Error(`header value with CR/LF/NUL: ${JSON.stringify(v)}`);
  }
}

/** Request-like text: mostly valid pieces, with hostile ones mixed in. */
const piece = fc.oneof(
  fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'G ET', '', 'PRI'),
  fc.constantFrom(' ', '\r\n', '\n', '\r', ':', ': ', '\t', '\0', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1\r\n'),
  fc.constantFrom('/v1/health', '/v1/functions/x', '*', 'http://h/x', '/%zz', '/a?b=c'),
  fc.constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'Expect', 'Connection', 'content-length'),
  fc.constantFrom('chunked', 'gzip, chunked', '100-continue', 'close', 'keep-alive', '0', '5', '-1', '99999999999999999999', ' 5'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
);
const headText = fc.array(piece, { maxLength: 40 }).map((a) => a.join(''));

test('parseHead: only HttpParseError, and accepted heads are well-formed (corpus, then generated)', (t) => {
  for (const c of corpus('http1')) {
    const text = c.data.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    checkHead(end >= 0 ? text.slice(0, end) : text);
  }
  fc.assert(
    fc.property(headText, (text) => checkHead(text)),
    params('http1-head', 3000),
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => checkHead(text)),
    params('http1-head-raw', 1000),
  );
  t.pass();
});

/** A stream of bytes: requests built from pieces, bodies and garbage, cut into chunks. */
const stream = fc
  .array(
    fc.oneof(
      headText.map((h) => `${h}\r\n\r\n`),
      fc.constantFrom(
        'GET /v1/health HTTP/1.1\r\nHost: h\r\n\r\n',
        'PUT /v1/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc',
        'POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
        'POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n',
        'POST /v1/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
        'POST /v1/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab',
      ),
      fc.string({ unit: 'binary', maxLength: 64 }),
    ),
    { maxLength: 6 },
  )
  .chain((parts) => {
    const bytes = Buffer.from(parts.join(''), 'latin1');
    return fc.tuple(fc.constant(bytes), fc.array(fc.nat(bytes.length), { maxLength: 5 }));
  });

/** Sends `bytes` in the given cuts, half-closes, and collects everything until the server closes. */
function exchange(sock: string, bytes: Buffer, cuts: number[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    let got = '';
    c.on('data', (d) => (got += d.toString('latin1')));
    c.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    c.on('close', () => resolve(got));
    c.on('connect', () => {
      let at = 0;
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        c.write(bytes.subarray(at, cut));
        at = cut;
      }
      c.end(bytes.subarray(at));
    });
  });
}

function checkResponses(text: string): void {
  let rest = text;
  while (rest.length > 0) {
    const m = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*\r\n/.exec(rest);
    if (!m) throw new Error(`not a response: ${JSON.stringify(rest.slice(0, 80))}`);
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error('response head without its end');
    const len = /\r\ncontent-length: (\d+)\r\n/i.exec(rest.slice(0, end + 2));
    if (Number(m[1]) === 100) {
      rest = rest.slice(end + 4);
      continue;
    }
    if (!len) throw new Error(`response without Content-Length: ${JSON.stringify(rest.slice(0, end))}`);
    rest = rest.slice(end + 4 + Number(len[1]));
  }
}

test('Http1Server: arbitrary streams get well-formed responses and the connection ends; the server survives', async (t) => {
  t.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-fuzz-http-'));
  const sock = path.join(dir, 's.sock');
  const server = new Http1Server<null>({
    accept: () => ({ context: null }),
    begin: (head) =>
      head.target === '/v1/health'
        ? { status: 200, headers: {}, body: 'ok' }
        : { maxBody: 64, respond: (body) => ({ status: 200, headers: {}, body: String(body.length) }) },
    errorResponse: (status, code, message) => ({ status, headers: {}, body: JSON.stringify({ code, message }) }),
  });
  await server.listen(sock);
  try {
    for (const c of corpus('http1')) checkResponses(await exchange(sock, c.data, []));
    await fc.assert(
      fc.asyncProperty(stream, async ([bytes, cuts]) => checkResponses(await exchange(sock, bytes, cuts))),
      params('http1-server', 150, 0.05),
    );
    checkResponses(await exchange(sock, Buffer.from('GET /v1/health HTTP/1.1\r\n\r\n'), []));
    t.pass();
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
