/**
 * HTTP/1.1 on a stream socket, written for the control socket: a request is parsed straight from
 * the socket's bytes and answered with one write, without node:http's per-request objects and
 * streams (about a third of the daemon's CPU per warm invoke went there). It speaks the subset a
 * JSON API needs, strictly (RFC 9112):
 *
 * - Requests in origin-form (`/path?query`), HTTP/1.1 or 1.0; keep-alive by default on 1.1,
 *   `Connection: close` honoured; pipelined requests are answered in order, one at a time (the
 *   socket is paused while a handler runs, which is also the backpressure).
 * - Bodies framed by `Content-Length` or `Transfer-Encoding: chunked`; both at once, a repeated
 *   length that disagrees, or any other transfer coding is a 400 and the connection closes.
 *   `Expect: 100-continue` gets `100 Continue` once the body is known to be acceptable.
 * - Limits: the head (request line and headers) is at most `maxHeadBytes` (431), the body at most
 *   what the handler allows for that request (413, checked against the declared length before a
 *   byte of it is read, and again while chunks arrive).
 * - Timeouts, checked by one sweep per second rather than a timer per request: a connection idle
 *   between requests is closed after `keepAliveMs`; a request whose head is incomplete after
 *   `headMs`, or whose body is incomplete `requestMs` after it began, gets 408 and the connection
 *   closes. A request whose handler is running never times out here (the handler owns that).
 * - A response sent before the request's body was read (404, 413, ...) carries `Connection: close`;
 *   the rest of the body is read and dropped until the peer closes, so the peer can still read the
 *   answer. Malformed input never throws out of the parser: it is answered 400 and closed.
 */
import net from 'node:net';
import { STATUS_CODES } from 'node:http';
import { parseChunkSize, parseContentLength, parseFieldLine, TOKEN } from './http-syntax.js';

export interface HttpRequestHead {
  method: string;
  /** The request-target as sent (origin-form: starts with `/`). */
  target: string;
  version: '1.0' | '1.1';
  /** Lower-case names; a repeated field's values joined with `, `. */
  headers: Record<string, string>;
}

export interface HttpResponse {
  status: number;
  /** Added after the server's own Content-Length, Date and Connection. */
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** How to take one request's body and answer it. */
export interface HttpExchange {
  /** Largest body accepted, bytes; past it the server answers 413 itself. */
  maxBody: number;
  /** Called once with the whole body. A rejection is the handler's bug: the server answers 500. */
  respond(body: Buffer): Promise<HttpResponse> | HttpResponse;
}

export interface Http1Options<C> {
  /** A new connection: its per-connection context, or a response to send before closing it. */
  accept(socket: net.Socket): { context: C } | { refuse: HttpResponse };
  /** A request's head was parsed: how to take its body, or the answer without reading it. */
  begin(head: HttpRequestHead, context: C): HttpExchange | HttpResponse;
  /** The body of a response the server writes itself (400, 408, 413, 431, 500, 505). */
  errorResponse(status: number, code: string, message: string): HttpResponse;
  maxHeadBytes?: number;
  keepAliveMs?: number;
  headMs?: number;
  requestMs?: number;
}

const DEFAULTS = { maxHeadBytes: 16 * 1024, keepAliveMs: 30_000, headMs: 60_000, requestMs: 300_000 };
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const TARGET = /^\/[\x21-\x7e]*$/;

/** A request that cannot be served as sent: answered with `status` and the connection closed. */
class HttpParseError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Http1Server<C> {
  private readonly server: net.Server;
  private readonly conns = new Set<Http1Connection<C>>();
  private sweeper: NodeJS.Timeout | undefined;
  private closing = false;
  readonly limits: typeof DEFAULTS;

  constructor(readonly opts: Http1Options<C>) {
    this.limits = {
      maxHeadBytes: opts.maxHeadBytes ?? DEFAULTS.maxHeadBytes,
      keepAliveMs: opts.keepAliveMs ?? DEFAULTS.keepAliveMs,
      headMs: opts.headMs ?? DEFAULTS.headMs,
      requestMs: opts.requestMs ?? DEFAULTS.requestMs,
    };
    // Half-open: a peer may shut down its side after its last request and still read the answers.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket));
  }

  /** Listens on `path` (a Unix socket). */
  listen(path: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        const { keepAliveMs, headMs, requestMs } = this.limits;
        this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(1000, keepAliveMs, headMs, requestMs) / 2)).unref();
        resolve();
      });
    });
  }

  /** Connections open now. */
  get connections(): number {
    return this.conns.size;
  }

  /**
   * Stops accepting, closes idle connections now and every other one once its current response is
   * written; resolves when all are gone. A handler still running keeps its connection until it answers.
   */
  async close(): Promise<void> {
    this.closing = true;
    const listening = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.conns) c.closeWhenIdle();
    await listening;
    while (this.conns.size > 0) await Promise.all([...this.conns].map((c) => c.closed));
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.closing) {
      socket.destroy();
      return;
    }
    let accepted: { context: C } | { refuse: HttpResponse };
    try {
      accepted = this.opts.accept(socket);
    } catch {
      socket.destroy();
      return;
    }
    if ('refuse' in accepted) {
      // Answer, drop whatever the peer sends, and close when it does (or after a grace period).
      socket.on('data', () => undefined);
      socket.on('end', () => socket.destroy());
      const grace = setTimeout(() => socket.destroy(), 5000).unref();
      socket.once('close', () => clearTimeout(grace));
      socket.end(serialize(accepted.refuse, true, '1.1', false));
      return;
    }
    const conn = new Http1Connection(this, socket, accepted.context);
    this.conns.add(conn);
    void conn.closed.then(() => this.conns.delete(conn));
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.conns) c.checkTimeouts(now);
  }
}

type State =
  /** Reading a request's head (or idle between requests when `buf` is empty). */
  | 'head'
  | 'body'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-end'
  | 'trailer'
  /** A handler is running; the socket is paused. */
  | 'busy'
  /** The last response is written; what arrives is dropped until the peer closes. */
  | 'draining';

class Http1Connection<C> {
  readonly closed: Promise<void>;
  private state: State = 'head';
  private buf: Buffer | undefined;
  /** When the current request's first byte arrived, or when the connection went idle. */
  private since = Date.now();
  private head: HttpRequestHead | undefined;
  private exchange: HttpExchange | undefined;
  private keepAlive = true;
  private chunks: Buffer[] = [];
  private received = 0;
  /** Bytes left in a Content-Length body or in the current chunk. */
  private remaining = 0;
  private trailerBytes = 0;
  private closeAfter = false;
  /** The peer shut down its sending side: serve what is buffered, then close. */
  private peerEnded = false;
  private dead = false;

  constructor(
    private readonly server: Http1Server<C>,
    private readonly socket: net.Socket,
    private readonly context: C,
  ) {
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.dead = true;
        resolve();
      }),
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      this.endIfStarved();
    });
  }

  /** Server shutdown: drop a connection that has no request being handled; the others close after their answer. */
  closeWhenIdle(): void {
    this.closeAfter = true;
    if (this.state !== 'busy') this.socket.destroy();
  }

  /** After the peer's end: once nothing buffered can complete a request, close our side too. */
  private endIfStarved(): void {
    if (!this.peerEnded || this.state === 'busy' || this.state === 'draining') return;
    this.state = 'draining';
    this.buf = undefined;
    this.socket.end();
  }

  checkTimeouts(now: number): void {
    const { keepAliveMs, headMs, requestMs } = this.server.limits;
    const age = now - this.since;
    if (this.state === 'draining') {
      if (age > headMs) this.socket.destroy();
    } else if (this.idle()) {
      if (age > keepAliveMs) this.socket.destroy();
    } else if (this.state === 'head') {
      if (age > headMs) this.fail(new HttpParseError(408, 'REQUEST_TIMEOUT', `request head not complete within ${headMs} ms`));
    } else if (this.state !== 'busy') {
      if (age > requestMs) this.fail(new HttpParseError(408, 'REQUEST_TIMEOUT', `request body not complete within ${requestMs} ms`));
    }
  }

  private idle(): boolean {
    return this.state === 'head' && this.buf === undefined;
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'draining') return;
    if (this.buf === undefined) {
      this.buf = chunk;
      if (this.state === 'head') this.since = Date.now();
    } else this.buf = Buffer.concat([this.buf, chunk]);
    if (this.state === 'busy') return;
    this.process();
  }

  /** Parses what is buffered; a malformed request is answered and the connection closed. */
  private process(): void {
    try {
      this.advance();
    } catch (err) {
      this.fail(err instanceof HttpParseError ? err : new HttpParseError(400, 'BAD_REQUEST', 'malformed request'));
    }
    this.endIfStarved();
  }

  /** Consumes as much of `buf` as the state allows. */
  private advance(): void {
    while (this.buf !== undefined && this.state !== 'busy' && this.state !== 'draining') {
      const buf = this.buf;
      switch (this.state) {
        case 'head': {
          let start = 0;
          // A server should ignore empty lines before a request-line (RFC 9112 §2.2).
          while (buf.length >= start + 2 && buf[start] === 13 && buf[start + 1] === 10) start += 2;
          const end = buf.indexOf(HEAD_END, start);
          const max = this.server.limits.maxHeadBytes;
          if (end < 0 ? buf.length - start > max : end - start > max) throw new HttpParseError(431, 'HEADERS_TOO_LARGE', `request head exceeds ${max} bytes`);
          if (end < 0) {
            this.buf = start === 0 ? buf : start === buf.length ? undefined : buf.subarray(start);
            return;
          }
          this.take(end + 4);
          this.onHead(parseHead(buf.toString('latin1', start, end)));
          break;
        }
        case 'body':
          if (this.takeBody(buf)) this.dispatch();
          break;
        case 'chunk-size': {
          const eol = buf.indexOf(CRLF);
          if (eol < 0) {
            if (buf.length > 1024) throw new HttpParseError(400, 'BAD_REQUEST', 'chunk size line too long');
            return;
          }
          const size = parseChunkSize(buf.toString('latin1', 0, eol));
          if (size === undefined) throw new HttpParseError(400, 'BAD_REQUEST', 'malformed chunk size');
          this.take(eol + 2);
          if (size === 0) {
            this.state = 'trailer';
            this.trailerBytes = 0;
          } else {
            this.received += size;
            if (this.received > this.exchange!.maxBody) throw tooLarge(this.exchange!.maxBody);
            this.remaining = size;
            this.state = 'chunk-data';
          }
          break;
        }
        case 'chunk-data':
          if (this.takeBody(buf)) this.state = 'chunk-end';
          break;
        case 'chunk-end': {
          if (buf.length < 2) return;
          if (buf[0] !== 13 || buf[1] !== 10) throw new HttpParseError(400, 'BAD_REQUEST', 'chunk data not followed by CRLF');
          this.take(2);
          this.state = 'chunk-size';
          break;
        }
        case 'trailer': {
          const eol = buf.indexOf(CRLF);
          if (eol < 0) {
            if (this.trailerBytes + buf.length > this.server.limits.maxHeadBytes) throw new HttpParseError(431, 'HEADERS_TOO_LARGE', 'trailer section too large');
            return;
          }
          this.trailerBytes += eol + 2;
          if (this.trailerBytes > this.server.limits.maxHeadBytes) throw new HttpParseError(431, 'HEADERS_TOO_LARGE', 'trailer section too large');
          this.take(eol + 2);
          // Trailer fields are read and ignored; an empty line ends the message.
          if (eol === 0) this.dispatch();
          break;
        }
      }
    }
  }

  /** Moves up to `remaining` body bytes from `buf` to the body; true once none remain. */
  private takeBody(buf: Buffer): boolean {
    const n = Math.min(this.remaining, buf.length);
    this.chunks.push(buf.subarray(0, n));
    this.take(n);
    this.remaining -= n;
    return this.remaining === 0;
  }

  /** Drops the first `n` bytes of `buf`. */
  private take(n: number): void {
    const buf = this.buf!;
    this.buf = n >= buf.length ? undefined : buf.subarray(n);
  }

  private onHead(head: HttpRequestHead): void {
    this.head = head;
    const h = head.headers;
    const connection = h['connection']?.toLowerCase();
    this.keepAlive = head.version === '1.1' ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
    // Body framing (RFC 9112 §6.3).
    const te = h['transfer-encoding'];
    const cl = h['content-length'];
    let length = 0;
    let chunked = false;
    if (te !== undefined) {
      if (cl !== undefined) throw new HttpParseError(400, 'BAD_REQUEST', 'both Transfer-Encoding and Content-Length');
      if (te.toLowerCase() !== 'chunked' || head.version !== '1.1') throw new HttpParseError(400, 'BAD_REQUEST', `unsupported Transfer-Encoding '${te.slice(0, 40)}'`);
      chunked = true;
    } else if (cl !== undefined) {
      const declared = parseContentLength(cl);
      if (declared === undefined) throw new HttpParseError(400, 'BAD_REQUEST', 'invalid Content-Length');
      length = declared;
    }
    const expect = h['expect'];
    if (expect !== undefined && expect.toLowerCase() !== '100-continue') throw new HttpParseError(417, 'EXPECTATION_FAILED', `unsupported Expect '${expect.slice(0, 40)}'`);
    const hasBody = chunked || length > 0;

    let begun: HttpExchange | HttpResponse;
    try {
      begun = this.server.opts.begin(head, this.context);
    } catch {
      begun = this.server.opts.errorResponse(500, 'INTERNAL', 'internal error');
    }
    if (!('respond' in begun)) {
      // Answered from the head alone; an unread body cannot be skipped reliably, so close after.
      if (hasBody) this.closeAfter = true;
      this.send(begun);
      return;
    }
    if (length > begun.maxBody) throw tooLarge(begun.maxBody, length);
    this.exchange = begun;
    this.chunks = [];
    this.received = length;
    if (hasBody && expect !== undefined) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    if (chunked) this.state = 'chunk-size';
    else if (length > 0) {
      this.remaining = length;
      this.state = 'body';
    } else this.dispatch();
  }

  /** The request is complete: run its handler with the socket paused. */
  private dispatch(): void {
    const exchange = this.exchange!;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.exchange = undefined;
    this.state = 'busy';
    this.socket.pause();
    let reply: Promise<HttpResponse> | HttpResponse;
    try {
      reply = exchange.respond(body);
    } catch {
      reply = this.server.opts.errorResponse(500, 'INTERNAL', 'internal error');
    }
    if (reply instanceof Promise) {
      reply.then(
        (r) => this.send(r),
        () => this.send(this.server.opts.errorResponse(500, 'INTERNAL', 'internal error')),
      );
    } else this.send(reply);
  }

  /** Writes the response to the current request, then reads the next one (or closes). */
  private send(r: HttpResponse): void {
    if (this.dead) return;
    const head = this.head!;
    this.head = undefined;
    const close = this.closeAfter || !this.keepAlive || this.server.isClosing;
    const flushed = writeResponse(this.socket, r, close, head.version, head.method === 'HEAD');
    if (close) {
      this.state = 'draining';
      this.since = Date.now();
      this.buf = undefined;
      this.socket.end();
      this.socket.resume();
      return;
    }
    this.state = 'head';
    this.since = Date.now();
    const next = (): void => {
      if (this.dead) return;
      this.socket.resume();
      if (this.buf !== undefined) this.since = Date.now();
      this.process();
    };
    if (flushed) next();
    else this.socket.once('drain', next);
  }

  /** Answers a request that cannot be served and closes the connection. */
  private fail(err: HttpParseError): void {
    if (this.dead || this.state === 'draining') return;
    if (this.state === 'busy') {
      this.socket.destroy();
      return;
    }
    this.head ??= { method: 'GET', target: '/', version: '1.1', headers: {} };
    this.closeAfter = true;
    this.send(this.server.opts.errorResponse(err.status, err.code, err.message));
  }
}

function tooLarge(max: number, declared?: number): HttpParseError {
  const what = declared === undefined ? 'request body' : `request body of ${declared} bytes`;
  return new HttpParseError(413, 'PAYLOAD_TOO_LARGE', `${what} exceeds the limit of ${max} bytes`);
}

function hasToken(list: string | undefined, token: string): boolean {
  if (list === undefined) return false;
  return list.split(',').some((t) => t.trim() === token);
}

/** Parses a request head (latin1 text without the final blank line). Throws HttpParseError. */
export function parseHead(text: string): HttpRequestHead {
  const lines = text.split('\r\n');
  const requestLine = lines[0]!;
  const parts = requestLine.split(' ');
  if (parts.length !== 3) throw new HttpParseError(400, 'BAD_REQUEST', 'malformed request line');
  const [method, target, proto] = parts as [string, string, string];
  if (!TOKEN.test(method)) throw new HttpParseError(400, 'BAD_REQUEST', 'malformed method');
  let version: '1.0' | '1.1';
  if (proto === 'HTTP/1.1') version = '1.1';
  else if (proto === 'HTTP/1.0') version = '1.0';
  else if (/^HTTP\/\d\.\d$/.test(proto)) throw new HttpParseError(505, 'HTTP_VERSION_NOT_SUPPORTED', `${proto} is not supported; use HTTP/1.1`);
  else throw new HttpParseError(400, 'BAD_REQUEST', 'malformed request line');
  if (!TARGET.test(target)) throw new HttpParseError(400, 'BAD_REQUEST', 'the request target must be a path starting with /');
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 1; i < lines.length; i++) {
    const field = parseFieldLine(lines[i]!);
    // A name that is not a token also rejects whitespace before the colon and obsolete line folding.
    if ('fault' in field) {
      if (field.fault === 'colon') throw new HttpParseError(400, 'BAD_REQUEST', 'malformed header line');
      if (field.fault === 'name') throw new HttpParseError(400, 'BAD_REQUEST', 'malformed header name');
      throw new HttpParseError(400, 'BAD_REQUEST', `invalid character in header ${field.name!.slice(0, 40)}`);
    }
    const { name, value } = field;
    const key = name.toLowerCase();
    const prev = headers[key];
    headers[key] = prev === undefined ? value : `${prev}, ${value}`;
  }
  return { method, target, version, headers };
}

let dateText = '';
let dateAt = 0;

function httpDate(): string {
  const now = Date.now();
  if (now - dateAt >= 1000) {
    dateAt = now - (now % 1000);
    dateText = new Date(dateAt).toUTCString();
  }
  return dateText;
}

/** The whole response as one buffer-able string (the head) plus its body. */
function serialize(r: HttpResponse, close: boolean, version: '1.0' | '1.1', headOnly: boolean, bodyLength?: number): string {
  const body = r.body ?? '';
  const length = bodyLength ?? (typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  let text = `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'Unknown'}\r\nDate: ${httpDate()}\r\n`;
  if (r.headers) for (const k in r.headers) text += `${k}: ${r.headers[k]}\r\n`;
  // 204 and 304 have no body and no length (RFC 9110 §8.6).
  if (r.status !== 204 && r.status !== 304) text += `Content-Length: ${length}\r\n`;
  if (close) text += 'Connection: close\r\n';
  else if (version === '1.0') text += 'Connection: keep-alive\r\n';
  text += '\r\n';
  if (!headOnly && typeof body === 'string' && r.status !== 204 && r.status !== 304) text += body;
  return text;
}

/** Writes `r` in one write (head and a string body together); false when the socket buffered it. */
function writeResponse(socket: net.Socket, r: HttpResponse, close: boolean, version: '1.0' | '1.1', headOnly: boolean): boolean {
  const body = r.body;
  if (body === undefined || typeof body === 'string' || headOnly) return socket.write(serialize(r, close, version, headOnly));
  socket.cork();
  socket.write(serialize(r, close, version, headOnly, body.length));
  const ok = socket.write(body);
  socket.uncork();
  return ok;
}
