/**
 * The daemon's side of one instance's protocol socket (the daemon's end of the socketpair whose
 * other end is fd 3 in the sandbox). It frames requests, matches replies, and turns the socket
 * closing into a coded error; it owns no timers and no policy: the pool decides timeouts
 * (with its clock), and whether an exit was OutOfMemory or RuntimeExit (from cgroup state).
 *
 * Contract:
 * - One request at a time: `specialize` and `invoke` reject with code `BUSY` while another is
 *   pending (`specializeThenInvoke` sends a specialize and the invocation to run after it as one). `ready()` may be awaited at any time (it is the same promise each call).
 * - Everything the shim sends is untrusted (the function's code can write to fd 3). Anything that
 *   is not a well-formed reply to the pending request is a protocol violation: the socket is
 *   destroyed and the pending request rejects with code `PROTOCOL_ERROR`.
 * - When the socket ends or errors, the pending request (and `ready()`, if still waiting) rejects
 *   with code `INSTANCE_EXITED`; `closed` resolves. Later requests reject with `INSTANCE_EXITED`.
 * - An error outcome with `exiting: true` is the shim's last reply (it is exiting): the instance is
 *   unhealthy even though its socket may not have closed yet; later requests reject with
 *   `INSTANCE_EXITED` without being sent.
 * - `close()` destroys the socket; a pending request rejects with code `CLOSED`.
 */
import type { Duplex } from 'node:stream';
import { asError } from '../errors.js';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES, ProtocolError } from '../wire/frame.js';
import { encodeInvokeFrame, type ShimError, type InvokeMessage, type SpecializeMessage } from './protocol.js';
import type { ReplyWatch } from './reply-poller.js';
import { RUNTIMES, type InvokeOutcome, type ReadyInfo, type Runtime, type RuntimeConnection, type SpecializeSpec } from './types.js';

export type InstanceErrorCode =
  /** The socket ended or failed: the runtime process exited or was killed. */
  | 'INSTANCE_EXITED'
  /** The shim could not load the handler; `shimError` holds its {type:'InitError',message,stack}. */
  | 'INIT_ERROR'
  /** The shim sent something malformed or unexpected; the connection has been destroyed. */
  | 'PROTOCOL_ERROR'
  /** A request was made while another was pending. Nothing was sent. */
  | 'BUSY'
  /** `close()` was called. */
  | 'CLOSED';

/** A coded failure of an instance request. Branch on `code`, never on the message. */
export class InstanceError extends Error {
  readonly code: InstanceErrorCode;
  /** For INIT_ERROR: the error the shim reported. */
  readonly shimError: ShimError | undefined;
  /** Alias of `shimError` (the name the pool reads). */
  get functionError(): ShimError | undefined {
    return this.shimError;
  }
  constructor(code: InstanceErrorCode, message: string, options?: { cause?: unknown; shimError?: ShimError }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InstanceError';
    this.code = code;
    this.shimError = options?.shimError;
  }
}

export function isInstanceError(e: unknown, code?: InstanceErrorCode): e is InstanceError {
  return e instanceof InstanceError && (code === undefined || e.code === code);
}

/** Why the connection ended. */
export interface InstanceClose {
  reason: 'exited' | 'protocol' | 'closed';
  /** Socket error or protocol error, if any. */
  error?: Error;
}

interface Pending {
  kind: 'specialize' | 'invoke';
  id?: string;
  resolve(value: unknown): void;
  reject(error: InstanceError): void;
}

const MAX_SHIM_TEXT = 1024 * 1024;

function specializeFrame(spec: SpecializeSpec): Buffer {
  const msg: SpecializeMessage = { t: 'specialize', name: spec.name, handler: spec.handler, memoryMb: spec.memoryMb, timeoutMs: spec.timeoutMs, env: spec.env };
  if (spec.userns === true) msg.userns = true;
  return encodeFrame(msg);
}

function invokeFrame(id: string, event: unknown, deadline: number, budgetMs?: number): Buffer {
  const msg: InvokeMessage = { t: 'invoke', id, event: event === undefined ? null : event, deadline, ...(budgetMs === undefined ? {} : { budgetMs }) };
  return encodeFrame(msg);
}

function shimText(v: unknown, max: number = MAX_SHIM_TEXT): string {
  const s = typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
  return s.length > max ? s.slice(0, max) : s;
}

function shimError(v: unknown): ShimError | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.type !== 'string' || o.type === '') return undefined;
  return { type: shimText(o.type, 256), message: shimText(o.message), stack: shimText(o.stack) };
}

function finiteNumber(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

export class InstanceConnection implements RuntimeConnection {
  /** Resolves once, when the connection ends for any reason. Never rejects. */
  readonly closed: Promise<InstanceClose>;

  private readonly socket: Duplex;
  private readonly decoder: FrameDecoder;
  private readonly readyPromise: Promise<ReadyInfo>;
  private resolveReady!: (info: ReadyInfo) => void;
  private rejectReady!: (e: InstanceError) => void;
  private readyInfo: ReadyInfo | undefined;
  private pending: Pending | undefined;
  /** An invocation sent together with the pending specialize; it becomes `pending` after it. */
  private queued: Pending | undefined;
  /** The shim announced its exit (an `exiting` reply); no request may be sent any more. */
  private exiting = false;
  private ended: InstanceClose | undefined;
  private resolveClosed!: (c: InstanceClose) => void;

  /**
   * @param socket the daemon's end of the instance socket (a net.Socket, or a child process's
   *   stdio pipe). The connection takes ownership: it reads it and destroys it on close.
   */
  private readonly watch: ReplyWatch | undefined;

  /**
   * @param options.replyWatch told when an invocation goes out and when its answer (or the end of
   *   the connection) comes: the daemon's ReplyPoller, which may busy-poll for a quick answer.
   */
  constructor(socket: Duplex, options?: { maxFrameBytes?: number; replyWatch?: ReplyWatch }) {
    this.socket = socket;
    this.watch = options?.replyWatch;
    const maxFrameBytes = options?.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.decoder = new FrameDecoder((m) => this.onMessage(m), maxFrameBytes);
    this.readyPromise = new Promise<ReadyInfo>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.readyPromise.catch(() => undefined); // a caller that never awaits ready() is fine
    this.closed = new Promise<InstanceClose>((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.protocolViolation(e instanceof ProtocolError ? e : new ProtocolError('BAD_FRAME', String(e), { cause: e }));
      }
    });
    socket.on('end', () => this.end({ reason: 'exited' }, 'INSTANCE_EXITED', 'the instance closed its socket'));
    socket.on('close', () => this.end({ reason: 'exited' }, 'INSTANCE_EXITED', 'the instance socket closed'));
    socket.on('error', (err: Error) => this.end({ reason: 'exited', error: err }, 'INSTANCE_EXITED', `instance socket error: ${err.message}`));
  }

  /** True once the connection has ended (exit, protocol error or close()). */
  get isClosed(): boolean {
    return this.ended !== undefined;
  }

  /** False once the connection ended or the shim announced its exit: do not hand the instance out. */
  get usable(): boolean {
    return this.ended === undefined && !this.exiting;
  }

  /** True while a specialize or invoke request awaits its reply. */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** The ready message's fields, once received. */
  get info(): ReadyInfo | undefined {
    return this.readyInfo;
  }

  /** Resolves on the shim's `ready` frame; rejects with INSTANCE_EXITED/PROTOCOL_ERROR/CLOSED if the connection ends first. */
  ready(): Promise<ReadyInfo> {
    return this.readyPromise;
  }

  /**
   * Loads the function's handler. Resolves with the shim's measured import time; rejects with
   * INIT_ERROR (`shimError` set) when the handler cannot be loaded, or a connection error code.
   * May be sent before `ready` arrives (the shim reads requests in order).
   */
  specialize(spec: SpecializeSpec): Promise<{ initMs: number }> {
    return this.request({ kind: 'specialize' }, () => specializeFrame(spec)) as Promise<{ initMs: number }>;
  }

  /**
   * Runs the handler once on `event`. `deadlineMs` is wall-clock ms since the epoch (the handler's
   * context.getRemainingTimeInMillis() counts down to it; the pool enforces it). Resolves with the
   * outcome of the handler (an error outcome is a handler failure, not a rejection); rejects only
   * when the connection fails (INSTANCE_EXITED, PROTOCOL_ERROR, CLOSED) or with BUSY.
   */
  invoke(id: string, event: unknown, deadlineMs: number): Promise<InvokeOutcome> {
    return this.request({ kind: 'invoke', id }, () => invokeFrame(id, event, deadlineMs)) as Promise<InvokeOutcome>;
  }

  /**
   * Sends `specialize` and the first invocation in one write: the shim handles them in order, so
   * the invocation starts as soon as the handler is loaded, without a round trip through the
   * daemon in between. `specialized` settles as {@link specialize} would; `outcome` as
   * {@link invoke} would, the handler's deadline being `budgetMs` after it starts. When the
   * specialisation fails, the shim answers the invocation with an InitError outcome (the caller
   * reports `specialized`'s error instead). `outcome` never causes an unhandled rejection.
   */
  specializeThenInvoke(
    spec: SpecializeSpec,
    id: string,
    event: unknown,
    budgetMs: number,
  ): { specialized: Promise<{ initMs: number }>; outcome: Promise<InvokeOutcome> } {
    let sent = false;
    const specialized = this.request({ kind: 'specialize' }, () => {
      const frames = Buffer.concat([specializeFrame(spec), invokeFrame(id, event, Date.now() + budgetMs, budgetMs)]);
      sent = true;
      return frames;
    }) as Promise<{ initMs: number }>;
    const outcome = sent
      ? new Promise<InvokeOutcome>((resolve, reject) => {
          this.queued = { kind: 'invoke', id, resolve: resolve, reject };
        })
      : specialized.then(() => Promise.reject(new InstanceError('CLOSED', 'specialize was not sent')));
    outcome.catch(() => undefined);
    return { specialized, outcome };
  }

  /** As {@link invoke}, with the event given as JSON text that MUST be one valid JSON value. */
  invokeJson(id: string, eventJson: string, deadlineMs: number): Promise<InvokeOutcome> {
    return this.request({ kind: 'invoke', id }, () => encodeInvokeFrame(id, eventJson, deadlineMs)) as Promise<InvokeOutcome>;
  }

  /** Destroys the socket. A pending request rejects with CLOSED. Idempotent. */
  close(): void {
    this.end({ reason: 'closed' }, 'CLOSED', 'connection closed by the daemon');
  }

  private request(p: Omit<Pending, 'resolve' | 'reject'>, encode: () => Buffer): Promise<unknown> {
    if (this.ended) {
      const code = this.ended.reason === 'closed' ? 'CLOSED' : this.ended.reason === 'protocol' ? 'PROTOCOL_ERROR' : 'INSTANCE_EXITED';
      return Promise.reject(new InstanceError(code, `instance connection is closed (${this.ended.reason})`));
    }
    if (this.exiting) {
      return Promise.reject(new InstanceError('INSTANCE_EXITED', 'the instance announced its exit'));
    }
    if (this.pending) {
      return Promise.reject(new InstanceError('BUSY', `instance is busy with a ${this.pending.kind} request`));
    }
    let frame: Buffer;
    try {
      frame = encode();
    } catch (e) {
      return Promise.reject(asError(e));
    }
    return new Promise((resolve, reject) => {
      this.pending = { ...p, resolve, reject };
      this.socket.write(frame);
      if (p.kind === 'invoke') this.watch?.sent();
    });
  }

  private onMessage(m: { t: string } & Record<string, unknown>): void {
    if (m.t === 'ready') {
      if (this.readyInfo !== undefined || !(RUNTIMES as readonly unknown[]).includes(m.runtime)) {
        return this.protocolViolation(new ProtocolError('UNEXPECTED_MESSAGE', 'unexpected or malformed ready message'));
      }
      this.readyInfo = { runtime: m.runtime as Runtime, pid: finiteNumber(m.pid) };
      this.resolveReady(this.readyInfo);
      return;
    }
    const p = this.pending;
    if (p === undefined) {
      return this.protocolViolation(new ProtocolError('UNEXPECTED_MESSAGE', `unsolicited "${shimText(m.t, 64)}" message`));
    }
    if (p.kind === 'specialize') {
      if (m.t === 'specialized') {
        this.pending = this.takeQueued();
        p.resolve({ initMs: finiteNumber(m.initMs) });
        return;
      }
      if (m.t === 'init_error') {
        const err = shimError(m.error);
        if (err === undefined) return this.protocolViolation(new ProtocolError('UNEXPECTED_MESSAGE', 'malformed init_error message'));
        this.pending = this.takeQueued();
        p.reject(new InstanceError('INIT_ERROR', err.message, { shimError: err }));
        return;
      }
    } else if ((m.t === 'result' || m.t === 'error') && m.id === p.id) {
      const logs = shimText(m.logs);
      const durationMs = finiteNumber(m.durationMs);
      this.watch?.answered(durationMs);
      if (m.t === 'result') {
        this.pending = undefined;
        p.resolve({ ok: true, result: m.result === undefined ? null : m.result, logs, durationMs });
        return;
      }
      const err = shimError(m.error);
      if (err !== undefined) {
        this.pending = undefined;
        if (m.exiting === true) {
          this.exiting = true;
          p.resolve({ ok: false, error: err, logs, durationMs, exiting: true });
        } else {
          p.resolve({ ok: false, error: err, logs, durationMs });
        }
        return;
      }
    }
    this.protocolViolation(new ProtocolError('UNEXPECTED_MESSAGE', `unexpected "${shimText(m.t, 64)}" message while waiting for a ${p.kind} reply`));
  }

  private takeQueued(): Pending | undefined {
    const q = this.queued;
    this.queued = undefined;
    return q;
  }

  private protocolViolation(error: ProtocolError): void {
    this.decoder.poison(error);
    this.end({ reason: 'protocol', error }, 'PROTOCOL_ERROR', `protocol error: ${error.message}`, error);
  }

  private end(close: InstanceClose, code: InstanceErrorCode, message: string, cause?: unknown): void {
    if (this.ended) return;
    this.ended = close;
    const p = this.pending;
    const q = this.takeQueued();
    this.pending = undefined;
    if (p?.kind === 'invoke') this.watch?.answered();
    if (p) p.reject(new InstanceError(code, message, { cause: cause ?? close.error }));
    if (q) q.reject(new InstanceError(code, message, { cause: cause ?? close.error }));
    if (this.readyInfo === undefined) this.rejectReady(new InstanceError(code, `instance ended before ready: ${message}`, { cause: cause ?? close.error }));
    this.socket.destroy();
    this.resolveClosed(close);
  }
}
