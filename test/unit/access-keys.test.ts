/** Lambda API access keys (src/control/access-keys.ts): kept across restarts, root-only file, refusals change nothing. */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessKeys, KEYS_FILE } from '../../src/control/access-keys.js';
import type { HearthError } from '../../src/errors.js';

test('create, list, secretOf, remove; a new store on the same directory sees the same keys', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-keys-'));
  try {
    const keys = new AccessKeys(dir);
    await keys.start();
    const k = await keys.create('ci');
    t.regex(k.accessKeyId, /^HRTH[A-Z2-7]{16}$/);
    t.true(k.secretAccessKey.length >= 40);
    t.is(keys.secretOf(k.accessKeyId), k.secretAccessKey);
    t.deepEqual(
      keys.list().map((x) => Object.keys(x).sort()),
      [['accessKeyId', 'createdAt', 'name']],
    );
    t.is(statSync(join(dir, KEYS_FILE)).mode & 0o777, 0o600);
    t.is((await t.throwsAsync<HearthError>(keys.create('ci')))?.code, 'CONFLICT');
    t.is((await t.throwsAsync<HearthError>(keys.create('no spaces')))?.code, 'BAD_REQUEST');
    const again = new AccessKeys(dir);
    await again.start();
    t.is(again.secretOf(k.accessKeyId), k.secretAccessKey);
    await again.remove(k.accessKeyId);
    t.is(again.secretOf(k.accessKeyId), undefined);
    t.is((await t.throwsAsync<HearthError>(again.remove(k.accessKeyId)))?.code, 'NOT_FOUND');
    t.deepEqual(JSON.parse(readFileSync(join(dir, KEYS_FILE), 'utf8')), { keys: [] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt keys file refuses start rather than dropping keys', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-keys-'));
  try {
    writeFileSync(join(dir, KEYS_FILE), '{"keys": [{"accessKeyId": 1}]}');
    t.is((await t.throwsAsync<HearthError>(new AccessKeys(dir).start()))?.code, 'CONFIG');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
