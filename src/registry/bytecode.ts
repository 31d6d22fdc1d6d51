/**
 * Python bytecode at deploy: a new bundle's `.py` files are compiled to `.pyc` once, so that no
 * instance compiles them again. `/code` is read-only in a sandbox, so without this every generic
 * or cold start of a function compiled its whole import tree from source (a 4.5 MB package:
 * ~540 ms, against ~35 ms from bytecode).
 *
 * The compiler is untrusted-input work, so it runs in a fresh sandbox
 * (src/runtimes/python/compile_bundle.py, the bundle mounted read-only at /code) and only sends
 * bytes back; this side checks every path and writes `<dir of the module>/__pycache__/<stem>.<tag>.pyc`
 * into the bundle's temporary directory before the code store renames it into place. Compiling
 * is an optimisation: if it fails, times out or is refused, the bundle is stored without bytecode
 * and its modules compile at import as before.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import { asError } from '../errors.js';
import type { InstanceLimits } from '../sandbox/types.js';
import { encodeFrame, FrameDecoder } from '../wire/frame.js';

export interface BytecodeReport {
  /** Modules whose .pyc was written. */
  compiled: number;
  /** Modules the compiler could not compile (their import will report the error). */
  failed: string[];
  /** Why nothing was compiled, when it was not (no Python sources, or the compiler failed). */
  skipped?: string;
  ms: number;
}

/** What the compiler needs of the sandbox driver (SandboxDriver satisfies it). */
export interface CompileSandbox {
  spawnProgram(
    id: string,
    limits: InstanceLimits,
    argv: string[],
  ): Promise<{ socket: net.Socket; mountCode(dir: string): void; kill(): void; exited: Promise<unknown> }>;
}

export interface BytecodeOptions {
  /** Default 60 s: then the compiler is killed and the bundle is stored without bytecode. */
  timeoutMs?: number;
}

const ARGV = ['/usr/bin/python3', '-I', '-S', '/hearth/runtimes/python/compile_bundle.py'];
const LIMITS: InstanceLimits = { memoryMb: 512, pids: 8, cpuPercent: 100, tmpMb: 1 };
const TAG = /^[a-z][a-z0-9_]{0,30}-[0-9]{1,4}$/;

/** Regular `.py` files under dir (no symlinks followed) and their total size. */
function pythonSources(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.py')) {
        files++;
        bytes += fs.lstatSync(p).size;
      }
    }
  };
  walk(dir);
  return { files, bytes };
}

/**
 * Writes one module's bytecode into the bundle at `dir`, after checking that `rel` names a regular
 * `.py` file inside it (no absolute path, no `..`, no symlink on the way) and that the cache
 * directory is a real directory. Throws on anything else. Exported for tests.
 */
export function writePyc(dir: string, tag: string, rel: unknown, data: Buffer, fsync = false): string {
  if (!TAG.test(tag)) throw new Error(`bad cache tag ${JSON.stringify(tag)}`);
  if (typeof rel !== 'string' || rel.length === 0 || rel.length > 4096 || !rel.endsWith('.py')) throw new Error(`bad module path ${JSON.stringify(rel)}`);
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p === '__pycache__' || p.includes('\0')))
    throw new Error(`bad module path ${JSON.stringify(rel)}`);
  let d = dir;
  for (const p of parts.slice(0, -1)) {
    d = path.join(d, p);
    if (!fs.lstatSync(d).isDirectory()) throw new Error(`${rel}: ${p} is not a directory`);
  }
  const src = path.join(dir, rel);
  if (!fs.lstatSync(src).isFile()) throw new Error(`${rel} is not a regular file`);
  const cacheDir = path.join(path.dirname(src), '__pycache__');
  try {
    if (!fs.lstatSync(cacheDir).isDirectory()) throw new Error(`${rel}: __pycache__ is not a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(cacheDir, { mode: 0o755 });
  }
  const target = path.join(cacheDir, `${parts[parts.length - 1].slice(0, -3)}.${tag}.pyc`);
  const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644);
  try {
    fs.writeSync(fd, data);
    fs.fchmodSync(fd, 0o644);
    if (fsync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return target;
}

/** What the sandboxed reader found about a handler function (see `findFunction`). */
export interface FunctionCheck {
  /** true: defined; false: certainly not defined; undefined: cannot be told without running the module. */
  found: boolean | undefined;
  /** The module file read, relative to the bundle. */
  file?: string;
}

/** Definite answers of `findFunction` kept per bundle directory, module and function (bundles never change). */
const FIND_CACHE_ENTRIES = 1024;

export class PythonBytecodeCompiler {
  private seq = 0;
  private readonly found = new Map<string, FunctionCheck>();
  constructor(
    private readonly sandbox: CompileSandbox,
    private readonly opts: BytecodeOptions = {},
  ) {}

  /**
   * Whether the Python module `module` (bundle-relative, no extension: `pkg/mod`) of the bundle at
   * `dir` defines `fn` at its top level, read from its syntax tree in a fresh sandbox (the module is
   * not run; compile_bundle.py --check). Undefined when that cannot be told (dynamic module, no
   * source, the sandbox failed or took over 10 s). Never throws.
   */
  async findFunction(dir: string, module: string, fn: string): Promise<FunctionCheck> {
    // A bundle directory is content-addressed and never changes, so a definite answer stays true:
    // redeploying the same code and handler (or many functions of one bundle) starts no sandbox.
    const key = `${dir}\0${module}\0${fn}`;
    const known = this.found.get(key);
    if (known) return known;
    const r = await this.checkInSandbox(dir, module, fn);
    if (r.found !== undefined) {
      if (this.found.size >= FIND_CACHE_ENTRIES) this.found.delete(this.found.keys().next().value!);
      this.found.set(key, r);
    }
    return r;
  }

  private async checkInSandbox(dir: string, module: string, fn: string): Promise<FunctionCheck> {
    let proc: Program;
    try {
      proc = await this.sandbox.spawnProgram(`pyh-${process.pid}-${++this.seq}-${randomBytes(3).toString('hex')}`, LIMITS, [...ARGV, '--check', module, fn]);
    } catch {
      return { found: undefined };
    }
    try {
      return await converse<FunctionCheck>(proc, Math.min(this.opts.timeoutMs ?? 10_000, 10_000), 'closed', (m, resolve) => {
        if (m.t === 'ready') {
          proc.mountCode(dir);
          proc.socket.write(encodeFrame({ t: 'go' }));
        } else if (m.t === 'handler') {
          resolve({ found: typeof m.found === 'boolean' ? m.found : undefined, ...(typeof m.file === 'string' ? { file: m.file } : {}) });
        } else throw new Error('unexpected message');
      });
    } catch {
      return { found: undefined };
    } finally {
      await end(proc);
    }
  }

  /** Compiles the `.py` files of the unpacked bundle at `dir` into it (fsync: each .pyc). Never throws. */
  async compile(dir: string, { fsync = false }: { fsync?: boolean } = {}): Promise<BytecodeReport> {
    const t0 = performance.now();
    const done = (r: Omit<BytecodeReport, 'ms'>): BytecodeReport => ({ ...r, ms: performance.now() - t0 });
    let sources: { files: number; bytes: number };
    try {
      sources = pythonSources(dir);
    } catch (err) {
      return done({ compiled: 0, failed: [], skipped: `cannot list the bundle: ${(err as Error).message}` });
    }
    if (sources.files === 0) return done({ compiled: 0, failed: [], skipped: 'no Python sources' });
    // .pyc files are about as large as their sources; more than this means something is wrong.
    const budget = 4 * sources.bytes + 1024 * 1024;
    let proc: Program;
    try {
      proc = await this.sandbox.spawnProgram(`pyc-${process.pid}-${++this.seq}-${randomBytes(3).toString('hex')}`, LIMITS, ARGV);
    } catch (err) {
      return done({ compiled: 0, failed: [], skipped: `cannot start the compiler: ${(err as Error).message}` });
    }
    let compiled = 0;
    let written = 0;
    const timeoutMs = this.opts.timeoutMs ?? 60_000;
    let tag: string | undefined;
    try {
      const failed = await converse<string[]>(proc, timeoutMs, 'the compiler exited before it was done', (m, resolve) => {
        if (m.t === 'ready' && tag === undefined) {
          if (typeof m.tag !== 'string' || !TAG.test(m.tag)) throw new Error(`bad cache tag ${JSON.stringify(m.tag)}`);
          tag = m.tag;
          proc.mountCode(dir);
          proc.socket.write(encodeFrame({ t: 'go' }));
        } else if (m.t === 'pyc' && tag !== undefined) {
          if (typeof m.data !== 'string') throw new Error('pyc frame without data');
          const data = Buffer.from(m.data, 'base64');
          written += data.length;
          if (written > budget || compiled >= sources.files) throw new Error('the compiler sent more than the bundle can produce');
          writePyc(dir, tag, m.path, data, fsync);
          compiled++;
        } else if (m.t === 'done' && tag !== undefined) {
          resolve(Array.isArray(m.failed) ? m.failed.filter((f): f is string => typeof f === 'string').slice(0, 100) : []);
        } else {
          throw new Error(`unexpected ${JSON.stringify(String(m.t).slice(0, 32))} message`);
        }
      });
      return done({ compiled, failed });
    } catch (err) {
      // Whatever was written stays: each .pyc is complete (or Python ignores it: bad magic,
      // mismatched source); the rest compile at import.
      return done({ compiled, failed: [], skipped: `compiler failed: ${(err as Error).message}` });
    } finally {
      await end(proc);
    }
  }
}

type Program = Awaited<ReturnType<CompileSandbox['spawnProgram']>>;

/**
 * One exchange with a sandboxed helper program over its frame socket: `onMessage` handles each
 * message and calls `resolve` with the answer; a throw from it, a socket error, the socket closing
 * (`closedMessage`) or `timeoutMs` passing rejects.
 */
function converse<T>(
  proc: Program,
  timeoutMs: number,
  closedMessage: string,
  onMessage: (m: { t: string } & Record<string, unknown>, resolve: (v: T) => void) => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${timeoutMs} ms`)), timeoutMs);
    const decoder = new FrameDecoder((m) => onMessage(m, resolve));
    proc.socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        reject(asError(err));
      }
    });
    proc.socket.on('error', reject);
    proc.socket.on('close', () => reject(new Error(closedMessage)));
  }).finally(() => clearTimeout(timer));
}

/** Ends a helper program: its socket, its process, and waits until it is reaped. */
async function end(proc: Program): Promise<void> {
  proc.socket.destroy();
  proc.kill();
  await proc.exited;
}
