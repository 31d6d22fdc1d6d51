#!/usr/bin/env node
'use strict';
/**
 * Builds the Node shim's V8 startup snapshot blob (see src/runtimes/node/snapshot-entry.js).
 *
 *   node scripts/build-node-snapshot.js [--out FILE] [--node PATH] [--entry FILE]
 *
 * Defaults: --out build/Release/node-shim.blob (seen in sandboxes as /hearth/native/node-shim.blob),
 * --node /usr/bin/node (a blob only loads in the exact Node binary that built it, and sandboxes run
 * /usr/bin/node, whatever node runs this script), --entry src/runtimes/node/snapshot-entry.js.
 * Writes FILE.tmp, then renames it (0644), so a reader never sees half a blob. Exits non-zero,
 * printing the builder's output, when the build fails.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');

const root = path.resolve(__dirname, '..');

const USAGE = 'usage: build-node-snapshot.js [--out FILE] [--node PATH] [--entry FILE]';

/** The flags, through node:util parseArgs like the other scripts; throws with the usage on a bad one. */
function parseArgs(argv) {
  let values;
  try {
    values = util.parseArgs({ args: argv, options: { out: { type: 'string' }, node: { type: 'string' }, entry: { type: 'string' } }, strict: true }).values;
  } catch (e) {
    throw new Error(`${e.message}\n${USAGE}`);
  }
  const resolved = (v, dflt) => (v === undefined ? dflt : path.resolve(v));
  return {
    out: resolved(values.out, path.join(root, 'build', 'Release', 'node-shim.blob')),
    node: resolved(values.node, '/usr/bin/node'),
    entry: resolved(values.entry, path.join(root, 'src', 'runtimes', 'node', 'snapshot-entry.js')),
  };
}

function build({ out, node, entry }) {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp`;
  fs.rmSync(tmp, { force: true });
  // Empty environment, as in a sandbox: nothing from this shell ends up in the heap.
  const r = spawnSync(node, ['--snapshot-blob', tmp, '--build-snapshot', entry], {
    env: {},
    cwd: path.dirname(entry),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  if (r.error || r.status !== 0 || !fs.existsSync(tmp)) {
    fs.rmSync(tmp, { force: true });
    const why = r.error ? r.error.message : `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}`;
    throw new Error(`${node} --build-snapshot ${entry} failed: ${why}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  fs.chmodSync(tmp, 0o644);
  fs.renameSync(tmp, out);
  return { out, bytes: fs.statSync(out).size };
}

if (require.main === module) {
  try {
    if (process.argv.includes('--help') || process.argv.includes('-h')) {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    const { out, bytes } = build(parseArgs(process.argv.slice(2)));
    process.stdout.write(`node snapshot: ${out} (${(bytes / 1048576).toFixed(1)} MiB)\n`);
  } catch (e) {
    process.stderr.write(`build-node-snapshot: ${e.message}\n`);
    process.exit(1);
  }
}

module.exports = { build };
