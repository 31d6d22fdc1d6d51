/**
 * The Lambda API's front door: HTTP/1.1 on TCP (`--lambda-listen`), served by the control API's
 * own HTTP/1 server (src/control/http1.ts: strict parsing, body limits checked against the
 * declared length before a byte is read, timeouts), which reads a request, refuses a body over the
 * operation's limit (413), checks its SigV4 signature, runs the matching operation
 * (operations.ts) and answers in AWS's shape. Every answer carries `x-amzn-RequestId`; errors
 * carry `x-amzn-ErrorType`. A refused request changes nothing: the signature is checked before any
 * operation runs.
 *
 * Headers reach the signature check as the server parsed them: one value per name, repeats joined
 * with `, ` (AWS joins them with `,`), so a signed header sent twice does not verify.
 *
 * Life: construct → `start()` (listens) → `stop()` (stops accepting, lets running requests answer).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../clock.js';
import { Http1Server, type HttpRequestHead, type HttpResponse } from '../control/http1.js';
import type { ApiServices } from '../control/routes.js';
import type { Logger } from '../log.js';
import { LambdaError, toLambdaError } from './aws-errors.js';
import { matchOperation, type LambdaReply, type Operation, type OperationContext } from './operations.js';
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

/** AWS's error types for the answers the HTTP server writes itself. */
function httpError(status: number, message: string): LambdaError {
  if (status === 413 || status === 431) return new LambdaError('RequestTooLargeException', 413, message);
  if (status < 500) return new LambdaError('InvalidRequestContentException', status, message);
  return new LambdaError('ServiceException', status, message);
}

export class LambdaServer {
  private http: Http1Server<null> | undefined;
  private ctx: OperationContext;

  constructor(private readonly opts: LambdaServerOptions) {
    this.ctx = { services: opts.services, region: 'us-east-1', runtimeNames: defaultRuntimeNames() };
  }

  async start(): Promise<void> {
    this.ctx = { ...this.ctx, runtimeNames: defaultRuntimeNames(await pythonVersion()) };
    const http = new Http1Server<null>({
      accept: () => ({ context: null }),
      begin: (head) => this.begin(head),
      errorResponse: (status, _code, message) => errorResponse(randomUUID(), httpError(status, message)),
    });
    await http.listen({ host: this.opts.host, port: this.opts.port });
    this.http = http;
  }

  /** Where it listens (after start). */
  address(): AddressInfo | undefined {
    const a = this.http?.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  }

  async stop(): Promise<void> {
    const http = this.http;
    this.http = undefined;
    await http?.close();
  }

  private begin(head: HttpRequestHead): { maxBody: number; respond: (body: Buffer) => Promise<HttpResponse> } | HttpResponse {
    const requestId = randomUUID();
    const q = head.target.indexOf('?');
    const raw: RawRequest = {
      method: head.method,
      path: q < 0 ? head.target : head.target.slice(0, q),
      query: q < 0 ? '' : head.target.slice(q + 1),
      headers: Object.entries(head.headers),
    };
    const header = (name: string): string | undefined => head.headers[name];
    let match: { op: Operation; params: Record<string, string> } | undefined;
    try {
      const segments = raw.path
        .split('/')
        .filter((x) => x !== '')
        .map((x) => decodeURIComponent(x));
      match = matchOperation(raw.method, segments);
    } catch {
      return errorResponse(requestId, new LambdaError('InvalidParameterValueException', 400, 'the request path has a malformed percent-encoding'));
    }
    return {
      maxBody: match ? match.op.maxBody(header) : UNKNOWN_BODY,
      respond: (body) => this.respond(requestId, raw, header, match, body),
    };
  }

  private async respond(
    requestId: string,
    raw: RawRequest,
    header: (name: string) => string | undefined,
    match: { op: Operation; params: Record<string, string> } | undefined,
    body: Buffer,
  ): Promise<HttpResponse> {
    try {
      const auth = verifySignature(raw, body, { secretOf: this.opts.secretOf, service: 'lambda', now: this.opts.clock.now() });
      if (!auth.ok) throw new LambdaError(auth.type, 403, auth.message);
      if (!match) throw new LambdaError('UnknownOperationException', 404, `no Lambda operation for ${raw.method} ${raw.path}`);
      const ctx = { ...this.ctx, region: auth.region };
      const reply = await match.op.run(ctx, { params: match.params, query: new URLSearchParams(raw.query), header, body, requestId });
      return response(reply.requestId ?? requestId, reply);
    } catch (err) {
      const e = toLambdaError(err);
      if (e.status >= 500) this.opts.log.error({ err, requestId, method: raw.method, path: raw.path }, 'lambda API request failed');
      return errorResponse(requestId, e);
    }
  }
}

function errorResponse(requestId: string, e: LambdaError): HttpResponse {
  const body = { Type: e.faultOf, message: e.message, Message: e.message, ...e.extra.body };
  return response(requestId, { status: e.status, headers: { 'x-amzn-ErrorType': e.type, ...e.extra.headers }, body });
}

function response(requestId: string, reply: LambdaReply): HttpResponse {
  const headers: Record<string, string> = { 'x-amzn-RequestId': requestId, ...reply.headers };
  if (reply.body === undefined) return { status: reply.status, headers };
  headers['Content-Type'] = 'application/json';
  return { status: reply.status, headers, body: Buffer.isBuffer(reply.body) ? reply.body : JSON.stringify(reply.body) };
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
