/**
 * One connection of the control server (src/control/http1.ts): parses requests from the socket's
 * bytes (head, Content-Length or chunked body, trailers), runs one handler at a time with the
 * socket paused, writes each answer, and enforces the limits and timeouts the server sets.
 */
import type net from 'node:net';
import type { Http1Server, HttpExchange } from './http1.js';
import { hasToken, HttpParseError, parseHead, tooLarge, writeResponse, type HttpRequestHead, type HttpResponse } from './http1-message.js';
import { parseChunkSize, parseContentLength } from './http-syntax.js';

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

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

export class Http1Connection<C> {
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
            if (this.trailerBytes + buf.length > this.server.limits.maxHeadBytes)
              throw new HttpParseError(431, 'HEADERS_TOO_LARGE', 'trailer section too large');
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
      if (te.toLowerCase() !== 'chunked' || head.version !== '1.1')
        throw new HttpParseError(400, 'BAD_REQUEST', `unsupported Transfer-Encoding '${te.slice(0, 40)}'`);
      chunked = true;
    } else if (cl !== undefined) {
      const declared = parseContentLength(cl);
      if (declared === undefined) throw new HttpParseError(400, 'BAD_REQUEST', 'invalid Content-Length');
      length = declared;
    }
    const expect = h['expect'];
    if (expect !== undefined && expect.toLowerCase() !== '100-continue')
      throw new HttpParseError(417, 'EXPECTATION_FAILED', `unsupported Expect '${expect.slice(0, 40)}'`);
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
    const body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
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
