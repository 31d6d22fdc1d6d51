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
 *
 * The server (accepting, limits, shutdown) is here; one connection's parser and state machine in
 * http1-connection.ts; request heads and response bytes in http1-message.ts; the syntax it shares
 * with the client (src/control/client.ts) in http-syntax.ts.
 */
import net from 'node:net';
import { Http1Connection } from './http1-connection.js';
import { serialize, type HttpRequestHead, type HttpResponse } from './http1-message.js';

export { parseHead, type HttpRequestHead, type HttpResponse } from './http1-message.js';

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

  /** Listens on `at`: a Unix socket's path, or a TCP host and port (port 0: any free port). */
  listen(at: string | { host: string; port: number }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const onListening = (): void => {
        this.server.off('error', reject);
        const { keepAliveMs, headMs, requestMs } = this.limits;
        this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(1000, keepAliveMs, headMs, requestMs) / 2)).unref();
        resolve();
      };
      if (typeof at === 'string') this.server.listen(at, onListening);
      else this.server.listen(at.port, at.host, onListening);
    });
  }

  /** Where it listens (TCP: address and port), after `listen`. */
  address(): net.AddressInfo | string | null {
    return this.server.address();
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
