/**
 * The read-only root of every sandbox: which host paths are bound where. Only what the runtimes
 * need: /usr (node, python3 and their libraries), a handful of /etc files, the /bin,/lib,... links
 * into /usr, the runtime shims at /hearth/runtimes and the addon directory at /hearth/native.
 * Never /root, /home, /run, or Hearth's state directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HearthError } from '../errors.js';
import type { BindMount, SymlinkSpec } from './binding.js';

export interface RootfsOptions {
  /** Host directory with node/shim.js, python/shim.py, python/zygote.py (the repo's src/runtimes). */
  runtimesDir: string;
  /** Host directory with hearth_sandbox.so (build/Release). */
  nativeDir: string;
  /** Host directory with the generated passwd, group, hosts (see writeSandboxEtc). */
  etcDir: string;
  /** Paths that must never be visible inside (the state dir, for one). */
  forbidden?: string[];
  /** Additional binds (tests: a probe directory). */
  extraBinds?: BindMount[];
  /** Host root to inspect (tests); default "/". */
  hostRoot?: string;
}

export interface RootfsLayout {
  binds: BindMount[];
  symlinks: SymlinkSpec[];
}

/** Never bound, whatever the configuration says. */
export const ALWAYS_FORBIDDEN = ['/root', '/home', '/run', '/var/lib/hearth', '/proc', '/sys', '/boot'];

/** Host /etc entries bound when present (files or directories; never shadow, gshadow, ssl/private). */
const ETC_FROM_HOST = [
  'ld.so.cache',
  'nsswitch.conf',
  'ssl/certs',
  'ssl/openssl.cnf',
  'ca-certificates.conf',
  'localtime',
  'services',
  'protocols',
  'mime.types',
];

/** Generated: a minimal user database and hosts file that reveal nothing about the host. */
const ETC_GENERATED = ['passwd', 'group', 'hosts', 'hostname'];

/** Write the generated /etc files into dir (idempotent). */
export function writeSandboxEtc(dir: string, uid = 65534, gid = 65534): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files: Record<string, string> = {
    passwd: `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:${uid}:${gid}:sandbox:/tmp:/usr/sbin/nologin\n`,
    group: `root:x:0:\nsandbox:x:${gid}:\n`,
    hosts: '127.0.0.1 localhost hearth\n::1 localhost ip6-localhost ip6-loopback\n',
    hostname: 'hearth\n',
  };
  for (const [name, text] of Object.entries(files)) {
    const p = path.join(dir, name);
    let current: string | undefined;
    try {
      current = fs.readFileSync(p, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== text) fs.writeFileSync(p, text, { mode: 0o644 });
  }
}

function within(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Throw if a bind would expose a forbidden path: a bind of a forbidden directory or of one of its
 * ancestors; for the default state directory and `forbidden` (the configured one) also anything
 * inside it.
 */
export function checkBinds(binds: BindMount[], forbidden: string[]): void {
  const always = ALWAYS_FORBIDDEN.map((f) => path.resolve(f));
  const strict = ['/var/lib/hearth', ...forbidden].map((f) => path.resolve(f));
  for (const b of binds) {
    const src = path.resolve(b.src);
    for (const f of [...always, ...strict]) {
      if (within(f, src)) throw new HearthError('CONFIG', `sandbox bind ${b.src} -> ${b.dst} would expose ${f}`);
    }
    for (const f of strict) {
      if (within(src, f)) throw new HearthError('CONFIG', `sandbox bind ${b.src} -> ${b.dst} is inside ${f}`);
    }
  }
}

/** Build the bind list and symlinks for the sandbox root. */
export function buildRootfs(opts: RootfsOptions): RootfsLayout {
  const host = opts.hostRoot ?? '/';
  const hp = (p: string): string => path.join(host, p);
  const binds: BindMount[] = [{ src: hp('/usr'), dst: '/usr' }];
  const symlinks: SymlinkSpec[] = [];
  for (const top of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(hp(`/${top}`));
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) symlinks.push({ target: fs.readlinkSync(hp(`/${top}`)), path: `/${top}` });
    else if (st.isDirectory()) binds.push({ src: hp(`/${top}`), dst: `/${top}` });
  }
  for (const rel of ETC_FROM_HOST) {
    const p = hp(`/etc/${rel}`);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(p);
      // a link into /usr (e.g. localtime -> /usr/share/zoneinfo/...) is recreated; others are bound resolved
      if (target.startsWith('/usr/') || !target.startsWith('/')) symlinks.push({ target, path: `/etc/${rel}` });
      else if (fs.existsSync(p)) binds.push({ src: p, dst: `/etc/${rel}` });
    } else {
      binds.push({ src: p, dst: `/etc/${rel}` });
    }
  }
  binds.push({ src: opts.runtimesDir, dst: '/hearth/runtimes' });
  binds.push({ src: opts.nativeDir, dst: '/hearth/native' });
  for (const b of opts.extraBinds ?? []) binds.push(b);
  checkBinds(binds, opts.forbidden ?? []);
  // generated by Hearth (they may live in the state directory): single files with fixed contents
  for (const name of ETC_GENERATED) binds.push({ src: path.join(opts.etcDir, name), dst: `/etc/${name}` });
  return { binds, symlinks };
}
