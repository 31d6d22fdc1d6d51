/**
 * The framed protocol spoken between the daemon and a runtime shim over the instance's socket
 * (fd 3 inside the sandbox). One format for every runtime:
 *
 *   frame = u32 big-endian length N, then N bytes of UTF-8 JSON (one object with a string `t`).
 *
 * The shims (src/runtimes/node/shim.js, src/runtimes/python/shim.py) hold their own copies of the
 * encoder/decoder; docs/runtimes.md describes the messages for users and later developers.
 *
 * Everything a shim sends is untrusted: the shim shares its process with the function's code,
 * which can write anything to fd 3. The decoder therefore bounds frame sizes and reports malformed
 * input as a {@link ProtocolError}; message shapes are checked by the consumer
 * (instance-connection.ts).
 */

/** Largest frame either side accepts (header excluded). Bigger frames are a protocol error. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Largest handler result (serialised JSON) a shim returns; bigger results become `ResultTooLarge`. */
export const MAX_RESULT_BYTES = 6 * 1024 * 1024;
/** Captured stdout+stderr kept per invocation; the rest is dropped and a marker appended. */
export const MAX_LOG_BYTES = 256 * 1024;

export type RuntimeName = 'node' | 'python';

/** An error as a shim reports it: the thrown value's class name, message and stack text. */
export interface ShimError {
  type: string;
  message: string;
  stack: string;
}

/** shim -> daemon, once, when the runtime is up and waiting for `specialize`. */
export interface ReadyMessage {
  t: 'ready';
  runtime: RuntimeName;
  /** The shim's pid as seen in its own PID namespace. */
  pid: number;
}

/** daemon -> shim: load this function's handler from the code directory (`/code`). */
export interface SpecializeMessage {
  t: 'specialize';
  /** Function name (context.functionName). */
  name: string;
  /** `file.function` (Node: `path/to/file.fn`, nested `file.obj.fn`; Python: `pkg/mod.fn`). */
  handler: string;
  memoryMb: number;
  timeoutMs: number;
  /** Applied to the process environment before the handler is loaded. */
  env: Record<string, string>;
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

export type ProtocolErrorReason = 'FRAME_TOO_LARGE' | 'BAD_FRAME' | 'UNEXPECTED_MESSAGE';

/** Malformed or unexpected input on the instance socket. The connection is unusable afterwards. */
export class ProtocolError extends Error {
  readonly code = 'PROTOCOL_ERROR';
  readonly reason: ProtocolErrorReason;
  constructor(reason: ProtocolErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}

const HEADER_BYTES = 4;

function frameFromJson(json: string, maxFrameBytes: number): Buffer {
  const n = Buffer.byteLength(json, 'utf8');
  if (n > maxFrameBytes) {
    throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${n} bytes exceeds the limit of ${maxFrameBytes} bytes`);
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + n);
  frame.writeUInt32BE(n, 0);
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}

/**
 * Encodes one message as a frame. Throws {@link ProtocolError} `FRAME_TOO_LARGE` when the JSON
 * exceeds `maxFrameBytes`, and whatever JSON.stringify throws for values it cannot serialise.
 */
export function encodeFrame(message: object, maxFrameBytes: number = MAX_FRAME_BYTES): Buffer {
  return frameFromJson(JSON.stringify(message), maxFrameBytes);
}

/**
 * Encodes an `invoke` frame whose event is already JSON text (e.g. a request body the API
 * validated), without parsing and re-serialising it. Contract: `eventJson` MUST be one valid JSON
 * value; it is spliced into the frame as is.
 */
export function encodeInvokeFrame(
  id: string,
  eventJson: string,
  deadline: number,
  maxFrameBytes: number = MAX_FRAME_BYTES,
): Buffer {
  const json = `{"t":"invoke","id":${JSON.stringify(id)},"deadline":${JSON.stringify(deadline)},"event":${eventJson}}`;
  return frameFromJson(json, maxFrameBytes);
}

/**
 * Streaming frame decoder: feed it socket chunks of any size (partial frames, several frames
 * coalesced in one chunk); it calls `onMessage` once per complete frame, in order.
 *
 * `push` throws {@link ProtocolError} on a frame header above the limit, on a body that is not a
 * JSON object with a string `t`; messages completed earlier in the same chunk have already been
 * delivered. After an error the decoder is poisoned: every later `push` throws the same error.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being assembled, or -1 while waiting for a header. */
  private need = -1;
  private failure: ProtocolError | undefined;

  constructor(
    private readonly onMessage: (message: { t: string } & Record<string, unknown>) => void,
    private readonly maxFrameBytes: number = MAX_FRAME_BYTES,
  ) {}

  /** Bytes received but not yet part of a delivered message (a partial frame at EOF is truncation). */
  get bufferedBytes(): number {
    return this.buffered + (this.need >= 0 ? HEADER_BYTES : 0);
  }

  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < HEADER_BYTES) return;
        const n = this.take(HEADER_BYTES).readUInt32BE(0);
        if (n > this.maxFrameBytes) {
          throw this.fail(new ProtocolError('FRAME_TOO_LARGE', `frame of ${n} bytes exceeds the limit of ${this.maxFrameBytes} bytes`));
        }
        this.need = n;
      }
      if (this.buffered < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      let message: unknown;
      try {
        message = JSON.parse(body.toString('utf8'));
      } catch (e) {
        throw this.fail(new ProtocolError('BAD_FRAME', `frame is not valid JSON: ${(e as Error).message}`, { cause: e }));
      }
      if (message === null || typeof message !== 'object' || Array.isArray(message) || typeof (message as { t?: unknown }).t !== 'string') {
        throw this.fail(new ProtocolError('BAD_FRAME', 'frame is not a JSON object with a string "t"'));
      }
      this.onMessage(message as { t: string } & Record<string, unknown>);
      if (this.failure) return;
    }
  }

  /** Marks the decoder failed (e.g. the consumer rejected a message) so later pushes throw. */
  poison(error: ProtocolError): void {
    this.fail(error);
  }

  private fail(error: ProtocolError): ProtocolError {
    this.failure = error;
    this.chunks = [];
    this.buffered = 0;
    return error;
  }

  /** Removes and returns the first `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const want = n - off;
      if (c.length <= want) {
        c.copy(out, off);
        off += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, off, 0, want);
        this.chunks[0] = c.subarray(want);
        off += want;
      }
    }
    return out;
  }
}
