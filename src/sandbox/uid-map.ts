/**
 * Which host uid each function's instances run as (docs/sandbox.md, Identity). Root inside an
 * instance's user namespace maps to its function's uid (gid: the same number), allocated from a
 * range of host ids no host user or process may use (`--uid-range START:COUNT`, default
 * 200000:65536). The range's first id is the pool id: what a generic instance runs as, unmapped in
 * its user namespace, before it is specialised; functions get the others, one each, never shared.
 *
 * The allocation is host-local state (also in cluster mode: uids mean something on one host only):
 * `<stateDir>/uids.json`, mode 0600, rewritten whole (temp file + rename) after every change, read at
 * start. The write is asynchronous (write-behind, coalesced; `flush()` waits for it): an allocation
 * happens at a function's first specialisation, on the start's path, where a synchronous write
 * held the event loop 0.6 ms (p90 3.4 ms) on this machine. An allocation lost in a crash is
 * harmless: at start the daemon kills every instance a crashed run left, so nothing runs as a uid
 * the file does not record. A function keeps its uid across updates and daemon restarts; deleting it frees the uid.
 * Freed uids are handed out again only after every other free uid of the range (allocation goes
 * round the range from where the last one stopped), so a deleted function's last instances are
 * long gone before its uid can be someone else's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HearthError } from '../errors.js';

/** A range of host ids (the config's `uidRange`, parsed by parseUidRange in src/config.ts). */
export interface UidRange {
  /** First host uid of the range: the pool id. */
  start: number;
  /** Ids in the range, the pool id included (at least 2). */
  count: number;
}

interface UidFile {
  version: 1;
  start: number;
  count: number;
  /** Where the next allocation starts looking. */
  next: number;
  functions: Record<string, number>;
}

interface UidMapLogger {
  warn(obj: object, msg?: string): void;
}

export class UidMap {
  private readonly file: string;
  private readonly byName = new Map<string, number>();
  private readonly used = new Set<number>();
  private next: number;
  private dirty = false;
  private writing: Promise<void> | undefined;

  /** Reads `<stateDir>/uids.json` (absent: nothing allocated yet). A file of another range is started over. */
  constructor(
    stateDir: string,
    readonly range: UidRange,
    private readonly log?: UidMapLogger,
  ) {
    this.file = path.join(stateDir, 'uids.json');
    this.next = range.start + 1;
    let saved: UidFile | undefined;
    try {
      saved = JSON.parse(fs.readFileSync(this.file, 'utf8')) as UidFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.warn({ err, file: this.file }, 'unreadable uid allocation: starting over');
    }
    if (saved && (saved.start !== range.start || saved.count !== range.count)) {
      log?.warn({ was: `${saved.start}:${saved.count}`, now: `${range.start}:${range.count}` }, 'uid range changed: every function gets a new uid');
      saved = undefined;
    }
    if (saved && typeof saved.functions === 'object' && saved.functions !== null) {
      for (const [name, uid] of Object.entries(saved.functions)) {
        if (Number.isInteger(uid) && this.isFunctionId(uid) && !this.used.has(uid)) this.take(name, uid);
      }
      if (Number.isInteger(saved.next) && this.isFunctionId(saved.next)) this.next = saved.next;
    }
  }

  /** The range `<stateDir>/uids.json` was written for, if the file is there and readable. */
  static savedRange(stateDir: string): UidRange | undefined {
    try {
      const saved = JSON.parse(fs.readFileSync(path.join(stateDir, 'uids.json'), 'utf8')) as Partial<UidFile>;
      return Number.isInteger(saved.start) && Number.isInteger(saved.count) ? { start: saved.start!, count: saved.count! } : undefined;
    } catch {
      return undefined;
    }
  }

  /** The pool id: what instances run as (unmapped) before specialisation. */
  get poolId(): number {
    return this.range.start;
  }

  /** Functions with a uid now. */
  get size(): number {
    return this.byName.size;
  }

  /** `fn`'s uid, allocated (and saved) if it has none. Throws HearthError UNAVAILABLE when the range is full. */
  uidFor(fn: string): number {
    const have = this.byName.get(fn);
    if (have !== undefined) return have;
    const ids = this.range.count - 1;
    if (this.used.size >= ids) {
      throw new HearthError('UNAVAILABLE', `no host uid left for ${fn}: all ${ids} of --uid-range ${this.range.start}:${this.range.count} are taken`);
    }
    let uid = this.next;
    while (this.used.has(uid)) uid = this.after(uid);
    this.take(fn, uid);
    this.next = this.after(uid);
    this.save();
    return uid;
  }

  /** The uid `fn` has, if any (no allocation). */
  peek(fn: string): number | undefined {
    return this.byName.get(fn);
  }

  /** `fn` was deleted: its uid is free (handed out again only after the rest of the range). */
  release(fn: string): void {
    const uid = this.byName.get(fn);
    if (uid === undefined) return;
    this.byName.delete(fn);
    this.used.delete(uid);
    this.save();
  }

  /** Frees the uid of every function not in `live` (deleted while the daemon was down). */
  retain(live: Iterable<string>): void {
    const keep = new Set(live);
    let changed = false;
    for (const [name, uid] of [...this.byName]) {
      if (keep.has(name)) continue;
      this.byName.delete(name);
      this.used.delete(uid);
      changed = true;
    }
    if (changed) this.save();
  }

  private isFunctionId(uid: number): boolean {
    return uid > this.range.start && uid < this.range.start + this.range.count;
  }

  private after(uid: number): number {
    return uid + 1 < this.range.start + this.range.count ? uid + 1 : this.range.start + 1;
  }

  private take(name: string, uid: number): void {
    this.byName.set(name, uid);
    this.used.add(uid);
  }

  /** Resolves once every change made so far is in the file (or its write failed: logged). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Schedules a write of the whole file (one at a time; changes made meanwhile go in the next). */
  private save(): void {
    this.dirty = true;
    this.writing ??= this.writeBehind();
  }

  private async writeBehind(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        const data: UidFile = {
          version: 1,
          start: this.range.start,
          count: this.range.count,
          next: this.next,
          functions: Object.fromEntries([...this.byName].sort(([a], [b]) => a.localeCompare(b))),
        };
        const tmp = `${this.file}.tmp`;
        await fs.promises.writeFile(tmp, JSON.stringify(data, null, 1) + '\n', { mode: 0o600 });
        await fs.promises.rename(tmp, this.file);
      }
    } catch (err) {
      this.log?.warn({ err, file: this.file }, 'cannot save the uid allocation (kept in memory; written again at the next change)');
    } finally {
      this.writing = undefined;
    }
  }
}
