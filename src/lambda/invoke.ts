/**
 * Invoke: `RequestResponse` runs the function now (200 with its result, or its error marked by
 * `X-Amz-Function-Error: Unhandled`), `Event` queues it durably (202), `DryRun` only checks that
 * the function exists (204). A synchronous invoke past the function's concurrency is refused
 * (429), as Lambda throttles past reserved concurrency, instead of waiting for a slot.
 */
import { randomUUID } from 'node:crypto';
import type { ApiServices } from '../control/routes.js';
import type { SyncInvokeResult } from '../dispatch/dispatcher.js';
import { invalidParameter, LambdaError } from './aws-errors.js';
import type { LambdaReply, LambdaRequest } from './operations.js';
import { LATEST } from './shapes.js';

/** Lambda's documented payload limits: 6 MB for a synchronous invoke, 1 MB for an event. */
export const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;
export const ASYNC_PAYLOAD_LIMIT = 1024 * 1024;
/** How much of the log `X-Amz-Log-Type: Tail` returns. */
export const TAIL_BYTES = 4096;

const INVOCATION_TYPES = ['RequestResponse', 'Event', 'DryRun'] as const;
type InvocationType = (typeof INVOCATION_TYPES)[number];

function invocationType(header: (name: string) => string | undefined): InvocationType {
  const t = header('x-amz-invocation-type') ?? 'RequestResponse';
  if (!(INVOCATION_TYPES as readonly string[]).includes(t)) throw invalidParameter(`X-Amz-Invocation-Type: must be one of ${INVOCATION_TYPES.join(', ')}`);
  return t as InvocationType;
}

/** The body limit of an Invoke, by its invocation type. */
export function invokeBodyLimit(header: (name: string) => string | undefined): number {
  const t = header('x-amz-invocation-type');
  return t === 'Event' ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
}

/** The refusal of a payload over the limit (the reader calls it before reading the body). */
export function payloadTooLarge(limit: number): LambdaError {
  return new LambdaError('RequestTooLargeException', 413, `Request must be smaller than ${limit} bytes for the InvokeFunction operation`);
}

function parsePayload(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new LambdaError('InvalidRequestContentException', 400, `Could not parse request body into json: ${(err as Error).message}`);
  }
}

/** The invocation's log as Lambda's Tail shows it: START, the function's output, END, REPORT; the last 4 KB, base64. */
export function tailLog(id: string, res: SyncInvokeResult): string {
  const init = res.start === 'warm' ? '' : `\tInit Duration: ${res.initMs.toFixed(2)} ms`;
  const logs = res.logs === '' || res.logs.endsWith('\n') ? res.logs : res.logs + '\n';
  const text =
    `START RequestId: ${id} Version: ${LATEST}\n${logs}END RequestId: ${id}\n` +
    `REPORT RequestId: ${id}\tDuration: ${res.durationMs.toFixed(2)} ms\tBilled Duration: ${Math.max(1, Math.ceil(res.durationMs))} ms${init}\n`;
  const bytes = Buffer.from(text, 'utf8');
  return bytes.subarray(Math.max(0, bytes.length - TAIL_BYTES)).toString('base64');
}

/** Lambda's stack trace: the lines of the stack, the first ("Type: message") left out when it repeats them. */
function stackTrace(stack: string | undefined, type: string, message: string): string[] {
  const lines = (stack ?? '')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '');
  if (lines.length > 0 && lines[0].includes(message) && lines[0].includes(type)) lines.shift();
  return lines.map((l) => l.trim());
}

export async function invoke(services: ApiServices, name: string, req: LambdaRequest): Promise<LambdaReply> {
  const type = invocationType((n) => req.header(n));
  const logType = req.header('x-amz-log-type') ?? 'None';
  if (logType !== 'None' && logType !== 'Tail') throw invalidParameter('X-Amz-Log-Type: must be None or Tail');
  if (type === 'DryRun') {
    await services.getFunction(name);
    return { status: 204, headers: { 'X-Amz-Executed-Version': LATEST } };
  }
  const limit = type === 'Event' ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
  if (req.body.length > limit) throw payloadTooLarge(limit);
  const event = parsePayload(req.body);
  if (type === 'Event') {
    const { id } = await services.submitEvent(name, req.body.length === 0 ? '{}' : req.body.toString('utf8'), undefined);
    return { status: 202, requestId: id, headers: { 'X-Amz-Executed-Version': LATEST } };
  }
  const id = randomUUID();
  const res = await services.invoke(name, event, { trigger: 'lambda', invocationId: id, refuseWhenBusy: true });
  const headers: Record<string, string> = { 'X-Amz-Executed-Version': LATEST };
  if (logType === 'Tail') headers['X-Amz-Log-Result'] = tailLog(res.invocationId, res);
  if (res.error) {
    headers['X-Amz-Function-Error'] = 'Unhandled';
    const e = res.error;
    return {
      status: 200,
      requestId: res.invocationId,
      headers,
      body: { errorMessage: e.message, errorType: e.type, stackTrace: stackTrace(e.stack, e.type, e.message) },
    };
  }
  return { status: 200, requestId: res.invocationId, headers, body: Buffer.from(JSON.stringify(res.result ?? null), 'utf8') };
}
