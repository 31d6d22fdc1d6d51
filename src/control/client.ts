/**
 * The client side of the control API (src/control/http1.ts is the server): HTTP/1.1 + JSON over
 * the control socket. The CLI, the demo, the benchmarks and the tests reach the daemon through it.
 *
 * A small hand-written HTTP/1.1 client on raw `net` sockets. node's `http`
 * client costs measurably more per round trip, and this client sits in the
 * path the benchmarks time. It speaks just enough HTTP for a local JSON API:
 * one request per connection at a time (no pipelining), a keep-alive pool of
 * up to 64 connections (idle ones reused LIFO, extra requests queued FIFO),
 * Content-Length / chunked / read-until-close bodies, 1xx interim answers
 * skipped, and one transparent retry when a pooled connection turns out to
 * have been closed by the server before any byte of the answer came back.
 */
import { asError } from '../errors.js';
import { Conn, type ApiResponse, type ConnPool, type Req } from './client-connection.js';
import { TOKEN } from './http-syntax.js';

export type { ApiResponse } from './client-connection.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export class ControlClient {
  private readonly pool: Pool;
  constructor(readonly socketPath: string) {
    this.pool = new Pool(socketPath);
  }

  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      let req: Req;
      try {
        req = buildRequest(method, path, body, headers, resolve, reject);
      } catch (err) {
        reject(asError(err));
        return;
      }
      this.pool.dispatch(req);
    });
  }

  /** Like request, but throws ApiError for a non-2xx answer. */
  async call<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.request(method, path, body, headers);
    if (res.status >= 200 && res.status < 300) return res.body as T;
    const err = (res.body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(res.status, err?.code ?? 'HTTP_' + res.status, err?.message ?? `HTTP ${res.status}`);
  }

  /**
   * Destroys every connection, idle or busy; requests in flight or queued reject.
   * The client stays usable: later requests open new connections.
   */
  close(): void {
    this.pool.destroyAll();
  }
}

// ---------------------------------------------------------------------------
// Requests

const MAX_CONNECTIONS = 64;

const INVALID_PATH = /[^\u0021-\u00ff]/;
const INVALID_VALUE = /[^\t\u0020-\u007e\u0080-\u00ff]/;
const NON_ASCII = /[\u0080-\uffff]/;

function buildRequest(
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  resolve: (r: ApiResponse) => void,
  reject: (e: Error) => void,
): Req {
  method = method.toUpperCase();
  if (!TOKEN.test(method)) throw new TypeError(`invalid HTTP method ${JSON.stringify(method)}`);
  if (INVALID_PATH.test(path)) throw new TypeError(`request path contains unescaped characters: ${JSON.stringify(path)}`);
  let payload: string | Buffer | undefined;
  if (body !== undefined) payload = Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : JSON.stringify(body);
  let head = method + ' ' + path + ' HTTP/1.1\r\nHost: localhost\r\n';
  let extra = '';
  let ownType = false;
  let ownLength = false;
  for (const name in headers) {
    const value = String(headers[name]);
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    if (INVALID_VALUE.test(value)) throw new TypeError(`invalid characters in header ${name}`);
    const lower = name.toLowerCase();
    if (lower === 'content-type') ownType = true;
    else if (lower === 'content-length') ownLength = true;
    else if (lower === 'host') {
      head = method + ' ' + path + ' HTTP/1.1\r\n';
    }
    extra += name + ': ' + value + '\r\n';
  }
  if (payload === undefined) {
    head += extra + '\r\n';
    return { data: head, enc: 'latin1', head: method === 'HEAD', resolve, reject, retried: false };
  }
  const len = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  if (!ownType) head += 'Content-Type: application/json\r\n';
  if (!ownLength) head += 'Content-Length: ' + len + '\r\n';
  head += extra + '\r\n';
  let data: string | Buffer;
  let enc: BufferEncoding = 'utf8';
  if (typeof payload === 'string' && !NON_ASCII.test(head)) {
    // An ASCII head reads the same in utf8: one string, encoded once by the socket.
    data = head + payload;
  } else {
    const headLen = Buffer.byteLength(head, 'latin1');
    const buf = Buffer.allocUnsafe(headLen + len);
    buf.write(head, 0, 'latin1');
    if (typeof payload === 'string') buf.write(payload, headLen, 'utf8');
    else payload.copy(buf, headLen);
    data = buf;
    enc = 'latin1';
  }
  return { data, enc, head: method === 'HEAD', resolve, reject, retried: false };
}

// ---------------------------------------------------------------------------
// The connection pool

class Pool implements ConnPool {
  readonly conns = new Set<Conn>();
  /** Idle keep-alive connections; the most recently used is last (LIFO). */
  readonly idle: Conn[] = [];
  /** Requests waiting for a connection (FIFO from `waitHead`). */
  private waiting: Array<Req | undefined> = [];
  private waitHead = 0;

  constructor(readonly socketPath: string) {}

  dispatch(req: Req): void {
    const idle = this.idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      if (conn.reusable()) {
        conn.start(req);
        return;
      }
      conn.discard();
    }
    if (this.conns.size < MAX_CONNECTIONS) {
      this.open(req);
      return;
    }
    this.waiting.push(req);
  }

  /** A fresh connection for `req`, whatever sits idle. */
  open(req: Req): void {
    const conn = new Conn(this);
    this.conns.add(conn);
    conn.start(req);
  }

  /** `conn` finished its answer and may carry another request. */
  release(conn: Conn): void {
    const next = this.nextWaiting();
    if (next) {
      conn.start(next);
      return;
    }
    conn.socket.unref();
    this.idle.push(conn);
  }

  /** `conn` is gone: forget it and let a queued request take its slot. */
  remove(conn: Conn): void {
    this.conns.delete(conn);
    const i = this.idle.lastIndexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Starts queued requests while there are free slots. */
  drain(): void {
    while (this.waitHead < this.waiting.length && this.conns.size < MAX_CONNECTIONS) {
      this.dispatch(this.nextWaiting()!);
    }
  }

  destroyAll(): void {
    const err = Object.assign(new Error('control client closed'), { code: 'ECONNRESET' });
    const waiting = this.waiting.slice(this.waitHead);
    this.waiting = [];
    this.waitHead = 0;
    this.idle.length = 0;
    const conns = [...this.conns];
    this.conns.clear();
    for (const conn of conns) conn.abort(err);
    for (const req of waiting) req?.reject(err);
  }

  private nextWaiting(): Req | undefined {
    if (this.waitHead >= this.waiting.length) return undefined;
    const req = this.waiting[this.waitHead];
    this.waiting[this.waitHead++] = undefined;
    if (this.waitHead === this.waiting.length) {
      this.waiting.length = 0;
      this.waitHead = 0;
    }
    return req;
  }
}
