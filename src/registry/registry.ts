/**
 * Function definitions: where they are kept and how changes are announced.
 *
 * `Registry` is small on purpose so that a NATS JetStream key-value implementation (one key per
 * function, watched for changes) can sit beside the file one. Its contract:
 * - All methods are safe to call concurrently within one process; operations on one name are
 *   applied in call order. `put` and `delete` resolve only after the change is durable.
 * - `put` creates or replaces a function: `createdAt` is kept on update, `updatedAt` set from the
 *   injected clock; it returns the stored record and whether it was created.
 * - `get` returns undefined for an unknown name (callers decide which error that is).
 * - `onChange` listeners are called after each durable change, with the record (put) or
 *   undefined (delete), synchronously, in registration order; a throwing listener is logged and
 *   does not affect the change or other listeners. With a distributed backend, changes made by
 *   other hosts are announced the same way.
 * - Records handed out are copies; mutating them does not change the registry.
 * - Life: construct → `start()` (loads state) → `stop()`; `stop()` is safe after a failed start.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { HearthError } from '../errors.js';
import {
  functionRecordSchema,
  validateFunctionName,
  zodToHearthError,
  type FunctionDefinition,
  type FunctionRecord,
} from './function-spec.js';
import { fsyncDir } from './bundle-extractor.js';

/** Only `now()` is needed here; structurally compatible with src/clock.ts `Clock`. */
export interface RegistryClock {
  now(): number;
}

/** Minimal logger (pino's `Logger` fits). */
export interface RegistryLogger {
  warn(obj: object, msg?: string): void;
}

export type ChangeListener = (name: string, record: FunctionRecord | undefined) => void;

export interface PutOutcome {
  record: FunctionRecord;
  created: boolean;
}

export interface Registry {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** All functions, sorted by name. */
  list(): Promise<FunctionRecord[]>;
  get(name: string): Promise<FunctionRecord | undefined>;
  /** Creates or replaces `name`. Throws INVALID_NAME on a bad name. */
  put(name: string, def: FunctionDefinition): Promise<PutOutcome>;
  /** Removes `name`; returns the removed record, or undefined when there was none. */
  delete(name: string): Promise<FunctionRecord | undefined>;
  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: ChangeListener): () => void;
}

const copy = (r: FunctionRecord): FunctionRecord => structuredClone(r);

function buildRecord(name: string, def: FunctionDefinition, prev: FunctionRecord | undefined, nowMs: number): FunctionRecord {
  const now = new Date(nowMs).toISOString();
  const record: FunctionRecord = {
    name,
    runtime: def.runtime,
    handler: def.handler,
    memoryMb: def.memoryMb,
    timeoutMs: def.timeoutMs,
    env: { ...def.env },
    concurrency: def.concurrency,
    retries: def.retries,
    maxEventAgeS: def.maxEventAgeS,
    schedules: [...def.schedules],
    codeSha256: def.codeSha256,
    codeSize: def.codeSize,
    createdAt: prev?.createdAt ?? now,
    updatedAt: now,
  };
  if (def.network !== undefined) record.network = def.network;
  return record;
}

/** Serialises async work per key, in call order. */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
  async idle(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }
}

/** Shared in-memory state and listener handling of both implementations. */
abstract class BaseRegistry implements Registry {
  protected readonly records = new Map<string, FunctionRecord>();
  protected readonly queue = new KeyedQueue();
  private readonly listeners: ChangeListener[] = [];

  constructor(
    protected readonly clock: RegistryClock,
    protected readonly log?: RegistryLogger,
  ) {}

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  /** Makes the record durable (put) or removes it (record undefined). */
  protected abstract persist(name: string, record: FunctionRecord | undefined): Promise<void>;

  async list(): Promise<FunctionRecord[]> {
    return [...this.records.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(copy);
  }

  async get(name: string): Promise<FunctionRecord | undefined> {
    const r = this.records.get(name);
    return r ? copy(r) : undefined;
  }

  // async: a bad name is a rejected promise, not a synchronous throw; the queue entry is still
  // made synchronously, so call order is kept.
  async put(name: string, def: FunctionDefinition): Promise<PutOutcome> {
    validateFunctionName(name);
    return this.queue.run(name, async () => {
      const prev = this.records.get(name);
      const record = buildRecord(name, def, prev, this.clock.now());
      // A record that would not load again at start must never be written.
      const check = functionRecordSchema.safeParse(record);
      if (!check.success) throw zodToHearthError(check.error, `function ${name}: `);
      await this.persist(name, record);
      this.records.set(name, record);
      this.emit(name, record);
      return { record: copy(record), created: prev === undefined };
    });
  }

  async delete(name: string): Promise<FunctionRecord | undefined> {
    validateFunctionName(name);
    return this.queue.run(name, async () => {
      const prev = this.records.get(name);
      if (!prev) return undefined;
      await this.persist(name, undefined);
      this.records.delete(name);
      this.emit(name, undefined);
      return copy(prev);
    });
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private emit(name: string, record: FunctionRecord | undefined): void {
    for (const l of [...this.listeners]) {
      try {
        l(name, record ? copy(record) : undefined);
      } catch (err) {
        this.log?.warn({ err, function: name }, 'registry change listener threw');
      }
    }
  }
}

/** In-memory registry: the fake for tests and tools; same contract, nothing durable. */
export class MemoryRegistry extends BaseRegistry {
  constructor(opts: { clock?: RegistryClock; log?: RegistryLogger; initial?: FunctionRecord[] } = {}) {
    super(opts.clock ?? { now: () => Date.now() }, opts.log);
    for (const r of opts.initial ?? []) this.records.set(r.name, copy(r));
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {
    await this.queue.idle();
  }
  protected async persist(): Promise<void> {}
}

export interface FileRegistryOptions {
  /** State directory; functions live in `<stateDir>/functions/<name>.json`. */
  stateDir: string;
  clock?: RegistryClock;
  log?: RegistryLogger;
  /** fsync files and the directory on every change (default true). */
  fsync?: boolean;
}

/**
 * One JSON file per function under `<stateDir>/functions/`, written atomically (temporary file,
 * fsync, rename, fsync of the directory), all loaded at `start()`. A file that does not parse or
 * validate is skipped with a warning and listed in `skipped` (it is left on disk for inspection;
 * the next `put` of that name replaces it).
 */
export class FileRegistry extends BaseRegistry {
  readonly dir: string;
  /** Files found unreadable at start, with the reason. */
  readonly skipped: { file: string; reason: string }[] = [];
  private readonly fsync: boolean;
  private started = false;

  constructor(opts: FileRegistryOptions) {
    super(opts.clock ?? { now: () => Date.now() }, opts.log);
    this.dir = path.join(path.resolve(opts.stateDir), 'functions');
    this.fsync = opts.fsync ?? true;
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.records.clear();
    this.skipped.length = 0;
    for (const file of (await fsp.readdir(this.dir)).sort()) {
      const full = path.join(this.dir, file);
      if (file.startsWith('.tmp-')) {
        await fsp.rm(full, { force: true });
        continue;
      }
      if (!file.endsWith('.json')) continue;
      const name = file.slice(0, -'.json'.length);
      try {
        const parsed = functionRecordSchema.parse(JSON.parse(await fsp.readFile(full, 'utf8')));
        if (parsed.name !== name) throw new Error(`file holds function ${JSON.stringify(parsed.name)}`);
        this.records.set(name, parsed as FunctionRecord);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        this.skipped.push({ file: full, reason });
        this.log?.warn({ err, file: full }, 'skipping unreadable function record');
      }
    }
    this.started = true;
  }

  async stop(): Promise<void> {
    await this.queue.idle();
    this.started = false;
  }

  private fileOf(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  protected async persist(name: string, record: FunctionRecord | undefined): Promise<void> {
    if (!this.started) throw new HearthError('UNAVAILABLE', 'registry is not started');
    const file = this.fileOf(name);
    if (record === undefined) {
      try {
        await fsp.unlink(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (this.fsync) await fsyncDir(this.dir);
      return;
    }
    const tmp = path.join(this.dir, `.tmp-${name}-${randomBytes(6).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o600);
    try {
      try {
        await fh.writeFile(JSON.stringify(record, null, 2) + '\n');
        if (this.fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, file);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    if (this.fsync) await fsyncDir(this.dir);
  }
}
