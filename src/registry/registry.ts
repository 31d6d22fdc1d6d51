/**
 * Function definitions: the `FunctionRegistry` contract, and `MemoryRegistry`, its in-memory
 * implementation (tests, tools). The durable one is `FileRegistry` (file-registry.ts); a NATS
 * JetStream key-value one (one key per function, watched for changes) must fit the same contract,
 * checked by the one conformance suite (test/conformance/function-registry.ts). Nothing above
 * this interface (FunctionService, the catalogue, the control services) may use more than it.
 *
 * Contract:
 * - Concurrency: all methods may be called concurrently within one process; operations on one
 *   name are applied in call order, operations on different names independently. `put` and
 *   `delete` resolve only after the change is durable (for the memory one: made).
 * - `put` creates or replaces a function: `createdAt` is kept on update, `updatedAt` set from the
 *   injected clock; it returns the stored record and whether it was created.
 * - `get` returns undefined for an unknown name (callers decide which error that is); `list`
 *   returns every function sorted by name.
 * - Errors: INVALID_NAME for a bad name (as a rejected promise, nothing changed); BAD_REQUEST
 *   for a definition that would not load again; UNAVAILABLE when a write is attempted on a store
 *   that is not started; anything else is a storage fault and leaves the registry unchanged.
 * - `onChange` listeners are called after each durable change, with the record (put) or
 *   undefined (delete), synchronously, in registration order, once per change (a delete of an
 *   unknown name is no change); a change is visible to `get` when its listeners run; a throwing
 *   listener is logged and affects neither the change nor other listeners. With a distributed
 *   backend, changes made by other hosts are announced the same way.
 * - Records handed out are copies; mutating them does not change the registry.
 * - Life: construct → `start()` (loads state) → `stop()` (waits for running writes); writes
 *   outside start..stop are refused with UNAVAILABLE;
 *   `stop()` is safe after a failed or missing start.
 */
import { HearthError } from '../errors.js';
import { functionRecordSchema, validateFunctionName, zodToHearthError, type FunctionDefinition, type FunctionRecord } from './function-spec.js';

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

export interface FunctionRegistry {
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
  if (def.description !== undefined) record.description = def.description;
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

/**
 * The part every implementation that keeps all records in memory shares (both here): copies,
 * per-name ordering, listeners. A subclass only makes a change durable (`persist`).
 */
export abstract class BaseRegistry implements FunctionRegistry {
  protected readonly records = new Map<string, FunctionRecord>();
  protected readonly queue = new KeyedQueue();
  /** Between `start()` and `stop()`: writes are accepted. Subclasses set it. */
  protected started = false;
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
      this.checkStarted();
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
      this.checkStarted();
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

  private checkStarted(): void {
    if (!this.started) throw new HearthError('UNAVAILABLE', 'registry is not started');
  }

  protected emit(name: string, record: FunctionRecord | undefined): void {
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
  async start(): Promise<void> {
    this.started = true;
  }
  async stop(): Promise<void> {
    await this.queue.idle();
    this.started = false;
  }
  protected async persist(): Promise<void> {}
}
