/**
 * A missing host tool is reported by name with how to install it, as a 503, never as a 500 with a
 * child's stderr: nft/nsenter looked up on a PATH that lacks them, through a network create.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { errorReply } from '../../src/control/server.js';
import { HearthError } from '../../src/errors.js';
import { findTool } from '../../src/host-tools.js';
import { silentLogger } from '../../src/log.js';
import { FakeNetBinding } from '../../src/net/fake-net-binding.js';
import { NetworkManager } from '../../src/net/network-manager.js';
import { makeNftRunner } from '../../src/net/nft-runner.js';

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-missing-'));
  dirs.push(d);
  return d;
}

/** A directory holding executable stand-ins for the given tools. */
function binDir(tools: string[]): string {
  const d = tmp();
  for (const tool of tools) fs.writeFileSync(path.join(d, tool), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return d;
}

test('findTool finds an executable on the path and nothing else', (t) => {
  const bin = binDir(['nft']);
  fs.writeFileSync(path.join(bin, 'plain'), 'not executable', { mode: 0o644 });
  t.is(findTool('nft', `/no/such/dir:${bin}`), path.join(bin, 'nft'));
  t.is(findTool('plain', bin), undefined);
  t.is(findTool('nft', tmp()), undefined);
});

test('without nft, a network create answers 503 MISSING_DEPENDENCY naming nftables', async (t) => {
  const dir = tmp();
  const binding = new FakeNetBinding();
  binding.host.add('br0', 'bridge');
  const m = new NetworkManager({
    stateDir: path.join(dir, 'state'),
    runDir: path.join(dir, 'run'),
    binding,
    nft: makeNftRunner(binDir(['nsenter'])),
    log: silentLogger(),
  });
  await m.start();
  const err = await t.throwsAsync(m.create('vpc', { attach: { bridge: 'br0' }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'] }), {
    instanceOf: HearthError,
  });
  t.is(err?.code, 'MISSING_DEPENDENCY');
  t.regex(err?.message ?? '', /^private networks need nftables \(`nft` not found in .*\): apt-get install nftables$/);
  const reply = errorReply(err, silentLogger());
  t.is(reply.status, 503);
  t.deepEqual(reply.body, { error: { code: 'MISSING_DEPENDENCY', message: err.message } });
  t.deepEqual(m.list(), [], 'nothing half-made is kept');
  await m.stop();
  binding.sweep();
  t.is(binding.openNamespaces, 0);
});

test('without nsenter, the runner names util-linux', async (t) => {
  const err = await t.throwsAsync(makeNftRunner(binDir(['nft']))('/proc/self/ns/net', ''), { instanceOf: HearthError });
  t.is(err?.code, 'MISSING_DEPENDENCY');
  t.regex(err?.message ?? '', /`nsenter` not found.*apt-get install util-linux/);
});
