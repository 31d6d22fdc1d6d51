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
 * caller (CodeStore) extracts into a private temporary directory and removes it.
 *
 * Modes: files 0644, or 0755 when the archive sets any execute bit; directories 0755. Owner is
 * whoever runs the extraction (root in the daemon): archive uids/gids are ignored.
 */
import { execFile } from 'node:child_process';
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import * as tar from 'tar-stream';
import yauzl from 'yauzl';
import { HearthError } from '../errors.js';

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

export const MiB = 1024 * 1024;

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

const execFileAsync = promisify(execFile);
/** coreutils `sync`; `-f` makes it call syncfs(2) on the file's file system. */
const SYNC_BINARY = '/usr/bin/sync';

const MAX_NAME_BYTES = 4096;
const MAX_SEGMENT_BYTES = 255;
const MAX_LINK_TARGET_BYTES = 4095;
const MAX_SYMLINK_HOPS = 40;

const invalid = (message: string): HearthError => new HearthError('INVALID_ARCHIVE', message);
const q = (s: string): string => JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s);

/** Turns a raw entry name into a clean relative path ('' for the bundle root). Throws INVALID_ARCHIVE. */
export function normalizeEntryName(raw: string): string {
  if (raw.includes('\0')) throw invalid(`entry ${q(raw)}: name contains a NUL character`);
  if (raw.startsWith('/')) throw invalid(`entry ${q(raw)}: absolute path`);
  if (Buffer.byteLength(raw) > MAX_NAME_BYTES) throw invalid(`entry ${q(raw)}: name longer than ${MAX_NAME_BYTES} bytes`);
  const segs: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') throw invalid(`entry ${q(raw)}: path contains a ".." segment`);
    if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) throw invalid(`entry ${q(raw)}: path segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    segs.push(seg);
  }
  return segs.join('/');
}

type NodeKind = 'dir' | 'file' | 'symlink';

/** One path the writer created. Directories hold their children; symlinks their target. */
interface TreeNode {
  kind: NodeKind;
  /** Clean relative path ('' for the root). */
  rel: string;
  parent: TreeNode | undefined;
  children?: Map<string, TreeNode>;
  target?: string;
}

/** Work allowed for symlink resolution over a whole bundle (component steps). */
const MAX_RESOLVE_STEPS = 2_000_000;

/** Writes entries into `root`, keeping the tree of everything it created. */
class BundleWriter {
  private readonly tree: TreeNode = { kind: 'dir', rel: '', parent: undefined, children: new Map() };
  private readonly symlinks: TreeNode[] = [];
  private readonly dirs: string[] = [];
  private readonly fileRels: string[] = [];
  private resolveSteps = 0;
  entries = 0;
  files = 0;
  unpackedBytes = 0;

  constructor(
    private readonly root: string,
    private readonly limits: ArchiveLimits,
    private readonly packedBytes: number,
    private readonly fsync: boolean,
  ) {}

  private abs(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  /** Every entry, and every directory created implicitly, counts against `maxEntries`. */
  countEntry(): void {
    if (++this.entries > this.limits.maxEntries) {
      throw invalid(`too many entries: more than ${this.limits.maxEntries} (directories implied by paths included)`);
    }
  }

  /** The existing node at `rel`, or undefined. */
  private lookup(rel: string): TreeNode | undefined {
    let node: TreeNode | undefined = this.tree;
    if (rel === '') return node;
    for (const seg of rel.split('/')) {
      node = node?.children?.get(seg);
      if (!node) return undefined;
    }
    return node;
  }

  /** Returns the directory that will hold `rel`, creating missing ones; never goes through a symlink or a file. */
  private async parentOf(raw: string, rel: string): Promise<{ dir: TreeNode; base: string }> {
    const segs = rel.split('/');
    let dir = this.tree;
    for (let i = 0; i < segs.length - 1; i++) {
      const seg = segs[i]!;
      let next = dir.children!.get(seg);
      if (next?.kind === 'symlink') throw invalid(`entry ${q(raw)}: would be written through the symlink ${q(next.rel)}`);
      if (next?.kind === 'file') throw invalid(`entry ${q(raw)}: parent ${q(next.rel)} is a file`);
      if (next === undefined) {
        this.countEntry();
        next = await this.mkdir(dir, seg);
      }
      dir = next;
    }
    return { dir, base: segs[segs.length - 1]! };
  }

  private async mkdir(parent: TreeNode, seg: string): Promise<TreeNode> {
    const rel = parent.rel === '' ? seg : `${parent.rel}/${seg}`;
    const p = this.abs(rel);
    await fsp.mkdir(p, { mode: 0o755 });
    await fsp.chmod(p, 0o755); // umask-proof
    const node: TreeNode = { kind: 'dir', rel, parent, children: new Map() };
    parent.children!.set(seg, node);
    this.dirs.push(rel);
    return node;
  }

  private add(parent: TreeNode, seg: string, kind: NodeKind, target?: string): TreeNode {
    const rel = parent.rel === '' ? seg : `${parent.rel}/${seg}`;
    const node: TreeNode = { kind, rel, parent };
    if (target !== undefined) node.target = target;
    parent.children!.set(seg, node);
    return node;
  }

  /**
   * Clean name and parent directory for a new entry; undefined when the entry is the root or an
   * existing directory (both skipped). Throws on duplicates.
   */
  private async prepare(raw: string, kind: NodeKind): Promise<{ rel: string; dir: TreeNode; base: string } | undefined> {
    const rel = normalizeEntryName(raw);
    if (rel === '') {
      if (kind === 'dir') return undefined;
      throw invalid(`entry ${q(raw)}: empty name`);
    }
    const { dir, base } = await this.parentOf(raw, rel);
    const existing = dir.children!.get(base);
    if (existing !== undefined) {
      if (existing.kind === 'dir' && kind === 'dir') return undefined;
      throw invalid(`entry ${q(raw)}: duplicate entry (already extracted as a ${existing.kind})`);
    }
    return { rel, dir, base };
  }

  /**
   * Resolves the symlink `link` against the bundle's own tree the way the kernel would (components
   * that do not exist are taken lexically). False when resolution leaves the bundle root, meets an
   * absolute target, or loops.
   */
  private resolvesInside(link: TreeNode): boolean {
    // The stack holds the path walked so far; undefined marks a component with no node (lexical).
    const stack: (TreeNode | undefined)[] = [];
    for (let n = link.parent; n && n !== this.tree; n = n.parent) stack.unshift(n);
    let pending = link.target!.split('/');
    let hops = 0;
    while (pending.length > 0) {
      if (++this.resolveSteps > MAX_RESOLVE_STEPS) throw invalid('symlinks too numerous or too deep to verify');
      const c = pending.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (stack.length === 0) return false;
        stack.pop();
        continue;
      }
      const top = stack.length === 0 ? this.tree : stack[stack.length - 1];
      const next = top?.children?.get(c);
      if (next?.kind === 'symlink') {
        if (++hops > MAX_SYMLINK_HOPS) return false;
        if (next.target!.startsWith('/')) return false;
        pending = next.target!.split('/').concat(pending);
        continue;
      }
      stack.push(next);
    }
    return true;
  }

  async addDir(raw: string): Promise<void> {
    const p = await this.prepare(raw, 'dir');
    if (p === undefined) return;
    await this.mkdir(p.dir, p.base);
  }

  /**
   * Streams a regular file. `compressedBytes` (zip) enables the per-entry ratio check. Counts
   * every byte as it arrives.
   */
  async addFile(
    raw: string,
    archiveMode: number,
    data: AsyncIterable<Buffer>,
    compressedBytes?: number,
    expectedCrc32?: number,
  ): Promise<void> {
    const p = await this.prepare(raw, 'file');
    if (p === undefined) throw invalid(`entry ${q(raw)}: empty name`);
    const mode = archiveMode & 0o111 ? 0o755 : 0o644;
    const fh = await fsp.open(this.abs(p.rel), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
    this.add(p.dir, p.base, 'file');
    this.fileRels.push(p.rel);
    this.files++;
    try {
      const L = this.limits;
      let fileBytes = 0;
      let crc = 0;
      const checkCrc = expectedCrc32 !== undefined && hasCrc32;
      for await (const chunk of data) {
        const buf = chunk as Buffer;
        fileBytes += buf.length;
        if (checkCrc) crc = zlib.crc32(buf, crc);
        this.unpackedBytes += buf.length;
        if (
          compressedBytes !== undefined &&
          fileBytes > L.bombMinBytes &&
          fileBytes > Math.max(compressedBytes, 1) * L.maxEntryRatio
        ) {
          throw invalid(`entry ${q(raw)}: looks like a compression bomb (expands more than ${L.maxEntryRatio}:1)`);
        }
        if (this.unpackedBytes > L.bombMinBytes && this.unpackedBytes > this.packedBytes * L.maxRatio) {
          throw invalid(`archive looks like a compression bomb: expands more than ${L.maxRatio}:1 (at entry ${q(raw)})`);
        }
        if (this.unpackedBytes > L.maxUnpackedBytes) {
          throw new HearthError('PAYLOAD_TOO_LARGE', `archive exceeds ${L.maxUnpackedBytes} bytes unpacked (at entry ${q(raw)})`);
        }
        let off = 0;
        while (off < buf.length) {
          const { bytesWritten } = await fh.write(buf, off, buf.length - off);
          off += bytesWritten;
        }
      }
      if (checkCrc && crc !== expectedCrc32) throw invalid(`entry ${q(raw)}: CRC-32 mismatch, the archive is corrupt`);
      await fh.chmod(mode); // umask-proof
    } finally {
      await fh.close();
    }
  }

  async addSymlink(raw: string, target: string): Promise<void> {
    const p = await this.prepare(raw, 'symlink');
    if (p === undefined) throw invalid(`entry ${q(raw)}: empty name`);
    if (target === '') throw invalid(`symlink ${q(raw)}: empty target`);
    if (target.includes('\0')) throw invalid(`symlink ${q(raw)}: target contains a NUL character`);
    if (Buffer.byteLength(target) > MAX_LINK_TARGET_BYTES) throw invalid(`symlink ${q(raw)}: target too long`);
    if (target.startsWith('/')) throw invalid(`symlink ${q(raw)} -> ${q(target)}: absolute target`);
    const node = this.add(p.dir, p.base, 'symlink', target);
    if (!this.resolvesInside(node)) {
      throw invalid(`symlink ${q(raw)} -> ${q(target)}: points outside the bundle`);
    }
    await fsp.symlink(target, this.abs(p.rel));
    this.symlinks.push(node);
  }

  async addHardlink(raw: string, rawTarget: string): Promise<void> {
    const p = await this.prepare(raw, 'file');
    if (p === undefined) throw invalid(`entry ${q(raw)}: empty name`);
    let target: string;
    try {
      target = normalizeEntryName(rawTarget);
    } catch {
      throw invalid(`hard link ${q(raw)} -> ${q(rawTarget)}: target outside the bundle`);
    }
    if (this.lookup(target)?.kind !== 'file') {
      throw invalid(`hard link ${q(raw)} -> ${q(rawTarget)}: target is not a regular file extracted earlier from this bundle`);
    }
    // link(2) never follows a symlink in its last component, and `target` is a file we created
    // under directories we created.
    await fsp.link(this.abs(target), this.abs(p.rel));
    this.add(p.dir, p.base, 'file');
  }

  /** Final checks with every link known; makes the tree durable. */
  async finish(): Promise<void> {
    for (const link of this.symlinks) {
      if (!this.resolvesInside(link)) {
        throw invalid(`symlink ${q(link.rel)} -> ${q(link.target!)}: points outside the bundle (through other links)`);
      }
    }
    if (this.fsync) await this.makeDurable();
  }

  /**
   * One syncfs(2) of the store's file system (`sync -f`): far cheaper than an fsync per file
   * (measured: 5,000 small files, ~6 s of fsyncs). Falls back to fsyncing every file and
   * directory, a few at a time, when `sync` cannot be run.
   */
  private async makeDurable(): Promise<void> {
    try {
      await execFileAsync(SYNC_BINARY, ['-f', this.root], { timeout: 120_000, env: {} });
      return;
    } catch {
      // fall through
    }
    const paths = [...this.fileRels, ...this.dirs].map((rel) => this.abs(rel));
    paths.push(this.root);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < paths.length) {
        const p = paths[next++]!;
        const fh = await fsp.open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW);
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** An error from the file system (ENOSPC, EIO…): a fault of this host, not of the archive. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

async function drain(data: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of data) {
    n += (c as Buffer).length;
    if (n > MAX_LINK_TARGET_BYTES + 1) throw invalid('link entry carries too much data');
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

const ignore = (): void => undefined;
/** zlib.crc32 exists from Node 20.15; zip entries are checked against their CRC-32 when it does. */
const hasCrc32 = typeof (zlib as { crc32?: unknown }).crc32 === 'function';

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

async function readZip(archive: Buffer, w: BundleWriter, limits: ArchiveLimits): Promise<void> {
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
      const unixMode = (entry.versionMadeBy >> 8) === 3 ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
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

async function readTarGz(archive: Buffer, w: BundleWriter, limits: ArchiveLimits): Promise<void> {
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
    throw invalid(`not a valid tar.gz archive: ${(failure as Error)?.message ?? String(failure)}`);
  }
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
