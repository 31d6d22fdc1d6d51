/**
 * Packs a function directory into a tar.gz bundle for deploy: regular files, directories and
 * symlinks (anything else is skipped).
 *
 * The same files always give the same bytes, so a redeploy of an unchanged directory has the same
 * code hash and the content-addressed store keeps one copy: entries in sorted path order; mtime 0,
 * uid/gid 0, no user or group names; modes normalised to 0755 (directories, executable files) or
 * 0644 (other files); gzip without a timestamp or file name in its header.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { constants, gzipSync } from 'node:zlib';
import tar from 'tar-stream';

const FIXED = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };

export async function packDirectory(dir: string): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const walk = (d: string): void => {
    // Byte order, not locale order: the same on every machine.
    for (const name of readdirSync(d).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      const full = join(d, name);
      const rel = relative(dir, full).split(sep).join('/');
      const st = lstatSync(full);
      if (st.isDirectory()) {
        pack.entry({ ...FIXED, name: rel + '/', type: 'directory', mode: 0o755 });
        walk(full);
      } else if (st.isFile()) {
        pack.entry({ ...FIXED, name: rel, type: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644 }, readFileSync(full));
      } else if (st.isSymbolicLink()) {
        pack.entry({ ...FIXED, name: rel, type: 'symlink', mode: 0o777, linkname: readlinkSync(full) });
      }
    }
  };
  walk(dir);
  pack.finalize();
  await done;
  // zlib writes MTIME 0 and no name in the gzip header; the level is pinned so the bytes do not
  // depend on a default.
  return gzipSync(Buffer.concat(chunks), { level: constants.Z_DEFAULT_COMPRESSION });
}
