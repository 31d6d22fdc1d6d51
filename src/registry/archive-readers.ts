/**
 * The two archive formats, read entry by entry into a BundleWriter: zip (yauzl, from the central
 * directory, CRC-checked) and gzip-compressed tar (tar-stream, with the inflated size bounded as
 * it streams). Malformed input is INVALID_ARCHIVE; file-system faults pass through as they are.
 */
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import * as tar from 'tar-stream';
import yauzl from 'yauzl';
import { asError, HearthError } from '../errors.js';
import type { ArchiveLimits } from './bundle-extractor.js';
import { BundleWriter, hasCrc32, invalid, MAX_LINK_TARGET_BYTES, MiB, q } from './bundle-writer.js';

/** An error from the file system (ENOSPC, EIO…): a fault of this host, not of the archive. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

async function drain(data: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of data) {
    n += c.length;
    if (n > MAX_LINK_TARGET_BYTES + 1) throw invalid('link entry carries too much data');
    parts.push(c);
  }
  return Buffer.concat(parts);
}

const ignore = (): void => undefined;

async function discard(data: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of data) void _;
}

// ---------------------------------------------------------------- zip

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const FILE_TYPE_NAMES: Record<number, string> = {
  0o020000: 'character device',
  0o060000: 'block device',
  0o010000: 'fifo',
  0o140000: 'socket',
};

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * An entry's name: UTF-8 when flagged (or given in an Info-ZIP Unicode Path field); unflagged
 * names are read as UTF-8 when they are valid UTF-8 (what Info-ZIP `zip` on Linux writes), else
 * as CP437, the format's default. Backslashes (old Windows tools) become `/`.
 */
function zipEntryName(entry: yauzl.Entry): string {
  const raw = entry.fileName as unknown as Buffer; // decodeStrings: false
  const flagged = (entry.generalPurposeBitFlag & 0x800) !== 0;
  if (!flagged && !entry.extraFields.some((f) => f.id === 0x7075)) {
    try {
      return strictUtf8.decode(raw).replace(/\\/g, '/');
    } catch {
      // not UTF-8: CP437 below
    }
  }
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, false);
}

export async function readZip(archive: Buffer, w: BundleWriter, limits: ArchiveLimits): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromBufferPromise(archive, {
      lazyEntries: true,
      // Names are decoded and checked here (zipEntryName, normalizeEntryName), not by yauzl.
      decodeStrings: false,
      validateEntrySizes: true,
      strictFileNames: false,
    });
  } catch (err) {
    throw invalid(`not a valid zip archive: ${(err as Error).message}`);
  }
  // Errors reach us through the iterators; these keep a late one (after we stopped listening)
  // from becoming an uncaught 'error' event.
  zip.on('error', ignore);
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw invalid(`too many entries: ${zip.entryCount}, more than ${limits.maxEntries}`);
    }
    for await (const entry of zip.eachEntry()) {
      w.countEntry();
      const name = zipEntryName(entry);
      if (entry.isEncrypted()) throw invalid(`entry ${q(name)}: encrypted entries are not supported`);
      const unixMode = entry.versionMadeBy >> 8 === 3 ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
      const type = unixMode & S_IFMT;
      if (FILE_TYPE_NAMES[type] !== undefined) throw invalid(`entry ${q(name)}: ${FILE_TYPE_NAMES[type]} not allowed`);
      if (name.endsWith('/') || type === S_IFDIR) {
        if (type !== 0 && type !== S_IFDIR) throw invalid(`entry ${q(name)}: directory name with a non-directory mode`);
        await w.addDir(name);
        continue;
      }
      if (!entry.canDecodeFileData()) {
        throw invalid(`entry ${q(name)}: unsupported compression method ${entry.compressionMethod}`);
      }
      const raw = await zip.openReadStreamPromise(entry);
      // yauzl reports an inflate error with a bare emit('error') on a later tick, possibly before
      // anyone iterates the stream (our name checks and open() come first): then the stream would
      // neither end nor fail for a late reader. Route it into a stream that keeps the failure.
      const stream = new PassThrough();
      raw.on('error', (err) => stream.destroy(err));
      raw.pipe(stream);
      stream.on('error', ignore);
      try {
        if (type === S_IFLNK) {
          const bytes = await drain(stream);
          if (hasCrc32 && zlib.crc32(bytes) !== entry.crc32) throw invalid(`entry ${q(name)}: CRC-32 mismatch, the archive is corrupt`);
          const target = bytes.toString('utf8');
          await w.addSymlink(name, target);
        } else if (type === 0 || type === S_IFREG) {
          await w.addFile(name, unixMode, stream, entry.compressedSize, entry.crc32);
        } else {
          throw invalid(`entry ${q(name)}: unsupported file type 0o${type.toString(8)}`);
        }
      } finally {
        raw.unpipe(stream);
        raw.destroy();
        stream.destroy();
      }
    }
  } catch (err) {
    if (err instanceof HearthError || isSystemError(err)) throw err;
    throw invalid(`not a valid zip archive: ${(err as Error).message}`);
  } finally {
    zip.close();
  }
}

// ---------------------------------------------------------------- tar.gz

/** Counts decompressed bytes: bounds the tar stream itself (headers included) and judges the ratio. */
class InflateGuard extends Transform {
  private n = 0;
  constructor(
    private readonly packedBytes: number,
    private readonly limits: ArchiveLimits,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    const L = this.limits;
    if (this.n > L.bombMinBytes && this.n > this.packedBytes * L.maxRatio) {
      cb(invalid(`archive looks like a compression bomb: expands more than ${L.maxRatio}:1`));
      return;
    }
    // Headers: 512 bytes each plus long-name/pax records; generous room for them.
    if (this.n > L.maxUnpackedBytes + L.maxEntries * 2048 + MiB) {
      cb(new HearthError('PAYLOAD_TOO_LARGE', `archive exceeds ${L.maxUnpackedBytes} bytes unpacked`));
      return;
    }
    cb(null, chunk);
  }
}

export async function readTarGz(archive: Buffer, w: BundleWriter, limits: ArchiveLimits): Promise<void> {
  const source = Readable.from([archive]);
  const gunzip = zlib.createGunzip();
  const guard = new InflateGuard(archive.length, limits);
  const extract = tar.extract();
  let failure: unknown;
  const fail = (err: unknown): void => {
    if (failure === undefined) failure = err;
    source.destroy();
    gunzip.destroy();
    guard.destroy();
    extract.destroy(err as Error);
  };
  source.on('error', fail);
  gunzip.on('error', (err) => fail(invalid(`not a valid gzip stream: ${err.message}`)));
  guard.on('error', fail);
  extract.on('error', (err: Error) => {
    if (failure === undefined) failure = err;
  });
  source.pipe(gunzip).pipe(guard).pipe(extract);
  try {
    for await (const entry of extract) {
      w.countEntry();
      const h = entry.header;
      const name = h.name;
      const data = entry as unknown as AsyncIterable<Buffer>;
      entry.on('error', ignore); // see readZip
      switch (h.type) {
        case 'file':
        case 'contiguous-file':
          // Old (v7) tars mark directories as empty files whose name ends in '/'.
          if (name.endsWith('/') && (h.size ?? 0) === 0) {
            await discard(data);
            await w.addDir(name);
          } else {
            await w.addFile(name, h.mode ?? 0o644, data);
          }
          break;
        case 'directory':
          await discard(data);
          await w.addDir(name);
          break;
        case 'symlink':
          await discard(data);
          await w.addSymlink(name, h.linkname ?? '');
          break;
        case 'link':
          await discard(data);
          await w.addHardlink(name, h.linkname ?? '');
          break;
        case 'character-device':
        case 'block-device':
        case 'fifo':
          throw invalid(`entry ${q(name)}: ${h.type.replace('-', ' ')} not allowed`);
        default:
          // null: GNU sparse files, dump directories, volume headers… (tar-stream has no name for them)
          throw invalid(`entry ${q(name)}: unsupported tar entry type${h.type ? ` ${String(h.type)}` : ''}`);
      }
    }
  } catch (err) {
    fail(err);
  }
  if (failure !== undefined) {
    if (failure instanceof HearthError || isSystemError(failure)) throw failure;
    throw invalid(`not a valid tar.gz archive: ${asError(failure).message}`);
  }
}
