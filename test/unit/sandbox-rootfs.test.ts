/**
 * The sandbox root layout: only what the runtimes need, links recreated, never the forbidden paths.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HearthError } from '../../src/errors.js';
import { buildRootfs, checkBinds, writeSandboxEtc } from '../../src/sandbox/rootfs.js';

function fakeHost(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-rootfs-'));
  for (const d of ['usr/bin', 'usr/lib', 'usr/lib64', 'usr/sbin', 'etc/ssl/certs', 'etc/ssl/private', 'root', 'home/u'])
    fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const top of ['bin', 'lib', 'lib64', 'sbin']) fs.symlinkSync(`usr/${top}`, path.join(root, top));
  for (const f of ['etc/ld.so.cache', 'etc/nsswitch.conf', 'etc/shadow', 'etc/passwd', 'etc/ssl/openssl.cnf']) fs.writeFileSync(path.join(root, f), 'x');
  fs.symlinkSync('/usr/share/zoneinfo/Etc/UTC', path.join(root, 'etc/localtime'));
  return root;
}

test('binds /usr, selected /etc files, runtimes and native dirs; recreates the /usr links', (t) => {
  const host = fakeHost();
  const etc = path.join(host, 'gen-etc');
  writeSandboxEtc(etc);
  const layout = buildRootfs({ runtimesDir: '/repo/src/runtimes', nativeDir: '/repo/build/Release', etcDir: etc, hostRoot: host });
  const dsts = layout.binds.map((b) => b.dst);
  t.true(dsts.includes('/usr'));
  t.true(dsts.includes('/etc/ld.so.cache'));
  t.true(dsts.includes('/etc/ssl/certs'));
  t.true(dsts.includes('/hearth/runtimes'));
  t.true(dsts.includes('/hearth/native'));
  t.is(layout.binds.find((b) => b.dst === '/etc/passwd')?.src, path.join(etc, 'passwd'));
  for (const never of ['/etc/shadow', '/etc/ssl/private', '/root', '/home', '/run', '/var/lib/hearth']) t.false(dsts.includes(never), never);
  t.deepEqual(
    layout.symlinks.filter((s) => !s.path.startsWith('/etc')).sort((a, b) => a.path.localeCompare(b.path)),
    [
      { target: 'usr/bin', path: '/bin' },
      { target: 'usr/lib', path: '/lib' },
      { target: 'usr/lib64', path: '/lib64' },
      { target: 'usr/sbin', path: '/sbin' },
    ],
  );
  t.deepEqual(
    layout.symlinks.find((s) => s.path === '/etc/localtime'),
    { target: '/usr/share/zoneinfo/Etc/UTC', path: '/etc/localtime' },
  );
  fs.rmSync(host, { recursive: true, force: true });
});

test('the generated passwd names only root and the sandbox user', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-etc-'));
  writeSandboxEtc(dir, 1234, 4321);
  const users = fs
    .readFileSync(path.join(dir, 'passwd'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(':').slice(0, 4).join(':'));
  t.deepEqual(users, ['root:x:0:0', 'sandbox:x:1234:4321']);
  fs.rmSync(dir, { recursive: true, force: true });
});

const refused: [string, string[]][] = [
  ['/', []],
  ['/root', []],
  ['/home', []],
  ['/run', []],
  ['/var', []],
  ['/var/lib/hearth/code', []],
  ['/srv/state/code', ['/srv/state']],
  ['/srv', ['/srv/state']],
];
for (const [src, forbidden] of refused) {
  test(`refuses a bind of ${src}${forbidden.length ? ` with ${forbidden.join(',')} forbidden` : ''}`, (t) => {
    const err = t.throws<HearthError>(() => checkBinds([{ src, dst: '/x' }], forbidden));
    t.is(err.code, 'CONFIG');
  });
}

test('accepts ordinary system and repository paths', (t) => {
  t.notThrows(() =>
    checkBinds(
      [
        { src: '/usr', dst: '/usr' },
        { src: '/work/main/src/runtimes', dst: '/hearth/runtimes' },
      ],
      ['/srv/state'],
    ),
  );
});
