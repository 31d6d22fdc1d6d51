/**
 * The one addon loader: an injected fake wins, HEARTH_NATIVE_DIR is searched first, and a missing
 * addon is reported with every path that was tried.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { addonDir, addonDirCandidates, injectAddon, loadAddon, type AddonName } from '../../src/native/loader.js';
import { loadNetBinding, setNetBinding } from '../../src/net/native-binding.js';
import { FakeNetBinding } from '../../src/net/fake-net-binding.js';

const NOT_BUILT = 'hearth_not_built' as AddonName;

test.serial('a missing addon lists every path tried, with HEARTH_NATIVE_DIR first', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-loader-'));
  const saved = process.env['HEARTH_NATIVE_DIR'];
  process.env['HEARTH_NATIVE_DIR'] = dir;
  try {
    const candidates = addonDirCandidates();
    t.is(candidates[0], dir);
    const err = t.throws<NodeJS.ErrnoException>(() => loadAddon(NOT_BUILT));
    t.is(err.code, 'HEARTH_NATIVE_MISSING');
    t.regex(err.message, /npm run build:native/);
    for (const c of candidates) t.true(err.message.includes(path.join(c, 'hearth_not_built.node')), c);
    t.throws(() => addonDir(NOT_BUILT), { code: 'HEARTH_NATIVE_MISSING' });
  } finally {
    if (saved === undefined) delete process.env['HEARTH_NATIVE_DIR'];
    else process.env['HEARTH_NATIVE_DIR'] = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('a file that is not an addon is reported with the reason it failed to load', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-loader-'));
  const saved = process.env['HEARTH_NATIVE_DIR'];
  process.env['HEARTH_NATIVE_DIR'] = dir;
  try {
    fs.writeFileSync(path.join(dir, 'hearth_not_built.node'), 'not an ELF file');
    const err = t.throws<NodeJS.ErrnoException>(() => loadAddon(NOT_BUILT));
    t.regex(err.message, new RegExp(`${path.join(dir, 'hearth_not_built.node').replace(/[.]/g, '\\.')}: (?!not found)`));
  } finally {
    if (saved === undefined) delete process.env['HEARTH_NATIVE_DIR'];
    else process.env['HEARTH_NATIVE_DIR'] = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('an injected fake is returned until it is removed', (t) => {
  const fake = { hello: () => 'fake' };
  injectAddon(NOT_BUILT, fake);
  try {
    t.is(loadAddon<typeof fake>(NOT_BUILT), fake);
  } finally {
    injectAddon(NOT_BUILT, undefined);
  }
  t.throws(() => loadAddon(NOT_BUILT), { code: 'HEARTH_NATIVE_MISSING' });

  const net = new FakeNetBinding();
  setNetBinding(net);
  try {
    t.is(loadNetBinding(), net);
  } finally {
    setNetBinding(undefined);
  }
});
