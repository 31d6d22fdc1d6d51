/**
 * What a function is: the deploy request (`PUT /v1/functions/{name}`), its validation, and the
 * stored `FunctionRecord`. Validation happens here, once, before anything is written; every fault
 * becomes a HearthError whose message names the field and what is wrong with it.
 */
import { z } from 'zod';
import { HearthError } from '../errors.js';
import { RUNTIMES, type Runtime } from '../runtimes/types.js';
import { NAME_PATTERN, NETWORK_NAME_PATTERN } from '../names.js';

/** Declared by the runtime layer (src/runtimes/types.ts); re-exported for the registry's users. */
export { RUNTIMES, type Runtime } from '../runtimes/types.js';

export { NAME_PATTERN, validateFunctionName } from '../names.js';

export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Sum of UTF-8 bytes of all keys and values (Lambda's limit is the same size). */
export const ENV_MAX_BYTES = 4096;
export const MAX_SCHEDULES = 32;
export const MAX_SCHEDULE_LENGTH = 256;
export const MAX_HANDLER_LENGTH = 512;

/** Defaults, in one place. */
export const FUNCTION_DEFAULTS = Object.freeze({
  memoryMb: 128,
  timeoutMs: 3000,
  concurrency: 10,
  retries: 2,
  maxEventAgeS: 21600,
});

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const PY_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Returns a message describing what is wrong with `handler`, or undefined when its shape is valid.
 * Shape (any runtime): `<file>.<function>`, the function (after the last dot) an identifier, the
 * file relative path segments of [A-Za-z0-9_.-], none empty, `.` or `..`, no `..` anywhere.
 * With `runtime`, also what that runtime's shim requires (Lambda's rules):
 * - node: the module is the text up to the first dot after the last `/`; what follows is one or
 *   more dot-separated identifiers (`index.handler`, `src/app.handlers.main`);
 * - python: the module (before the last dot, a trailing `.py` dropped) is identifiers separated by
 *   `/` or `.` (`app.handler`, `pkg/mod.handler`, `pkg.mod.handler`).
 */
export function handlerFault(handler: string, runtime?: Runtime): string | undefined {
  if (handler.length === 0) return 'must not be empty';
  if (handler.length > MAX_HANDLER_LENGTH) return `must be at most ${MAX_HANDLER_LENGTH} characters`;
  if (handler.startsWith('/')) return 'must be relative (no leading "/")';
  const dot = handler.lastIndexOf('.');
  if (dot <= 0 || dot === handler.length - 1 || dot < handler.lastIndexOf('/')) return 'must have the form "file.function"';
  const fn = handler.slice(dot + 1);
  const file = handler.slice(0, dot);
  if (!IDENTIFIER.test(fn)) return `function name ${JSON.stringify(fn)} is not an identifier`;
  for (const seg of file.split('/')) {
    if (seg === '') return 'must not contain empty path segments';
    if (seg === '..' || seg === '.') return `must not contain a "${seg}" path segment`;
    if (!/^[A-Za-z0-9_.-]+$/.test(seg)) return `path segment ${JSON.stringify(seg)} may only contain [A-Za-z0-9_.-]`;
  }
  if (file.includes('..')) return 'must not contain ".."';
  if (runtime === 'node') {
    const slash = handler.lastIndexOf('/');
    const first = handler.indexOf('.', slash + 1);
    if (first === slash + 1) return 'the file name must not start with "."';
    for (const name of handler.slice(first + 1).split('.')) {
      if (!IDENTIFIER.test(name)) return `${JSON.stringify(name)} is not an identifier (node: "file.export" or "file.export.nested")`;
    }
  } else if (runtime === 'python') {
    if (!PY_IDENTIFIER.test(fn)) return `function name ${JSON.stringify(fn)} is not a Python identifier`;
    for (const part of pythonModule(handler).split('/')) {
      if (!PY_IDENTIFIER.test(part)) {
        return `module part ${JSON.stringify(part)} is not a Python identifier (python: "module.function", "pkg/mod.function")`;
      }
    }
  }
  return undefined;
}

/** Python module path of a handler, '/'-separated: `pkg.mod.fn` and `pkg/mod.py.fn` → `pkg/mod`. */
function pythonModule(handler: string): string {
  let mod = handler.slice(0, handler.lastIndexOf('.'));
  if (mod.endsWith('.py')) mod = mod.slice(0, -3);
  return mod.replace(/\./g, '/');
}

/**
 * The module path a runtime loads for `handler`, relative to the bundle root and without
 * extension (node: `src/app.handlers.main` → `src/app`; python: `pkg.mod.handler` → `pkg/mod`).
 * Throws BAD_REQUEST when the handler is not valid for that runtime.
 */
export function handlerModulePath(handler: string, runtime: Runtime): string {
  const fault = handlerFault(handler, runtime);
  if (fault) throw new HearthError('BAD_REQUEST', `handler: ${fault}`);
  if (runtime === 'python') return pythonModule(handler);
  const slash = handler.lastIndexOf('/');
  return handler.slice(0, handler.indexOf('.', slash + 1));
}

/**
 * Checks one schedule expression. Throw (message used) or return a string (the fault) or `false`
 * to reject; anything else accepts. The queue's parser is plugged in here by the daemon.
 */
export type ScheduleValidator = (expr: string) => unknown;

/** The default: accepts any non-empty string (shape is left to the queue's parser). */
export const acceptAnySchedule: ScheduleValidator = () => true;

const intIn = (field: string, min: number, max: number) =>
  z
    .number({ invalid_type_error: `${field} must be a number`, required_error: `${field} is required` })
    .int({ message: `must be an integer` })
    .min(min, { message: `must be between ${min} and ${max}` })
    .max(max, { message: `must be between ${min} and ${max}` });

const envSchema = z
  .record(
    z.string().regex(ENV_KEY_PATTERN, { message: 'keys must match ^[A-Za-z_][A-Za-z0-9_]*$' }),
    z.string({ invalid_type_error: 'values must be strings' }).refine((v) => !v.includes('\0'), { message: 'values must not contain NUL characters' }),
    { invalid_type_error: 'must be an object of string values' },
  )
  .superRefine((env, ctx) => {
    let bytes = 0;
    for (const [k, v] of Object.entries(env)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    if (bytes > ENV_MAX_BYTES) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `total size ${bytes} bytes exceeds ${ENV_MAX_BYTES} bytes` });
    }
  });

/** Every configurable field of a function except its code. */
const configShape = {
  runtime: z.enum(RUNTIMES, {
    errorMap: () => ({ message: 'must be "node", "python" or "provided"' }),
  }),
  /** Checked against the runtime's rules after the schema (see runtimeHandlerFault). */
  handler: z.string({ invalid_type_error: 'must be a string', required_error: 'is required' }),
  memoryMb: intIn('memoryMb', 64, 4096).default(FUNCTION_DEFAULTS.memoryMb),
  timeoutMs: intIn('timeoutMs', 100, 900_000).default(FUNCTION_DEFAULTS.timeoutMs),
  env: envSchema.default({}),
  concurrency: intIn('concurrency', 1, 1000).default(FUNCTION_DEFAULTS.concurrency),
  retries: intIn('retries', 0, 10).default(FUNCTION_DEFAULTS.retries),
  maxEventAgeS: intIn('maxEventAgeS', 60, 21600).default(FUNCTION_DEFAULTS.maxEventAgeS),
  schedules: z
    .array(
      z
        .string({ invalid_type_error: 'entries must be strings' })
        .min(1, { message: 'entries must not be empty' })
        .max(MAX_SCHEDULE_LENGTH, { message: `entries must be at most ${MAX_SCHEDULE_LENGTH} characters` }),
      { invalid_type_error: 'must be an array of strings' },
    )
    .max(MAX_SCHEDULES, { message: `at most ${MAX_SCHEDULES} schedules` })
    .default([]),
  network: z
    .string({ invalid_type_error: 'must be a string' })
    .regex(NETWORK_NAME_PATTERN, { message: `must match ${NETWORK_NAME_PATTERN.source} (1-63 lowercase letters, digits and inner dashes)` })
    .optional(),
  /** Free text for people (the Lambda API's Description). */
  description: z.string({ invalid_type_error: 'must be a string' }).max(256, { message: 'must be at most 256 characters' }).optional(),
};

/** The deploy request body. Unknown fields are refused (a typo such as `timeout` must not pass silently). */
export const deployRequestSchema = z
  .object({
    ...configShape,
    code: z.string({ invalid_type_error: 'must be a base64 string', required_error: 'is required' }).min(1, { message: 'must not be empty' }),
  })
  .strict();

export const functionConfigSchema = z.object(configShape).strict();

/** A validated deploy request, defaults filled in; `code` still base64. */
export type DeployRequest = z.infer<typeof deployRequestSchema>;
/** Validated function configuration (everything but the code). */
export type FunctionConfig = z.infer<typeof functionConfigSchema>;

/** What the registry is given to store: the config plus the code's identity. */
export interface FunctionDefinition extends FunctionConfig {
  codeSha256: string;
  codeSize: number;
}

/** A stored function, as the API returns it. Timestamps are ISO-8601 strings. */
export interface FunctionRecord {
  name: string;
  runtime: Runtime;
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  env: Record<string, string>;
  concurrency: number;
  retries: number;
  maxEventAgeS: number;
  schedules: string[];
  network?: string;
  description?: string;
  codeSha256: string;
  codeSize: number;
  createdAt: string;
  updatedAt: string;
}

/** Schema of a stored record (used when loading state from disk; never trusts the file blindly). */
export const functionRecordSchema = z
  .object({
    name: z.string().regex(NAME_PATTERN),
    ...configShape,
    codeSha256: z.string().regex(/^[0-9a-f]{64}$/),
    codeSize: z.number().int().min(0),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const fault = runtimeHandlerFault(r.handler, r.runtime);
    if (fault) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['handler'], message: fault });
  });

function formatIssue(issue: z.ZodIssue): string {
  const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length > 0 ? ` in ${field}` : '';
    return `unknown field${issue.keys.length > 1 ? 's' : ''}${where}: ${issue.keys.join(', ')}`;
  }
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return `${field}: is required`;
  // zod's default type message already says "Expected x, received y"; keep ours when we set one.
  return `${field}: ${issue.message}`;
}

export function zodToHearthError(err: z.ZodError, prefix = ''): HearthError {
  const messages = err.issues.slice(0, 5).map(formatIssue);
  const more = err.issues.length > 5 ? ` (and ${err.issues.length - 5} more)` : '';
  return new HearthError('BAD_REQUEST', `${prefix}${messages.join('; ')}${more}`, {
    details: { issues: err.issues.map((i) => ({ field: i.path.join('.'), message: i.message })) },
  });
}

/** `__proto__` survives JSON.parse as an own key but not zod's copy: refuse it rather than drop it. */
function rejectProtoKey(body: object): void {
  const env = (body as { env?: unknown }).env;
  if (env !== null && typeof env === 'object' && Object.prototype.hasOwnProperty.call(env, '__proto__')) {
    throw new HearthError('BAD_REQUEST', 'env.__proto__: reserved name');
  }
}

export interface SpecValidationOptions {
  /** Plugged-in schedule parser (see ScheduleValidator). Default: accept any non-empty string. */
  validateSchedule?: ScheduleValidator;
}

/**
 * What is wrong with `handler` for `runtime`, or undefined. A `provided` function's handler is
 * free-form (it only becomes the bootstrap's `_HANDLER`), may be empty, and is bounded like the others.
 */
export function runtimeHandlerFault(handler: string, runtime: Runtime): string | undefined {
  if (runtime !== 'provided') return handlerFault(handler, runtime);
  if (handler.length > MAX_HANDLER_LENGTH) return `must be at most ${MAX_HANDLER_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(handler)) return 'must not contain control characters';
  return undefined;
}

function checkRuntimeHandler(handler: string, runtime: Runtime): void {
  const fault = runtimeHandlerFault(handler, runtime);
  if (fault) throw new HearthError('BAD_REQUEST', `handler: ${fault}`);
}

function checkSchedules(schedules: readonly string[], validate: ScheduleValidator): void {
  schedules.forEach((expr, i) => {
    let fault: string | undefined;
    try {
      const r = validate(expr);
      if (typeof r === 'string') fault = r;
      else if (r === false) fault = 'invalid schedule expression';
    } catch (err) {
      fault = err instanceof Error ? err.message : String(err);
    }
    if (fault !== undefined) {
      throw new HearthError('BAD_REQUEST', `schedules.${i}: ${JSON.stringify(expr)}: ${fault}`);
    }
  });
}

/**
 * Validates a deploy request body (already parsed JSON). Fills defaults. Throws BAD_REQUEST naming
 * the field on any fault. Does not decode the code (see `decodeCode`).
 */
export function parseDeployRequest(body: unknown, opts: SpecValidationOptions = {}): DeployRequest {
  return parseConfigBody(deployRequestSchema, body, opts);
}

/** Same as parseDeployRequest for a config without code (e.g. a config-only update or a stored record). */
export function parseFunctionConfig(body: unknown, opts: SpecValidationOptions = {}): FunctionConfig {
  return parseConfigBody(functionConfigSchema, body, opts);
}

/** The checks both bodies share: a JSON object, no prototype keys, the schema, handler and schedules. */
function parseConfigBody<T extends FunctionConfig>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, body: unknown, opts: SpecValidationOptions): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HearthError('BAD_REQUEST', 'body: must be a JSON object');
  }
  rejectProtoKey(body);
  // A provided function's handler is optional: absent means empty.
  const b = body as Record<string, unknown>;
  const r = schema.safeParse(b['runtime'] === 'provided' && b['handler'] === undefined ? { ...b, handler: '' } : body);
  if (!r.success) throw zodToHearthError(r.error);
  checkRuntimeHandler(r.data.handler, r.data.runtime);
  checkSchedules(r.data.schedules, opts.validateSchedule ?? acceptAnySchedule);
  return r.data;
}

const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes the `code` field. Refuses (PAYLOAD_TOO_LARGE) before decoding when the text is longer
 * than `maxPackedBytes` could encode; refuses (BAD_REQUEST) anything that is not strict base64
 * (line breaks and spaces are tolerated).
 */
export function decodeCode(code: string, maxPackedBytes: number): Buffer {
  const maxChars = Math.ceil(maxPackedBytes / 3) * 4;
  // Whitespace can only add so much; a cheap bound before any copying.
  if (code.length > maxChars * 2 + 1024) {
    throw new HearthError('PAYLOAD_TOO_LARGE', `code: archive exceeds ${maxPackedBytes} bytes packed`);
  }
  const compact = /\s/.test(code) ? code.replace(/\s+/g, '') : code;
  if (compact.length > maxChars) {
    throw new HearthError('PAYLOAD_TOO_LARGE', `code: archive exceeds ${maxPackedBytes} bytes packed`);
  }
  if (compact.length % 4 !== 0 || !BASE64_PATTERN.test(compact)) {
    throw new HearthError('BAD_REQUEST', 'code: must be standard base64 (A-Z a-z 0-9 + /, padded with =)');
  }
  const buf = Buffer.from(compact, 'base64');
  if (buf.length === 0) throw new HearthError('BAD_REQUEST', 'code: must not be empty');
  if (buf.length > maxPackedBytes) {
    throw new HearthError('PAYLOAD_TOO_LARGE', `code: archive is ${buf.length} bytes, over the ${maxPackedBytes} bytes packed limit`);
  }
  return buf;
}
