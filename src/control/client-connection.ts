/**
 * One keep-alive connection of the control client (src/control/client.ts) and its HTTP/1.1
 * response parser: Content-Length, chunked and read-until-close bodies, 1xx answers skipped,
 * the connection handed back to its pool when the answer is complete and it may be reused.
 */
import net from 'node:net';
import type http from 'node:http';
import { parseChunkSize, parseContentLength, parseFieldLine } from './http-syntax.js';

export interface ApiResponse {
  status: number;
  body: unknown;
  headers: http.IncomingHttpHeaders;
}

/** One request on its way: what to write and whom to answer. */
export interface Req {
  /** The whole request (head and body), ready to write. */
  readonly data: string | Buffer;
  /** Encoding of `data` when it is a string. */
  readonly enc: BufferEncoding;
  readonly head: boolean;
  readonly resolve: (r: ApiResponse) => void;
  readonly reject: (e: Error) => void;
  retried: boolean;
}

/** What a connection needs of its pool. */
export interface ConnPool {
  readonly socketPath: string;
  /** `conn` finished its answer and may carry another request. */
  release(conn: Conn): void;
  /** `conn` is gone. */
  remove(conn: Conn): void;
  /** Starts queued requests while there are free slots. */
  drain(): void;
  /** A fresh connection for `req`. */
  open(req: Req): void;
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 8 * 1024;

// ---------------------------------------------------------------------------
// One connection and its response parser

// Parser states.
const S_HEAD = 0;
const S_LENGTH = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_DATA = 3;
const S_CHUNK_END = 4;
const S_TRAILERS = 5;
const S_UNTIL_CLOSE = 6;
const S_DONE = 7;

/** Errors after which a request that got no byte back on a reused connection is retried. */
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_WRITE_AFTER_END', 'ERR_STREAM_DESTROYED']);

class ProtocolError extends Error {
  readonly code = 'HPE_INVALID_RESPONSE';
  constructor(message: string) {
    super(`malformed HTTP response from the control socket: ${message}`);
    this.name = 'ProtocolError';
  }
}

function hangUp(): Error {
  return Object.assign(new Error('control socket closed before a complete response arrived'), { code: 'ECONNRESET' });
}

export class Conn {
  readonly socket: net.Socket;
  private req: Req | null = null;
  private dead = false;
  /** Requests started on this connection. */
  private served = 0;
  /** Date.now() after which the server may have dropped this idle connection (from `Keep-Alive: timeout=`). */
  private expires = Infinity;
  /** Bytes received for the current request. */
  private received = 0;

  // Parser state for the current response.
  private st = S_HEAD;
  private partial: Buffer | null = null;
  private line = '';
  private remaining = 0;
  private status = 0;
  private headers: http.IncomingHttpHeaders = {};
  private keepAlive = true;
  private chunks: Buffer[] = [];
  private bodyLen = 0;

  constructor(private readonly pool: ConnPool) {
    const s = net.connect(pool.socketPath);
    this.socket = s;
    s.on('data', (c: Buffer) => this.onData(c));
    s.on('end', () => this.onEnd());
    s.on('error', (e: NodeJS.ErrnoException) => this.fail(e, e.code !== undefined && STALE_CODES.has(e.code)));
    s.on('close', () => this.fail(hangUp(), true));
  }

  reusable(): boolean {
    return !this.dead && !this.socket.destroyed && this.socket.writable && (this.expires === Infinity || Date.now() < this.expires);
  }

  start(req: Req): void {
    this.req = req;
    this.received = 0;
    this.st = S_HEAD;
    if (this.served++ > 0) this.socket.ref();
    this.socket.write(req.data, req.enc);
  }

  /** Drops an idle connection that is no longer good for reuse. */
  discard(): void {
    this.dead = true;
    this.pool.remove(this);
    this.socket.destroy();
  }

  /** For close(): reject the request in flight, destroy quietly. */
  abort(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    const req = this.req;
    this.req = null;
    this.socket.destroy();
    req?.reject(err);
  }

  private fail(err: Error, stale: boolean): void {
    if (this.dead) return;
    this.dead = true;
    const req = this.req;
    this.req = null;
    this.socket.destroy();
    this.pool.remove(this);
    if (req) {
      if (stale && this.served > 1 && this.received === 0 && !req.retried) {
        // Keep-alive race: the server closed this pooled connection as we wrote to it.
        req.retried = true;
        this.pool.open(req);
        return;
      }
      req.reject(err);
    }
    this.pool.drain();
  }

  private onEnd(): void {
    if (this.req && this.st === S_UNTIL_CLOSE) {
      this.st = S_DONE;
      this.finish(false);
      return;
    }
    this.fail(hangUp(), true);
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    if (this.req === null) {
      // Nothing was asked: whatever this is, the connection is no longer in step.
      this.discard();
      this.pool.drain();
      return;
    }
    this.received += chunk.length;
    let rest: number;
    try {
      rest = this.feed(chunk);
    } catch (err) {
      this.fail(err as Error, false);
      return;
    }
    // Bytes after a complete answer were never asked for: do not reuse.
    if (this.st === S_DONE) this.finish(this.keepAlive && rest === 0);
  }

  /** Parses `buf`; returns how many bytes are left over after a complete response. */
  private feed(buf: Buffer): number {
    let pos = 0;
    let n = buf.length;
    for (;;) {
      switch (this.st) {
        case S_HEAD: {
          let b = pos === 0 ? buf : buf.subarray(pos);
          let from = 0;
          if (this.partial !== null) {
            from = this.partial.length > 3 ? this.partial.length - 3 : 0;
            b = Buffer.concat([this.partial, b]);
            this.partial = null;
          }
          const end = b.indexOf('\r\n\r\n', from, 'latin1');
          if (end < 0) {
            if (b.length > MAX_HEAD_BYTES) throw new ProtocolError('response head too large');
            this.partial = b;
            return 0;
          }
          this.parseHead(b.toString('latin1', 0, end));
          buf = b;
          pos = end + 4;
          n = b.length;
          break;
        }
        case S_LENGTH: {
          const avail = n - pos;
          if (avail === 0) return 0;
          const take = avail < this.remaining ? avail : this.remaining;
          this.push(pos === 0 && take === n ? buf : buf.subarray(pos, pos + take));
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.st = S_DONE;
          break;
        }
        case S_CHUNK_SIZE:
        case S_CHUNK_END:
        case S_TRAILERS: {
          const nl = buf.indexOf(10, pos);
          if (nl < 0) {
            if (pos < n) this.line += buf.toString('latin1', pos, n);
            if (this.line.length > MAX_LINE_BYTES) throw new ProtocolError('chunk line too long');
            return 0;
          }
          let line = this.line + buf.toString('latin1', pos, nl);
          this.line = '';
          pos = nl + 1;
          if (line.length > MAX_LINE_BYTES) throw new ProtocolError('chunk line too long');
          if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
          if (this.st === S_CHUNK_SIZE) {
            const size = parseChunkSize(line);
            if (size === undefined) throw new ProtocolError(`bad chunk size ${JSON.stringify(line.slice(0, 80))}`);
            if (size === 0) this.st = S_TRAILERS;
            else {
              this.remaining = size;
              this.st = S_CHUNK_DATA;
            }
          } else if (this.st === S_CHUNK_END) {
            if (line.length !== 0) throw new ProtocolError('missing CRLF after chunk data');
            this.st = S_CHUNK_SIZE;
          } else if (line.length === 0) {
            this.st = S_DONE; // end of trailers (ignored)
          }
          break;
        }
        case S_CHUNK_DATA: {
          const avail = n - pos;
          if (avail === 0) return 0;
          const take = avail < this.remaining ? avail : this.remaining;
          this.push(buf.subarray(pos, pos + take));
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.st = S_CHUNK_END;
          break;
        }
        case S_UNTIL_CLOSE:
          if (pos < n) this.push(pos === 0 ? buf : buf.subarray(pos));
          return 0;
        default: // S_DONE
          return n - pos;
      }
    }
  }

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.bodyLen += b.length;
  }

  private parseHead(head: string): void {
    let eol = head.indexOf('\r\n');
    if (eol < 0) eol = head.length;
    // "HTTP/1.1 200 OK"
    if (
      eol < 12 ||
      !head.startsWith('HTTP/1.') ||
      (head.charCodeAt(7) !== 49 && head.charCodeAt(7) !== 48) ||
      head.charCodeAt(8) !== 32 ||
      !isDigit(head.charCodeAt(9)) ||
      !isDigit(head.charCodeAt(10)) ||
      !isDigit(head.charCodeAt(11)) ||
      (eol > 12 && head.charCodeAt(12) !== 32)
    ) {
      throw new ProtocolError(`bad status line ${JSON.stringify(head.slice(0, Math.min(eol, 80)))}`);
    }
    const http10 = head.charCodeAt(7) === 48;
    const status = (head.charCodeAt(9) - 48) * 100 + (head.charCodeAt(10) - 48) * 10 + (head.charCodeAt(11) - 48);
    const headers: http.IncomingHttpHeaders = {};
    let contentLength: string | undefined;
    let transferEncoding: string | undefined;
    let connection: string | undefined;
    let keepAliveHint: string | undefined;
    let pos = eol + 2;
    while (pos < head.length) {
      let e = head.indexOf('\r\n', pos);
      if (e < 0) e = head.length;
      const field = parseFieldLine(head.slice(pos, e));
      if ('fault' in field) throw new ProtocolError(`bad header line ${JSON.stringify(head.slice(pos, Math.min(e, pos + 80)))}`);
      const name = field.name.toLowerCase();
      const value = field.value;
      pos = e + 2;
      if (name === 'content-length') contentLength = contentLength === undefined ? value : contentLength + ',' + value;
      else if (name === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : transferEncoding + ',' + value;
      else if (name === 'connection') connection = connection === undefined ? value : connection + ',' + value;
      else if (name === 'keep-alive') keepAliveHint = value;
      else if (name === '__proto__') continue;
      const prev = headers[name];
      if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
      else if (Array.isArray(prev)) prev.push(value);
      else headers[name] = prev + ', ' + value;
    }

    if (status < 200) {
      if (status === 101) throw new ProtocolError('unexpected 101 Switching Protocols');
      if (status < 100) throw new ProtocolError(`bad status ${status}`);
      this.st = S_HEAD; // interim answer (100 Continue, 103 Early Hints, ...): the real one follows
      return;
    }
    this.status = status;
    this.headers = headers;
    this.chunks = [];
    this.bodyLen = 0;
    this.line = '';
    let keepAlive = !http10;
    if (connection !== undefined) {
      const c = connection.toLowerCase();
      if (c.includes('close')) keepAlive = false;
      else if (http10 && c.includes('keep-alive')) keepAlive = true;
    }
    if (keepAliveHint !== undefined) {
      const m = /(?:^|[\s,])timeout=(\d+)/i.exec(keepAliveHint);
      // Like node's Agent: stop reusing the connection a second before the server drops it.
      if (m) this.expires = Date.now() + Number(m[1]) * 1000 - 1000;
    }
    this.keepAlive = keepAlive;

    if (this.req!.head || status === 204 || status === 304) {
      this.st = S_DONE;
    } else if (transferEncoding !== undefined) {
      const te = transferEncoding.toLowerCase();
      const last = te.slice(te.lastIndexOf(',') + 1).trim();
      if (last === 'chunked') this.st = S_CHUNK_SIZE;
      else {
        this.st = S_UNTIL_CLOSE;
        this.keepAlive = false;
      }
    } else if (contentLength !== undefined) {
      const length = parseContentLength(contentLength);
      if (length === undefined) throw new ProtocolError(`bad or conflicting Content-Length ${JSON.stringify(contentLength.slice(0, 80))}`);
      this.remaining = length;
      this.st = this.remaining === 0 ? S_DONE : S_LENGTH;
    } else {
      this.st = S_UNTIL_CLOSE;
      this.keepAlive = false;
    }
  }

  /** Hands the complete response to its request; pools or closes the connection. */
  private finish(reuse: boolean): void {
    const req = this.req!;
    this.req = null;
    const chunks = this.chunks;
    let text = '';
    if (this.bodyLen > 0) text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.bodyLen)).toString('utf8');
    this.chunks = [];
    this.bodyLen = 0;
    const res: ApiResponse = { status: this.status, body: undefined, headers: this.headers };
    this.headers = {};
    if (text) {
      try {
        res.body = JSON.parse(text);
      } catch {
        res.body = text;
      }
    }
    if (reuse) this.pool.release(this);
    else {
      this.dead = true;
      this.socket.destroy();
      this.pool.remove(this);
      this.pool.drain();
    }
    req.resolve(res);
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
