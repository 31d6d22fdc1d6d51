/**
 * The one loader of Hearth's native addons: `hearth` (sandbox and processes), `hearth_net`
 * (network namespaces and links) and the test-only `hearth_net_probes`. Each is a
 * build/Release/<name>.node file made by `npm run build:native`.
 *
 * Contract: `loadAddon(name)` returns the injected fake for `name` if a test set one, else the
 * built addon (required once, then cached). When no candidate loads it throws an Error with code
 * HEARTH_NATIVE_MISSING whose message lists every path tried and why each failed.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The addons binding.gyp builds. */
export type AddonName = 'hearth' | 'hearth_net' | 'hearth_net_probes';

const injected = new Map<AddonName, unknown>();
const loaded = new Map<AddonName, unknown>();

/**
 * Directories searched for <name>.node, most specific first: $HEARTH_NATIVE_DIR, then
 * build/Release and build/Debug of the repository root (this file compiles to
 * dist/src/native/loader.js: the root is three levels up, or two when run from src/).
 */
export function addonDirCandidates(): string[] {
  const out: string[] = [];
  const env = process.env['HEARTH_NATIVE_DIR'];
  if (env) out.push(path.resolve(env));
  for (const up of ['../../..', '../..']) {
    const root = path.resolve(__dirname, up);
    out.push(path.join(root, 'build', 'Release'), path.join(root, 'build', 'Debug'));
  }
  return [...new Set(out)];
}

function missing(name: AddonName, tried: Array<{ file: string; why: string }>): Error {
  const lines = tried.map((t) => `  ${t.file}: ${t.why}`);
  const err = new Error(`cannot load the native addon ${name}.node (run \`npm run build:native\`); tried:\n${lines.join('\n')}`);
  (err as NodeJS.ErrnoException).code = 'HEARTH_NATIVE_MISSING';
  return err;
}

/** The directory holding <name>.node (the first candidate that has the file); throws HEARTH_NATIVE_MISSING. */
export function addonDir(name: AddonName): string {
  const tried: Array<{ file: string; why: string }> = [];
  for (const dir of addonDirCandidates()) {
    const file = path.join(dir, `${name}.node`);
    if (fs.existsSync(file)) return dir;
    tried.push({ file, why: 'not found' });
  }
  throw missing(name, tried);
}

/** true when <name>.node exists in one of the candidate directories (for tests that skip without a build). */
export function addonBuilt(name: AddonName): boolean {
  return addonDirCandidates().some((d) => fs.existsSync(path.join(d, `${name}.node`)));
}

/** The injected fake for `name`, else the built addon, loaded once. */
export function loadAddon<T>(name: AddonName): T {
  if (injected.has(name)) return injected.get(name) as T;
  const cached = loaded.get(name);
  if (cached !== undefined) return cached as T;
  const tried: Array<{ file: string; why: string }> = [];
  for (const dir of addonDirCandidates()) {
    const file = path.join(dir, `${name}.node`);
    if (!fs.existsSync(file)) {
      tried.push({ file, why: 'not found' });
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const addon = require(file) as T;
      loaded.set(name, addon);
      return addon;
    } catch (e) {
      tried.push({ file, why: (e as Error).message.split('\n')[0] ?? 'load failed' });
    }
  }
  throw missing(name, tried);
}

/** Makes loadAddon(name) return `fake` (tests); `undefined` restores the built addon. */
export function injectAddon<T>(name: AddonName, fake: T | undefined): void {
  if (fake === undefined) injected.delete(name);
  else injected.set(name, fake);
}
