/**
 * Finding the host tools Hearth runs (nft, nsenter, ...) before running them, so that a missing
 * one is reported by name with its Debian package instead of as a child's exit status. The file
 * system access is injectable for unit tests.
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

/** The PATH Hearth gives the host tools it runs (never the caller's). */
export const TOOL_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** True when p is a regular file this process may execute. */
export type ExecutableProbe = (p: string) => boolean;

export const isExecutableFile: ExecutableProbe = (p) => {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The full path of `name` in the colon-separated searchPath, or undefined when no entry has it. */
export function findTool(name: string, searchPath: string = TOOL_PATH, probe: ExecutableProbe = isExecutableFile): string | undefined {
  for (const dir of searchPath.split(':')) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    if (probe(p)) return p;
  }
  return undefined;
}
