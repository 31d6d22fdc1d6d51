/**
 * Unpacks an untrusted code bundle (zip or gzip-compressed tar) into an empty directory.
 *
 * Contract: `extractArchive` either fills `root` with the bundle's regular files, directories and
 * in-bundle symlinks/hard links and resolves, or throws a HearthError (INVALID_ARCHIVE or
 * PAYLOAD_TOO_LARGE) naming the offending entry. It never writes outside `root`: every name is
 * checked (relative, no `..`, no NUL), nothing is written through a symlink (the writer knows every
 * path it created and refuses paths below a symlink; files are opened O_CREAT|O_EXCL|O_NOFOLLOW),
 * symlinks must resolve inside the bundle (checked on entry and again, with every link known, at
 * the end), hard links may only point at a regular file already extracted. Sizes are counted while
 * streaming; declared sizes are never trusted. On failure `root` may hold a partial tree: the
 * caller (a code store) extracts into a private temporary directory and removes it.
 *
 * The writer (names, links, modes, durability) is bundle-writer.ts; the zip and tar.gz readers
 * are archive-readers.ts.
 *
 * Modes: files 0644, or 0755 when the archive sets any execute bit; directories 0755. Owner is
 * whoever runs the extraction (root in the daemon): archive uids/gids are ignored.
 */
import { HearthError } from '../errors.js';
import { readTarGz, readZip } from './archive-readers.js';
import { BundleWriter, invalid, MiB } from './bundle-writer.js';

export { fsyncDir, MiB, normalizeEntryName } from './bundle-writer.js';

export interface ArchiveLimits {
  /** Archive size as uploaded. Over it: PAYLOAD_TOO_LARGE. */
  maxPackedBytes: number;
  /** Sum of all extracted file bytes. Over it: PAYLOAD_TOO_LARGE. */
  maxUnpackedBytes: number;
  /** Entries of any kind (files, dirs, links). Over it: INVALID_ARCHIVE. */
  maxEntries: number;
  /** Unpacked/packed ratio of the whole archive above which it is a compression bomb. */
  maxRatio: number;
  /** Unpacked/compressed ratio of one zip entry above which it is a compression bomb. */
  maxEntryRatio: number;
  /** Ratios are judged only once this many bytes have been unpacked (tiny archives compress oddly). */
  bombMinBytes: number;
}

export const DEFAULT_ARCHIVE_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxPackedBytes: 50 * MiB,
  maxUnpackedBytes: 250 * MiB,
  maxEntries: 20_000,
  maxRatio: 200,
  maxEntryRatio: 200,
  bombMinBytes: 1 * MiB,
});

export type ArchiveFormat = 'zip' | 'tar.gz';

/** Format by magic bytes: `PK\x03\x04` (or an empty zip's `PK\x05\x06`) is zip, `1f 8b` is gzip (tar inside). */
export function detectFormat(archive: Buffer): ArchiveFormat | undefined {
  if (archive.length >= 4 && archive[0] === 0x50 && archive[1] === 0x4b) {
    if ((archive[2] === 0x03 && archive[3] === 0x04) || (archive[2] === 0x05 && archive[3] === 0x06)) return 'zip';
  }
  if (archive.length >= 2 && archive[0] === 0x1f && archive[1] === 0x8b) return 'tar.gz';
  return undefined;
}

export interface ExtractResult {
  format: ArchiveFormat;
  /** Entries read from the archive (all kinds). */
  entries: number;
  files: number;
  /** Sum of bytes of all extracted regular files (hard links not counted twice). */
  unpackedBytes: number;
}

export interface ExtractOptions {
  /** Make the unpacked tree durable (syncfs, or fsync of every file and directory) before returning. Default true. */
  fsync?: boolean;
}

/**
 * Unpacks `archive` into `root` (an existing, empty, private directory). See the module comment
 * for the contract.
 */
export async function extractArchive(
  archive: Buffer,
  root: string,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
  opts: ExtractOptions = {},
): Promise<ExtractResult> {
  if (archive.length > limits.maxPackedBytes) {
    throw new HearthError('PAYLOAD_TOO_LARGE', `archive is ${archive.length} bytes, over the ${limits.maxPackedBytes} bytes packed limit`);
  }
  const format = detectFormat(archive);
  if (format === undefined) throw invalid('not a zip or tar.gz archive (unrecognised leading bytes)');
  const w = new BundleWriter(root, limits, archive.length, opts.fsync ?? true);
  if (format === 'zip') await readZip(archive, w, limits);
  else await readTarGz(archive, w, limits);
  await w.finish();
  return { format, entries: w.entries, files: w.files, unpackedBytes: w.unpackedBytes };
}
