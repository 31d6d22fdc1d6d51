/** Packs a function directory into a tar.gz bundle for deploy (regular files, dirs, relative symlinks). */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export async function packDirectory(dir: string): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      const rel = relative(dir, full).split(sep).join('/');
      const st = lstatSync(full);
      if (st.isDirectory()) {
        pack.entry({ name: rel + '/', type: 'directory', mode: 0o755 });
        walk(full);
      } else if (st.isFile()) {
        pack.entry({ name: rel, type: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644 }, readFileSync(full));
      } else if (st.isSymbolicLink()) {
        pack.entry({ name: rel, type: 'symlink', linkname: readlinkSync(full) });
      }
    }
  };
  walk(dir);
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}
