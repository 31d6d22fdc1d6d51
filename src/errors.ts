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

export const badRequest = (message: string, cause?: unknown): HearthError =>
  new HearthError('BAD_REQUEST', message, { cause });
export const notFound = (code: 'NOT_FOUND' | 'FUNCTION_NOT_FOUND' | 'EVENT_NOT_FOUND' | 'NETWORK_NOT_FOUND', message: string): HearthError =>
  new HearthError(code, message);
export const tooLarge = (message: string): HearthError => new HearthError('PAYLOAD_TOO_LARGE', message);
export const conflict = (message: string): HearthError => new HearthError('CONFLICT', message);

export function isHearthError(e: unknown): e is HearthError {
  return e instanceof HearthError;
}
