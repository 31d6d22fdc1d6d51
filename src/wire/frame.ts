/**
 * The frame format of Hearth's socket protocols: the runtime shims (src/runtimes/protocol.ts),
 * the Python zygote (src/sandbox/zygote.ts) and the bytecode compiler (src/registry/bytecode.ts)
 * all speak it over a stream socket:
 *
 *   frame = u32 big-endian length N, then N bytes of UTF-8 JSON (one object with a string `t`).
 *
 * This module knows frames only, never what the messages mean; every side imports it downward.
 * It imports nothing of Hearth's. The shims (node/shim.js, python/shim.py) and the Python
 * zygote hold their own copies of the encoder and decoder.
 *
 * What arrives on such a socket is untrusted (a shim shares its process with the function's
 * code), so the decoder bounds frame sizes and reports malformed input as a {@link ProtocolError}.
 */

/** Largest frame either side accepts (header excluded). Bigger frames are a protocol error. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type ProtocolErrorReason = 'FRAME_TOO_LARGE' | 'BAD_FRAME' | 'UNEXPECTED_MESSAGE';

/**
 * Malformed or unexpected input on a framed socket. The connection is unusable afterwards.
 * `FRAME_TOO_LARGE` and `BAD_FRAME` come from this module; `UNEXPECTED_MESSAGE` from a consumer
 * that received a well-formed frame it did not expect.
 */
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

/**
 * Frames JSON text that is already serialised. Contract: `json` MUST be one JSON object with a
 * string `t` (the decoder on the other side refuses anything else). Throws {@link ProtocolError}
 * `FRAME_TOO_LARGE` above `maxFrameBytes`.
 */
export function encodeJsonFrame(json: string, maxFrameBytes: number = MAX_FRAME_BYTES): Buffer {
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
  return encodeJsonFrame(JSON.stringify(message), maxFrameBytes);
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
    const first = this.chunks[0];
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
      const c = this.chunks[0];
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
