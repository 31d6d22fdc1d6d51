/** The one place an error code becomes an HTTP status (caddy's HandlerError idea). */
import type { ErrorCode } from '../errors.js';

const statusByCode: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  INVALID_NAME: 400,
  INVALID_ARCHIVE: 400,
  NOT_FOUND: 404,
  FUNCTION_NOT_FOUND: 404,
  EVENT_NOT_FOUND: 404,
  NETWORK_NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  FORBIDDEN: 403,
  TOO_MANY_REQUESTS: 429,
  METHOD_NOT_ALLOWED: 405,
  UNAVAILABLE: 503,
  MISSING_DEPENDENCY: 503,
  CONFIG: 500,
  INTERNAL: 500,
};

export function httpStatusOf(code: ErrorCode): number {
  return statusByCode[code] ?? 500;
}
