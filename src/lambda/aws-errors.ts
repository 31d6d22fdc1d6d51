/**
 * Errors in the Lambda API's shape: an HTTP status, the `x-amzn-ErrorType` header, and a JSON body
 * with `Type` and the message (as `message` and `Message`: the SDKs read one or the other,
 * depending on the error). Hearth's coded errors become AWS error types here, once.
 */
import { HearthError, type ErrorCode } from '../errors.js';

export class LambdaError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
    /** Extra body fields (e.g. `Reason`) and headers (e.g. `Retry-After`). */
    readonly extra: { body?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'LambdaError';
  }

  /** `Type` in the body: User for the caller's faults, Service for ours. */
  get faultOf(): 'User' | 'Service' {
    return this.status >= 500 ? 'Service' : 'User';
  }
}

export const invalidParameter = (message: string): LambdaError => new LambdaError('InvalidParameterValueException', 400, message);
export const notFound = (message: string): LambdaError => new LambdaError('ResourceNotFoundException', 404, message);

const byCode: Partial<Record<ErrorCode, [string, number]>> = {
  BAD_REQUEST: ['InvalidParameterValueException', 400],
  INVALID_NAME: ['InvalidParameterValueException', 400],
  INVALID_ARCHIVE: ['InvalidParameterValueException', 400],
  NOT_FOUND: ['ResourceNotFoundException', 404],
  FUNCTION_NOT_FOUND: ['ResourceNotFoundException', 404],
  EVENT_NOT_FOUND: ['ResourceNotFoundException', 404],
  NETWORK_NOT_FOUND: ['InvalidParameterValueException', 400],
  CONFLICT: ['ResourceConflictException', 409],
  PAYLOAD_TOO_LARGE: ['RequestTooLargeException', 413],
  TOO_MANY_REQUESTS: ['TooManyRequestsException', 429],
  UNAVAILABLE: ['ServiceException', 503],
  MISSING_DEPENDENCY: ['ServiceException', 503],
};

/** Hearth's field names in validation messages, as the Lambda API calls them. */
const FIELD_NAMES: Array<[string, string]> = [
  ['memoryMb', 'MemorySize'],
  ['timeoutMs', 'Timeout'],
  ['env', 'Environment.Variables'],
  ['handler', 'Handler'],
  ['runtime', 'Runtime'],
  ['code', 'Code.ZipFile'],
  ['description', 'Description'],
  ['concurrency', 'ReservedConcurrentExecutions'],
];

function lambdaFieldNames(message: string): string {
  let out = message;
  for (const [ours, theirs] of FIELD_NAMES) out = out.replace(new RegExp(`(^|; )${ours}(\\.|:)`, 'g'), `$1${theirs}$2`);
  return out;
}

/** Any thrown value as a LambdaError: Hearth's codes mapped, anything else a 500 ServiceException. */
export function toLambdaError(err: unknown): LambdaError {
  if (err instanceof LambdaError) return err;
  if (err instanceof HearthError) {
    const [type, status] = byCode[err.code] ?? ['ServiceException', 500];
    if (err.code === 'TOO_MANY_REQUESTS') {
      return new LambdaError(type, status, 'Rate Exceeded.', {
        body: { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', detail: err.message },
        headers: { 'Retry-After': '1' },
      });
    }
    return new LambdaError(type, status, status < 500 ? lambdaFieldNames(err.message) : err.message);
  }
  return new LambdaError('ServiceException', 500, 'internal error (see the daemon log)');
}
