import { inspect } from 'node:util';

/**
 * Coded errors. Every error that can reach a user carries a stable `code`; the HTTP status is
 * chosen once, at the API edge (src/control/http-status.ts), from that code. Native errors travel
 * as `cause`.
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'INVALID_NAME'
  | 'INVALID_ARCHIVE'
  | 'NOT_FOUND'
  | 'FUNCTION_NOT_FOUND'
  | 'EVENT_NOT_FOUND'
  | 'NETWORK_NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'FORBIDDEN'
  | 'TOO_MANY_REQUESTS'
  | 'METHOD_NOT_ALLOWED'
  | 'UNAVAILABLE'
  /** A host tool or kernel feature Hearth needs is missing; the message names it and how to get it. */
  | 'MISSING_DEPENDENCY'
  | 'CONFIG'
  | 'INTERNAL';

export class HearthError extends Error {
  readonly code: ErrorCode;
  /** Extra fields a client may act on (e.g. retryAfterS). */
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HearthError';
    this.code = code;
    this.details = options?.details;
  }
}

export const badRequest = (message: string, cause?: unknown): HearthError => new HearthError('BAD_REQUEST', message, { cause });
export const notFound = (code: 'NOT_FOUND' | 'FUNCTION_NOT_FOUND' | 'EVENT_NOT_FOUND' | 'NETWORK_NOT_FOUND', message: string): HearthError =>
  new HearthError(code, message);
export const tooLarge = (message: string): HearthError => new HearthError('PAYLOAD_TOO_LARGE', message);
export const conflict = (message: string): HearthError => new HearthError('CONFLICT', message);

/**
 * A missing host tool or kernel feature (503: the request was fine, the host is not). `what` is
 * the feature that needs it ("private networks"), `missing` the tool or feature, `install` how
 * to get it; the message reads "private networks need nftables (`nft` not found): apt-get install nftables".
 */
export const missingDependency = (what: string, missing: string, install: string, cause?: unknown): HearthError =>
  new HearthError('MISSING_DEPENDENCY', `${what} need ${missing}: ${install}`, { cause, details: { missing, install } });

export function isHearthError(e: unknown): e is HearthError {
  return e instanceof HearthError;
}

/** `e` itself when it is an Error, else an Error whose message describes the thrown value (kept as `cause`). */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === 'string' ? e : inspect(e), { cause: e });
}
