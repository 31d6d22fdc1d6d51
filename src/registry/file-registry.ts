/**
 * The durable function registry: one JSON file per function under `<stateDir>/functions/`.
 * Implements the `FunctionRegistry` contract (registry.ts).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fsyncDir } from './bundle-extractor.js';
import { functionRecordSchema, type FunctionRecord } from './function-spec.js';
import { BaseRegistry, type RegistryClock, type RegistryLogger } from './registry.js';

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
        this.records.set(name, parsed);
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
