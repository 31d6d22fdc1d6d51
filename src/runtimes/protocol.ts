/**
 * The messages spoken between the daemon and a runtime shim over the instance's socket (fd 3
 * inside the sandbox), one set for every runtime, each sent as one frame of src/wire/frame.ts
 * (u32 big-endian length, then UTF-8 JSON with a string `t`).
 *
 * The shims (src/runtimes/node/shim.js, src/runtimes/python/shim.py) hold their own copies of the
 * encoder/decoder; docs/runtimes.md describes the messages for users and later developers.
 *
 * Everything a shim sends is untrusted: the shim shares its process with the function's code,
 * which can write anything to fd 3. The frame decoder bounds frame sizes; message shapes are
 * checked by the consumer (instance-connection.ts).
 */
import { encodeJsonFrame, MAX_FRAME_BYTES } from '../wire/frame.js';
import type { FunctionErrorInfo, ReadyInfo, SpecializeSpec } from './types.js';

/** Largest handler result (serialised JSON) a shim returns; bigger results become `ResultTooLarge`. */
export const MAX_RESULT_BYTES = 6 * 1024 * 1024;
/** Captured stdout+stderr kept per invocation; the rest is dropped and a marker appended. */
export const MAX_LOG_BYTES = 256 * 1024;

/** An error as a shim reports it: the thrown value's class name, message and stack text (always sent). */
export type ShimError = Required<FunctionErrorInfo>;

/** shim -> daemon, once, when the runtime is up and waiting for `specialize`. */
export interface ReadyMessage extends ReadyInfo {
  t: 'ready';
}

/** daemon -> shim: load this function's handler from the code directory (`/code`). */
export interface SpecializeMessage extends SpecializeSpec {
  t: 'specialize';
}

/** shim -> daemon: handler loaded; `initMs` is the time spent importing it. */
export interface SpecializedMessage {
  t: 'specialized';
  initMs: number;
}

/** shim -> daemon: the handler could not be loaded. `error.type` is always `InitError`. */
export interface InitErrorMessage {
  t: 'init_error';
  error: ShimError;
}

/**
 * daemon -> shim: run the handler once. `deadline` is a wall-clock time in ms since the epoch.
 * `budgetMs`, when present, replaces it: the deadline is `budgetMs` after the handler starts (an
 * invocation sent together with its `specialize`, whose import time is not known in advance).
 */
export interface InvokeMessage {
  t: 'invoke';
  id: string;
  event: unknown;
  deadline: number;
  budgetMs?: number;
}

/** shim -> daemon: the handler returned (or called back with) `result`. */
export interface ResultMessage {
  t: 'result';
  id: string;
  result: unknown;
  logs: string;
  durationMs: number;
}

/** shim -> daemon: the handler failed (threw, rejected, result not serialisable, exited). */
export interface ErrorMessage {
  t: 'error';
  id: string;
  error: ShimError;
  logs: string;
  durationMs: number;
  /**
   * Optional (an addition to the base protocol): present and true when this is the process's last
   * reply and it exits right after sending it (the handler called process.exit()/sys.exit(), or an
   * uncaught exception / unhandled rejection ended a Node invocation).
   */
  exiting?: boolean;
}

export type ShimMessage = ReadyMessage | SpecializedMessage | InitErrorMessage | ResultMessage | ErrorMessage;
export type DaemonMessage = SpecializeMessage | InvokeMessage;

/**
 * Encodes an `invoke` frame whose event is already JSON text (e.g. a request body the API
 * validated), without parsing and re-serialising it. Contract: `eventJson` MUST be one valid JSON
 * value; it is spliced into the frame as is.
 */
export function encodeInvokeFrame(id: string, eventJson: string, deadline: number, maxFrameBytes: number = MAX_FRAME_BYTES): Buffer {
  const json = `{"t":"invoke","id":${JSON.stringify(id)},"deadline":${JSON.stringify(deadline)},"event":${eventJson}}`;
  return encodeJsonFrame(json, maxFrameBytes);
}
