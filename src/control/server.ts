/**
 * The control API: HTTP/1.1 + JSON on a Unix socket (the wire format in http1.ts). Every
 * connection is checked with the peer's credentials (SO_PEERCRED): root, or a member of the
 * configured group, may talk; anyone else gets 403 and the connection is closed. Errors are
 * `{"error":{"code","message"}}`, the status chosen from the error's code in one place
 * (http-status.ts).
 */
import { chmodSync, chownSync, linkSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { HearthError, isHearthError } from '../errors.js';
import type { Logger } from '../log.js';
import { httpStatusOf } from './http-status.js';
import { Http1Server, type HttpExchange, type HttpRequestHead, type HttpResponse } from './http1.js';

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
  /** Lower-case names; a repeated field's values joined with `, `. */
  headers: Readonly<Record<string, string>>;
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
  private server: Http1Server<PeerCredentials> | undefined;
  /** Identity of the socket file this server created (removed at stop only while it is still it). */
  private socketId: { dev: number; ino: number } | undefined;
  private readonly routes: CompiledRoute[];

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
    await claimSocketPath(socketPath, this.opts.peerCredentials);
    const server = new Http1Server<PeerCredentials>({
      accept: (socket) => this.checkPeer(socket),
      begin: (head, peer) => this.begin(head, peer),
      errorResponse: (status, code, message) => toResponse({ status, body: { error: { code, message } } }),
    });
    // Bound under a private name, then linked into place: link() never replaces a socket that
    // appeared meanwhile, and the name libuv unlinks at close is the private one, never socketPath
    // (which by then may be another daemon's).
    const bound = `${socketPath}.${process.pid}.new`;
    rmSync(bound, { force: true });
    await server.listen(bound);
    try {
      linkSync(bound, socketPath);
    } catch (err) {
      await server.close();
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new HearthError('CONFLICT', `control socket ${socketPath} was taken by another daemon while this one started`);
      throw err;
    } finally {
      rmSync(bound, { force: true });
    }
    this.server = server;
    const st = statSync(socketPath);
    this.socketId = { dev: st.dev, ino: st.ino };
    chmodSync(socketPath, 0o660);
    if (this.opts.allowedGid !== undefined) chownSync(socketPath, 0, this.opts.allowedGid);
  }

  /** Stops accepting; idle connections close now, the others after their current answer. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await server.close();
    // Only the socket this server made: another daemon may have taken the path over since.
    const id = this.socketId;
    this.socketId = undefined;
    try {
      const st = statSync(this.opts.socketPath);
      if (id && st.dev === id.dev && st.ino === id.ino) rmSync(this.opts.socketPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private checkPeer(socket: net.Socket): { context: PeerCredentials } | { refuse: HttpResponse } {
    let peer: PeerCredentials;
    try {
      peer = this.opts.peerCredentials(socket);
    } catch (err) {
      this.opts.log.warn({ err }, 'cannot read peer credentials; closing connection');
      throw err;
    }
    if (!this.allowed(peer)) {
      this.opts.log.warn({ peerUid: peer.uid, peerGid: peer.gid, peerPid: peer.pid }, 'control socket: peer not allowed');
      return { refuse: toResponse({ status: 403, body: { error: { code: 'FORBIDDEN', message: `uid ${peer.uid} may not use the control socket` } } }) };
    }
    return { context: peer };
  }

  private allowed(peer: PeerCredentials): boolean {
    if (peer.uid === 0) return true;
    const gid = this.opts.allowedGid;
    if (gid === undefined) return false;
    if (peer.gid === gid) return true;
    return supplementaryGroups(peer.pid).includes(gid);
  }

  /** Routes a request from its head: the route's body limit and handler, or an error answer. */
  private begin(head: HttpRequestHead, peer: PeerCredentials): HttpExchange | HttpResponse {
    try {
      // A plain path (the usual request) is its own pathname, with no query: skip the URL parser.
      const raw = head.target;
      const url = PLAIN_PATH.test(raw) ? { pathname: raw, searchParams: NO_QUERY } : parseTarget(raw);
      const { method } = head;
      let pathMatched = false;
      for (const route of this.routes) {
        const m = route.regex.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (route.method !== method) continue;
        const params: Record<string, string> = {};
        route.keys.forEach((k, i) => (params[k] = decodePathSegment(m[i + 1])));
        const req = { method, path: url.pathname, params, query: url.searchParams, headers: head.headers, peer };
        return { maxBody: route.maxBody, respond: (body) => this.run(route, { ...req, body }) };
      }
      if (pathMatched) throw new HearthError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`);
      throw new HearthError('NOT_FOUND', `no such endpoint: ${method} ${url.pathname}`);
    } catch (err) {
      return toResponse(errorReply(err, this.opts.log));
    }
  }

  private async run(route: CompiledRoute, req: ApiRequest): Promise<HttpResponse> {
    let reply: ApiReply;
    try {
      reply = await route.handler(req);
    } catch (err) {
      reply = errorReply(err, this.opts.log);
    }
    return toResponse(reply);
  }
}

function toResponse(reply: ApiReply): HttpResponse {
  const headers = reply.headers ? { 'Content-Type': 'application/json', ...reply.headers } : JSON_HEADERS;
  return { status: reply.status, headers, body: reply.body === undefined ? '' : JSON.stringify(reply.body) };
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function parseTarget(raw: string): { pathname: string; searchParams: URLSearchParams } {
  try {
    return new URL(raw, 'http://hearth');
  } catch {
    throw new HearthError('BAD_REQUEST', 'malformed request target');
  }
}

function decodePathSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HearthError('BAD_REQUEST', `malformed percent-encoding in path segment '${s.slice(0, 80)}'`);
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

function supplementaryGroups(pid: number): number[] {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const line = /^Groups:\s*(.*)$/m.exec(status);
    return line ? line[1].split(/\s+/).filter(Boolean).map(Number) : [];
  } catch {
    return [];
  }
}

/**
 * Makes socketPath free for a new server: nothing there, or a stale socket (nobody accepts on
 * it: ECONNREFUSED), which is removed. CONFLICT when a live server answers on it (naming its pid
 * when `peerCredentials` can tell), CONFIG when the path is not a socket. A live socket is never
 * removed.
 */
export async function claimSocketPath(path: string, peerCredentials?: (socket: net.Socket) => PeerCredentials): Promise<void> {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new HearthError('CONFIG', `${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<{ pid?: number } | undefined>((resolve, reject) => {
    const c = net.createConnection(path);
    c.once('connect', () => {
      let pid: number | undefined;
      try {
        pid = peerCredentials?.(c).pid;
      } catch {
        pid = undefined;
      }
      c.destroy();
      resolve(pid === undefined ? {} : { pid });
    });
    c.once('error', (err: NodeJS.ErrnoException) => {
      c.destroy();
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve(undefined);
      else reject(new HearthError('CONFIG', `cannot check the control socket ${path}: ${err.message}`, { cause: err }));
    });
  });
  if (live) {
    throw new HearthError(
      'CONFLICT',
      `control socket ${path} is served by another live daemon${live.pid === undefined ? '' : ` (pid ${live.pid})`}; stop it first or use another --socket`,
    );
  }
  try {
    const again = statSync(path);
    if (again.dev === st.dev && again.ino === st.ino) rmSync(path);
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
