/**
 * The control API: HTTP/1.1 + JSON on a Unix socket. Every connection is checked with the peer's
 * credentials (SO_PEERCRED): root, or a member of the configured group, may talk; anyone else gets
 * 403 and the connection is closed. Errors are `{"error":{"code","message"}}`, the status chosen
 * from the error's code in one place (http-status.ts).
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { dirname } from 'node:path';
import { HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import { httpStatusOf } from './http-status.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface ApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  peer: PeerCredentials;
}

export interface ApiReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type ApiHandler = (req: ApiRequest) => Promise<ApiReply> | ApiReply;

export interface Route {
  method: string;
  /** Path pattern with `{name}` placeholders, e.g. `/v1/functions/{name}/invoke`. */
  pattern: string;
  handler: ApiHandler;
  /** Largest request body accepted, bytes (413 past it). */
  maxBody: number;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  keys: string[];
}

export interface ControlServerOptions {
  socketPath: string;
  /** gid allowed besides root; undefined: root only. */
  allowedGid?: number;
  routes: Route[];
  peerCredentials: (socket: net.Socket) => PeerCredentials;
  log: Logger;
}

export class ControlServer {
  private server: http.Server | undefined;
  private readonly routes: CompiledRoute[];
  private readonly peers = new WeakMap<net.Socket, PeerCredentials>();

  constructor(private readonly opts: ControlServerOptions) {
    this.routes = opts.routes.map((r) => {
      const keys: string[] = [];
      const src = r.pattern.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, k: string) => {
        keys.push(k);
        return '([^/]+)';
      });
      return { ...r, regex: new RegExp(`^${src}$`), keys };
    });
  }

  async start(): Promise<void> {
    const { socketPath } = this.opts;
    mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
    removeStaleSocket(socketPath);
    const server = http.createServer({ keepAlive: true }, (req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on('connection', (socket: net.Socket) => this.checkPeer(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(socketPath, 0o660);
    if (this.opts.allowedGid !== undefined) chownSync(socketPath, 0, this.opts.allowedGid);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    rmSync(this.opts.socketPath, { force: true });
  }

  private checkPeer(socket: net.Socket): void {
    let peer: PeerCredentials;
    try {
      peer = this.opts.peerCredentials(socket);
    } catch (err) {
      this.opts.log.warn({ err }, 'cannot read peer credentials; closing connection');
      socket.destroy();
      return;
    }
    if (!this.allowed(peer)) {
      this.opts.log.warn({ uid: peer.uid, gid: peer.gid, pid: peer.pid }, 'control socket: peer not allowed');
      const body = JSON.stringify({ error: { code: 'FORBIDDEN', message: `uid ${peer.uid} may not use the control socket` } });
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    this.peers.set(socket, peer);
  }

  private allowed(peer: PeerCredentials): boolean {
    if (peer.uid === 0) return true;
    const gid = this.opts.allowedGid;
    if (gid === undefined) return false;
    if (peer.gid === gid) return true;
    return supplementaryGroups(peer.pid).includes(gid);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const peer = this.peers.get(req.socket);
    if (!peer) {
      res.destroy();
      return;
    }
    let reply: ApiReply;
    try {
      reply = await this.dispatch(req, peer);
    } catch (err) {
      reply = errorReply(err, this.opts.log);
    }
    if (res.destroyed) return;
    const payload = reply.body === undefined ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(payload),
      ...reply.headers,
    });
    res.end(payload);
  }

  private async dispatch(req: http.IncomingMessage, peer: PeerCredentials): Promise<ApiReply> {
    // A plain path (the usual request) is its own pathname, with no query: skip the URL parser.
    const raw = req.url ?? '/';
    const url = PLAIN_PATH.test(raw) ? { pathname: raw, searchParams: NO_QUERY } : new URL(raw, 'http://hearth');
    const method = req.method ?? 'GET';
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.regex.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1]!)));
      const body = await readBody(req, route.maxBody);
      return route.handler({ method, path: url.pathname, params, query: url.searchParams, headers: req.headers, body, peer });
    }
    req.resume();
    if (pathMatched) throw new HearthError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`);
    throw new HearthError('NOT_FOUND', `no such endpoint: ${method} ${url.pathname}`);
  }
}

/** Paths that the WHATWG URL parser returns unchanged (no dot segments, escapes or query). */
const PLAIN_PATH = /^\/[A-Za-z0-9_\-/]*$/;
const NO_QUERY = new URLSearchParams();

export function errorReply(err: unknown, log: Logger): ApiReply {
  if (isHearthError(err)) {
    const headers: Record<string, string> = {};
    const retryAfter = err.details?.['retryAfterS'];
    if (typeof retryAfter === 'number') headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfter)));
    return { status: httpStatusOf(err.code), body: { error: { code: err.code, message: err.message } }, headers };
  }
  log.error({ err }, 'internal error');
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error; see the daemon log' } } };
}

/** Reads a request body, refusing (413) past `max` bytes without buffering the rest. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) {
    req.resume();
    return Promise.reject(new HearthError('PAYLOAD_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${max} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > max) {
        failed = true;
        reject(new HearthError('PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', (e) => {
      if (!failed) reject(e);
    });
  });
}

function supplementaryGroups(pid: number): number[] {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const line = /^Groups:\s*(.*)$/m.exec(status);
    return line ? line[1]!.split(/\s+/).filter(Boolean).map(Number) : [];
  } catch {
    return [];
  }
}

function removeStaleSocket(path: string): void {
  try {
    const st = statSync(path);
    if (st.isSocket()) rmSync(path);
    else throw new HearthError('CONFIG', `${path} exists and is not a socket; refusing to replace it`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Parses a JSON body, or throws a 400 that names the fault. */
export function parseJson(body: Buffer, what = 'request body'): unknown {
  if (body.length === 0) throw new HearthError('BAD_REQUEST', `${what} is empty; expected JSON`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HearthError('BAD_REQUEST', `${what} is not valid JSON: ${(err as Error).message}`);
  }
}
