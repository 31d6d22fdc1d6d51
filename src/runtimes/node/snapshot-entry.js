'use strict';
/**
 * Entry of the Node shim's V8 startup snapshot (Node 20 userland snapshot). Built on the host by
 * scripts/build-node-snapshot.js:
 *
 *   /usr/bin/node --snapshot-blob build/Release/node-shim.blob --build-snapshot src/runtimes/node/snapshot-entry.js
 *
 * and used inside a sandbox as
 *
 *   /usr/bin/node --snapshot-blob /hearth/native/node-shim.blob [/hearth/runtimes/node/shim.js] [args]
 *
 * Build time: loads and evaluates the built-in modules the shim needs before `ready`, so they are
 * already in the heap the snapshot restores. Nothing else: no fd is opened (fd 3 does not exist
 * at build time), no file outside Node is read, no user or shim code runs.
 *
 * Run time (the deserialize main function): runs the script named by argv[1] (the shim when
 * argv[1] is absent or an option) as the main module through Node's ordinary CommonJS loader, so
 * the shim behaves exactly as under `node shim.js`: its own `require`, `import()` (which fails for
 * code compiled into a snapshot: ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), `__filename`,
 * `require.main`. That is why the shim itself is not compiled into the snapshot.
 *
 * Only built-ins that Node 20 lists as supported in snapshot builders are loaded here (no 'vm',
 * no 'module' at build time: those print a warning and may be out of sync after deserialisation).
 */

/** The shim's path inside every sandbox (see docs/runtimes.md). */
const SHIM = '/hearth/runtimes/node/shim.js';

/** What shim.js loads before it sends `ready` (and on its first specialise/invoke). */
const PRELOAD = ['net', 'stream', 'fs', 'path', 'url', 'string_decoder'];

for (const id of PRELOAD) require(id);

require('v8').startupSnapshot.setDeserializeMainFunction(() => {
  const script = process.argv[1];
  if (script === undefined || script.startsWith('-')) process.argv.splice(1, 0, SHIM);
  // `require` here is the snapshot builder's: built-ins only. 'module' is safe to load at run time.
  require('module').runMain();
});
