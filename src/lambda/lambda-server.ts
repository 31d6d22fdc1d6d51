/**
 * The Lambda API's front door: an HTTP/1.1 server on TCP (`--lambda-listen`) that reads a request
 * (refusing a body over the operation's limit before reading it), checks its SigV4 signature,
 * runs the matching operation (operations.ts) and answers in AWS's shape. Every answer carries
 * `x-amzn-RequestId`; errors carry `x-amzn-ErrorType`. A refused request changes nothing: the
 * signature is checked before any operation runs.
 *
 * Life: construct → `start()` (listens) → `stop()` (closes the listener and every connection).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../clock.js';
import type { ApiServices } from '../control/routes.js';
import type { Logger } from '../log.js';
import { LambdaError, toLambdaError } from './aws-errors.js';
import { payloadTooLarge } from './invoke.js';
import { matchOperation, type LambdaReply, type OperationContext } from './operations.js';
import { defaultRuntimeNames } from './shapes.js';
import { verifySignature, type RawRequest } from './sigv4.js';

export interface LambdaServerOptions {
  host: string;
  port: number;
  services: ApiServices;
  /** The secret of an access key id (the key store), undefined when unknown. */
  secretOf: (accessKeyId: string) => string | undefined;
  clock: Clock;
  log: Logger;
}

/** Body limit of a request that matches no operation (it is refused after the signature check). */
const UNKNOWN_BODY = 64 * 1024;

export class LambdaServer {
  private server: Server | undefined;
  private ctx: OperationContext;

  constructor(private readonly opts: LambdaServerOptions) {
    this.ctx = { services: opts.services, region: 'us-east-1', runtimeNames: defaultRuntimeNames() };
  }

  async start(): Promise<void> {
    this.ctx = { ...this.ctx, runtimeNames: defaultRuntimeNames(await pythonVersion()) };
    const server = createServer({ keepAlive: true }, (req, res) => void this.handle(req, res));
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Where it listens (after start). */
  address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const raw: RawRequest = {
      method: req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers: pairs(req.rawHeaders),
    };
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    };
    try {
      let segments: string[];
      try {
        segments = raw.path
          .split('/')
          .filter((s) => s !== '')
          .map((s) => decodeURIComponent(s));
      } catch {
        throw new LambdaError('InvalidParameterValueException', 400, 'the request path has a malformed percent-encoding');
      }
      const match = matchOperation(raw.method, segments);
      const limit = match ? match.op.maxBody(header) : UNKNOWN_BODY;
      const body = await readBody(req, limit, match?.op.name === 'Invoke');
      const auth = verifySignature(raw, body, { secretOf: this.opts.secretOf, service: 'lambda', now: this.opts.clock.now() });
      if (!auth.ok) throw new LambdaError(auth.type, 403, auth.message);
      if (!match) throw new LambdaError('UnknownOperationException', 404, `no Lambda operation for ${raw.method} ${raw.path}`);
      const ctx = { ...this.ctx, region: auth.region };
      const reply = await match.op.run(ctx, { params: match.params, query: new URLSearchParams(raw.query), header, body, requestId });
      send(res, reply.requestId ?? requestId, reply);
    } catch (err) {
      const e = toLambdaError(err);
      if (e.status >= 500) this.opts.log.error({ err, requestId, method: raw.method, path: raw.path }, 'lambda API request failed');
      const body = { Type: e.faultOf, message: e.message, Message: e.message, ...e.extra.body };
      if (!res.headersSent && !res.destroyed) send(res, requestId, { status: e.status, headers: { 'x-amzn-ErrorType': e.type, ...e.extra.headers }, body });
    }
  }
}

function pairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

/** Over this, a request is cut off rather than read to its end and refused. */
const DISCARD_LIMIT = 128 * 1024 * 1024;

/**
 * Reads the body; one over `limit` bytes is read to its end without being kept and then refused
 * (413), so that clients still writing see the answer rather than a reset connection. Past
 * DISCARD_LIMIT the connection is cut.
 */
function readBody(req: IncomingMessage, limit: number, isInvoke: boolean): Promise<Buffer> {
  const tooLarge = (): LambdaError =>
    isInvoke ? payloadTooLarge(limit) : new LambdaError('RequestTooLargeException', 413, `Request must be smaller than ${limit} bytes for this operation`);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
      else if (size > DISCARD_LIMIT && !settled) {
        settled = true;
        reject(tooLarge());
        req.destroy();
      }
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      if (size > limit) reject(tooLarge());
      else resolve(Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
  });
}

function send(res: ServerResponse, requestId: string, reply: LambdaReply): void {
  const body = reply.body === undefined ? undefined : Buffer.isBuffer(reply.body) ? reply.body : Buffer.from(JSON.stringify(reply.body), 'utf8');
  const headers: Record<string, string | number> = { 'x-amzn-RequestId': requestId, ...reply.headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = body.length;
  } else if (reply.status !== 204) headers['Content-Length'] = 0;
  res.writeHead(reply.status, headers);
  res.end(body);
}

/** `3.12` for the host's python3, undefined when it cannot be asked. */
function pythonVersion(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { timeout: 5000 }, (err, out) => {
      const v = String(out).trim();
      resolve(err || !/^\d+\.\d+$/.test(v) ? undefined : v);
    });
  });
}
