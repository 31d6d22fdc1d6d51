/**
 * Invocation records and the handlers' output, kept on disk per function so that `hearth
 * invocations` and `hearth logs` answer after a daemon restart.
 *
 * Layout: `<dir>/<function>/invocations.jsonl` (the file being written) and
 * `invocations.1.jsonl` … `invocations.<keep>.jsonl` (older, rotated when the current one passes
 * `maxFileBytes`). One JSON line per invocation: its record, with its output cut to
 * `maxLogBytes`. A function's storage is therefore at most about (keep + 1) × maxFileBytes.
 *
 * Writes never wait on the invocation path: `record` only appends to the function's pending
 * buffer; a timer flushes every buffer every `flushMs`, one append per function. When a function's
 * pending bytes pass `maxPendingBytes` (the disk is slower than it prints), its further records
 * are dropped and counted, and the next written record says how many were lost: a function that
 * prints without end costs its own history, never another function's or the disk.
 *
 * A torn last line (the daemon was killed mid-append) is skipped when read.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { appendFile, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { InvocationRecord } from '../dispatch/invocations.js';
import { isFunctionName } from '../names.js';

export interface StoredInvocation extends Omit<InvocationRecord, 'logs'> {
  logs: string;
  /** Bytes of output cut from this record's logs. */
  logsCut?: number;
  /** Records of this function dropped just before this one (writes fell behind). */
  droppedBefore?: number;
}

export interface LogLine {
  /** When the invocation that printed it ended (ISO-8601). */
  time: string;
  invocationId: string;
  line: string;
}

export interface InvocationLogOptions {
  dir: string;
  maxFileBytes?: number;
  /** Rotated files kept besides the current one. */
  keep?: number;
  maxLogBytes?: number;
  maxPendingBytes?: number;
  flushMs?: number;
  /** Records of functions that are not deployed (any more) are not written. */
  exists: (fn: string) => boolean;
  onError: (err: unknown, fn: string) => void;
}

interface Pending {
  chunks: string[];
  bytes: number;
  dropped: number;
  /** Size of the current file, once known. */
  fileBytes: number | undefined;
  /** The write in progress for this function. */
  writing: Promise<void>;
}

const CURRENT = 'invocations.jsonl';

export class InvocationLog {
  private readonly o: Required<Omit<InvocationLogOptions, 'exists' | 'onError'>>;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: InvocationLogOptions) {
    this.o = {
      dir: opts.dir,
      maxFileBytes: opts.maxFileBytes ?? 2 * 1024 * 1024,
      keep: opts.keep ?? 3,
      maxLogBytes: opts.maxLogBytes ?? 64 * 1024,
      maxPendingBytes: opts.maxPendingBytes ?? 1024 * 1024,
      flushMs: opts.flushMs ?? 200,
    };
  }

  /** Creates the directory and removes the records of functions that are not deployed. */
  async start(): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.o.dir)) if (!this.opts.exists(name)) await rm(join(this.o.dir, name), { recursive: true, force: true });
  }

  /** Queues one finished invocation for writing; returns at once. */
  record(r: InvocationRecord): void {
    if (!this.opts.exists(r.function)) return;
    let p = this.pending.get(r.function);
    if (!p) this.pending.set(r.function, (p = { chunks: [], bytes: 0, dropped: 0, fileBytes: undefined, writing: Promise.resolve() }));
    if (p.bytes >= this.o.maxPendingBytes) {
      p.dropped++;
      return;
    }
    const stored: StoredInvocation = { ...r };
    const logBytes = Buffer.byteLength(r.logs);
    if (logBytes > this.o.maxLogBytes) {
      stored.logs = Buffer.from(r.logs).subarray(0, this.o.maxLogBytes).toString('utf8');
      stored.logsCut = logBytes - this.o.maxLogBytes;
    }
    if (p.dropped) {
      stored.droppedBefore = p.dropped;
      p.dropped = 0;
    }
    const line = JSON.stringify(stored) + '\n';
    p.chunks.push(line);
    p.bytes += Buffer.byteLength(line);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.o.flushMs);
      this.timer.unref();
    }
  }

  /** Writes what is pending (of one function, or all); resolves when it is on disk. */
  async flush(fn?: string): Promise<void> {
    const names = fn === undefined ? [...this.pending.keys()] : [fn];
    await Promise.all(names.map((n) => this.flushOne(n)));
  }

  private flushOne(fn: string): Promise<void> {
    const p = this.pending.get(fn);
    if (!p) return Promise.resolve();
    p.writing = p.writing.then(async () => {
      if (p.chunks.length === 0) return;
      const text = p.chunks.join('');
      const bytes = p.bytes;
      p.chunks = [];
      p.bytes = 0;
      const dir = join(this.o.dir, fn);
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        if (p.fileBytes === undefined) p.fileBytes = (await stat(join(dir, CURRENT)).catch(() => ({ size: 0 }))).size;
        if (p.fileBytes > 0 && p.fileBytes + bytes > this.o.maxFileBytes) {
          await this.rotate(dir);
          p.fileBytes = 0;
        }
        await appendFile(join(dir, CURRENT), text, { mode: 0o600 });
        p.fileBytes += bytes;
      } catch (err) {
        p.fileBytes = undefined;
        this.opts.onError(err, fn);
      }
    });
    return p.writing;
  }

  private async rotate(dir: string): Promise<void> {
    await rm(join(dir, `invocations.${this.o.keep}.jsonl`), { force: true });
    for (let i = this.o.keep - 1; i >= 1; i--) await rename(join(dir, `invocations.${i}.jsonl`), join(dir, `invocations.${i + 1}.jsonl`)).catch(() => {});
    await rename(join(dir, CURRENT), join(dir, 'invocations.1.jsonl'));
  }

  /** Stored invocations of `fn`, oldest first (what is pending is written first). */
  async read(fn: string): Promise<StoredInvocation[]> {
    if (!isFunctionName(fn)) return [];
    await this.flush(fn);
    const dir = join(this.o.dir, fn);
    const files = [...Array.from({ length: this.o.keep }, (_, i) => `invocations.${this.o.keep - i}.jsonl`), CURRENT];
    const out: StoredInvocation[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = await readFile(join(dir, f), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          out.push(JSON.parse(line) as StoredInvocation);
        } catch {
          // a torn line from a crash mid-append
        }
      }
    }
    return out;
  }

  /** The last `n` invocations of `fn`, newest first. */
  async last(fn: string, n: number): Promise<StoredInvocation[]> {
    return (await this.read(fn)).slice(-n).reverse();
  }

  /** Output lines of invocations of `fn` that ended at or after `sinceMs`, oldest first; at most `limit` (the newest). */
  async lines(fn: string, sinceMs: number, limit = 10_000): Promise<LogLine[]> {
    const out: LogLine[] = [];
    for (const r of await this.read(fn)) {
      if (r.endedAt < sinceMs) continue;
      const time = new Date(r.endedAt).toISOString();
      if (r.droppedBefore)
        out.push({
          time,
          invocationId: r.id,
          line: `[hearth: ${r.droppedBefore} earlier invocations' records dropped: output came faster than the disk took it]`,
        });
      if (r.logs) {
        const ls = r.logs.split('\n');
        if (ls[ls.length - 1] === '') ls.pop();
        for (const line of ls) out.push({ time, invocationId: r.id, line });
      }
      if (r.logsCut) out.push({ time, invocationId: r.id, line: `[hearth: ${r.logsCut} more bytes of output not kept]` });
    }
    return out.length > limit ? out.slice(-limit) : out;
  }

  /** Deletes everything kept for `fn` (the function was deleted). */
  async remove(fn: string): Promise<void> {
    if (!isFunctionName(fn)) return;
    const p = this.pending.get(fn);
    this.pending.delete(fn);
    if (p) await p.writing;
    await rm(join(this.o.dir, fn), { recursive: true, force: true });
  }

  /** Writes what is pending and stops the timer. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
