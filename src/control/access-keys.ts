/**
 * Access keys for the Lambda API (AWS-style key id and secret, for SigV4): one JSON file in the
 * state directory, mode 0600 (root only), rewritten whole (temp file + rename) on every change.
 * The daemon holds the keys in memory; `secretOf` is what the signature check asks, so a key made
 * or removed through the control API counts at once.
 *
 * Errors: BAD_REQUEST (a malformed key name), CONFLICT (a key of that name exists), NOT_FOUND (no
 * such key id). A corrupt file refuses start (CONFIG) rather than dropping keys silently.
 * Concurrency: event-loop only; writes are serialised.
 */
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { HearthError } from '../errors.js';
import { NAME_PATTERN } from '../names.js';

export const KEYS_FILE = 'lambda-keys.json';

/** A key as listed (never the secret). */
export interface AccessKeyInfo {
  accessKeyId: string;
  name: string;
  createdAt: string;
}

/** A key as created: the only time its secret is shown. */
export interface NewAccessKey extends AccessKeyInfo {
  secretAccessKey: string;
}

const fileSchema = z.object({
  keys: z.array(
    z
      .object({
        accessKeyId: z.string().regex(/^[A-Z0-9]{20}$/),
        name: z.string().regex(NAME_PATTERN),
        createdAt: z.string(),
        secretAccessKey: z.string().min(20),
      })
      .strict(),
  ),
});

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `HRTH` and 16 base32 characters (20 in all, like an AWS key id, never mistaken for one). */
function newKeyId(): string {
  return 'HRTH' + [...randomBytes(16)].map((b) => BASE32[b & 31]).join('');
}

export class AccessKeys {
  private readonly keys = new Map<string, NewAccessKey>();
  private readonly file: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.file = join(stateDir, KEYS_FILE);
  }

  /** Loads the keys file (absent: no keys). */
  async start(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let parsed;
    try {
      parsed = fileSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new HearthError('CONFIG', `${this.file} is not a valid keys file (fix or remove it): ${(err as Error).message}`, { cause: err });
    }
    for (const k of parsed.keys) this.keys.set(k.accessKeyId, k);
    await chmod(this.file, 0o600);
  }

  /** The secret of a key id, or undefined. */
  secretOf = (accessKeyId: string): string | undefined => this.keys.get(accessKeyId)?.secretAccessKey;

  list(): AccessKeyInfo[] {
    return [...this.keys.values()].map(({ accessKeyId, name, createdAt }) => ({ accessKeyId, name, createdAt })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async create(name: unknown): Promise<NewAccessKey> {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) throw new HearthError('BAD_REQUEST', `name: must match ${NAME_PATTERN.source}`);
    if ([...this.keys.values()].some((k) => k.name === name)) throw new HearthError('CONFLICT', `a key named ${JSON.stringify(name)} exists`);
    const key: NewAccessKey = { accessKeyId: newKeyId(), name, createdAt: new Date().toISOString(), secretAccessKey: randomBytes(30).toString('base64') };
    this.keys.set(key.accessKeyId, key);
    try {
      await this.save();
    } catch (err) {
      this.keys.delete(key.accessKeyId);
      throw err;
    }
    return key;
  }

  async remove(accessKeyId: string): Promise<void> {
    const key = this.keys.get(accessKeyId);
    if (!key) throw new HearthError('NOT_FOUND', `no access key ${JSON.stringify(accessKeyId)}`);
    this.keys.delete(accessKeyId);
    try {
      await this.save();
    } catch (err) {
      this.keys.set(accessKeyId, key);
      throw err;
    }
  }

  private save(): Promise<void> {
    const text = JSON.stringify({ keys: [...this.keys.values()] }, null, 2) + '\n';
    const next = this.writing.then(async () => {
      const tmp = `${this.file}.tmp`;
      await writeFile(tmp, text, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, this.file);
    });
    this.writing = next.catch(() => undefined);
    return next;
  }
}
