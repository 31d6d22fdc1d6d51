/** An unpacked bundle for tests: `files` (path → text) written under a temporary directory removed at teardown. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function bundleDir(t: { teardown(f: () => void): void }, files: Record<string, string>, prefix = 'hearth-bundle-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}
