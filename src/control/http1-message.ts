/**
 * HTTP/1.1 messages as the control server (src/control/http1.ts) reads and writes them: a request
 * head parsed strictly (RFC 9112), the errors that answer a request that cannot be served, and a
 * response serialised for one write.
 */
import type net from 'node:net';
import { STATUS_CODES } from 'node:http';
import { parseFieldLine, TOKEN } from './http-syntax.js';

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

const TARGET = /^\/[\x21-\x7e]*$/;

/** A request that cannot be served as sent: answered with `status` and the connection closed. */
export class HttpParseError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
export function tooLarge(max: number, declared?: number): HttpParseError {
  const what = declared === undefined ? 'request body' : `request body of ${declared} bytes`;
  return new HttpParseError(413, 'PAYLOAD_TOO_LARGE', `${what} exceeds the limit of ${max} bytes`);
}

export function hasToken(list: string | undefined, token: string): boolean {
  if (list === undefined) return false;
  return list.split(',').some((t) => t.trim() === token);
}

/** Parses a request head (latin1 text without the final blank line). Throws HttpParseError. */
export function parseHead(text: string): HttpRequestHead {
  const lines = text.split('\r\n');
  const requestLine = lines[0];
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
    const field = parseFieldLine(lines[i]);
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
export function serialize(r: HttpResponse, close: boolean, version: '1.0' | '1.1', headOnly: boolean, bodyLength?: number): string {
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
export function writeResponse(socket: net.Socket, r: HttpResponse, close: boolean, version: '1.0' | '1.1', headOnly: boolean): boolean {
  const body = r.body;
  if (body === undefined || typeof body === 'string' || headOnly) return socket.write(serialize(r, close, version, headOnly));
  socket.cork();
  socket.write(serialize(r, close, version, headOnly, body.length));
  const ok = socket.write(body);
  socket.uncork();
  return ok;
}
