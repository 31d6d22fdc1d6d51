/**
 * The built network addon without root: it loads through the one loader, ships no test probes,
 * refuses arguments of the wrong type with a TypeError before touching the kernel, and reports
 * kernel failures as Node-style system errors (code, errno, syscall, strerror message).
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { addonBuilt } from '../../src/native/loader.js';
import { loadNetProbes } from '../../src/native/net-probes.js';
import { loadNetBinding, type NetBinding } from '../../src/net/native-binding.js';

const built = addonBuilt('hearth_net');
const it = built ? test.serial : test.skip;
if (!built) test('net native tests skipped', (t) => t.log('skipped: addon not built (npm run build:native)') ?? t.pass());

/** A name no host has: the tests only ever look it up. */
const NO_LINK = 'hearthnone0';

it('exports the network surface and no test probes', (t) => {
  const b = loadNetBinding() as unknown as Record<string, unknown>;
  const names = Object.keys(b).sort();
  t.deepEqual(names, [
    'addAddress',
    'addRoute',
    'bindMount',
    'connectInstanceAsync',
    'createBridge',
    'createNetns',
    'createVeth',
    'deleteLink',
    'deleteLinksAsync',
    'getLink',
    'getLinkOn',
    'listAddresses',
    'listLinks',
    'openNetns',
    'openRtnl',
    'setBridgePortIsolated',
    'setLink',
    'unmount',
    'writeSysctl',
  ]);
  for (const probe of ['socketIn', 'tcpConnect', 'pingPong', 'waitLinkUp', 'createLink']) t.false(probe in b, probe);
  // the probes are their own addon, for tests and benchmarks only
  t.is(typeof loadNetProbes().socketIn, 'function');
});

it('a wrong argument type throws a TypeError naming the argument', (t) => {
  const b = loadNetBinding();
  const bad: Array<[string, () => unknown, RegExp]> = [
    ['getLink nsFd', () => b.getLink('x' as never, 'lo'), /nsFd/],
    ['getLink nsFd < -1', () => b.getLink(-2, 'lo'), /nsFd/],
    ['getLink name', () => b.getLink(-1, 7 as never), /name/],
    ['getLink name too long', () => b.getLink(-1, 'a-very-long-interface-name'), /name/],
    ['getLink name with /', () => b.getLink(-1, 'a/b'), /name/],
    ['getLinkOn rtnlFd', () => b.getLinkOn(-1, 'lo'), /rtnlFd/],
    ['openRtnl nsFd', () => b.openRtnl('x' as never), /nsFd/],
    ['listLinks nsFd', () => b.listLinks(undefined as never), /nsFd/],
    ['createBridge mac', () => b.createBridge(-1, 'hb0', 'not-a-mac'), /mac/],
    ['createVeth peerNsFd', () => b.createVeth(-1, 'hv0', null as never, 'hv1'), /peerNsFd/],
    ['setLink opts', () => b.setLink(-1, 'lo', 'up' as never), /opts/],
    ['setLink up', () => b.setLink(-1, 'lo', { up: 1 as never }), /up/],
    ['setLink master', () => b.setLink(-1, 'lo', { master: 3 as never }), /master/],
    ['setBridgePortIsolated', () => b.setBridgePortIsolated(-1, 'lo', 'yes' as never), /isolated/],
    ['addAddress address', () => b.addAddress(-1, 'lo', '10.0.0', 8), /address/],
    ['addAddress prefixLen', () => b.addAddress(-1, 'lo', '10.0.0.1', 33), /prefixLen/],
    ['addRoute gateway', () => b.addRoute(-1, '10.0.0.0', 8, 5 as never, null), /gateway/],
    ['addRoute dev', () => b.addRoute(-1, '10.0.0.0', 8, null, {} as never), /dev/],
    ['deleteLink name', () => b.deleteLink(-1, ''), /name/],
    ['deleteLinksAsync names', () => b.deleteLinksAsync(-1, 'eth0' as never), /names/],
    ['writeSysctl path', () => b.writeSysctl(-1, '/etc/passwd', '1'), /path/],
    ['openNetns path', () => b.openNetns(3 as never), /path/],
    ['bindMount target', () => b.bindMount('/proc/self/fd/0', undefined as never), /target/],
    ['unmount target', () => b.unmount(null as never), /target/],
    ['connectInstanceAsync spec', () => b.connectInstanceAsync(5 as never), /spec/],
    [
      'connectInstanceAsync address',
      () => b.connectInstanceAsync({ gwNetnsFd: -1, bridgeIndex: 1, gwIfName: 'i1', instIfName: 'eth0', address: 'x', gateway: '10.0.0.1' }),
      /address/,
    ],
    [
      'connectInstanceAsync bridgeIndex',
      () => b.connectInstanceAsync({ gwNetnsFd: -1, bridgeIndex: 0, gwIfName: 'i1', instIfName: 'eth0', address: '10.0.0.2', gateway: '10.0.0.1' }),
      /bridgeIndex/,
    ],
  ];
  for (const [what, call, message] of bad) {
    const err = t.throws(call, { instanceOf: TypeError, message }, what) as NodeJS.ErrnoException;
    t.is(err.code, 'ERR_INVALID_ARG_VALUE', what);
  }
});

it('kernel failures are system errors with code, errno, syscall and a strerror message', (t) => {
  const b = loadNetBinding();
  t.is(b.getLink(-1, NO_LINK), null, 'a missing link is null, not an error');
  t.is(b.getLink(-1, 'lo')?.name, 'lo');
  const sock = b.openRtnl(-1);
  try {
    t.is(b.getLinkOn(sock, 'lo')?.index, b.getLink(-1, 'lo')?.index, 'the same link through a kept socket');
    t.is(b.getLinkOn(sock, NO_LINK), null);
  } finally {
    fs.closeSync(sock);
  }
  t.like(
    t.throws(() => b.getLinkOn(987654, 'lo')),
    { code: 'EBADF', errno: -9 },
  );

  const noDev = t.throws<NodeJS.ErrnoException>(() => b.setLink(-1, NO_LINK, { up: true }));
  t.is(noDev.code, 'ENODEV');
  t.is(noDev.errno, -19);
  t.is(noDev.syscall, 'RTM_GETLINK');
  t.regex(noDev.message, new RegExp(`^ENODEV: No such device, RTM_GETLINK \\(link ${NO_LINK}\\)$`));

  const noFile = t.throws<NodeJS.ErrnoException>(() => b.openNetns('/nonexistent/hearth-netns'));
  t.like(noFile, { code: 'ENOENT', errno: -2, syscall: 'open', path: '/nonexistent/hearth-netns' });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-net-native-'));
  try {
    const file = path.join(dir, 'not-a-namespace');
    fs.writeFileSync(file, '');
    const notNs = t.throws<NodeJS.ErrnoException>(() => b.openNetns(file));
    t.like(notNs, { code: 'EINVAL', errno: -22, syscall: 'ioctl' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('the thread-pool calls reject with the same error shape', async (t) => {
  const b: NetBinding = loadNetBinding();
  t.is(await b.deleteLinksAsync(-1, [NO_LINK]), 0, 'missing links are skipped');
  const bad = await t.throwsAsync<NodeJS.ErrnoException>(b.deleteLinksAsync(987654, [NO_LINK]));
  t.like(bad, { code: 'EBADF', errno: -9, syscall: 'setns' });
});
