'use strict';
/**
 * How the Node shim finds, loads and calls a function's handler: the handler string's parsing,
 * CommonJS-or-ESM module loading and the call itself (promise, callback or plain value). Loaded by
 * shim.js through its absolute path before `ready`.
 */

/** Parses `path/to/file.fn.nested` the way Lambda does: the module is up to the first dot of the last segment. */
function parseHandler(h) {
  if (typeof h !== 'string') return undefined;
  const slash = h.lastIndexOf('/');
  const dot = h.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === h.length - 1) return undefined;
  const file = h.slice(0, dot);
  const names = h.slice(dot + 1).split('.');
  if (file.startsWith('/') || file.split('/').some((p) => p === '' || p === '.' || p === '..')) return undefined;
  if (names.some((p) => p === '')) return undefined;
  return { file, names };
}

/**
 * Calls `fn(event, context[, callback])` and reports once through done(ok, value): a returned
 * promise settles it; a handler declaring three parameters may instead call the callback; any
 * other return value is the result.
 */
function runHandler(fn, event, context, done) {
  let settled = false;
  const settle = (ok, value) => {
    if (settled) return;
    settled = true;
    done(ok, value);
  };
  try {
    let returned;
    if (fn.length >= 3) {
      returned = fn(event, context, (err, result) => (err !== null && err !== undefined ? settle(false, err) : settle(true, result)));
      // not a promise: wait for the callback (the daemon's timeout bounds the wait)
      if (returned === null || typeof returned !== 'object' || typeof returned.then !== 'function') return;
    } else {
      returned = fn(event, context);
    }
    if (returned !== null && (typeof returned === 'object' || typeof returned === 'function') && typeof returned.then === 'function') {
      returned.then(
        (v) => settle(true, v),
        (e) => settle(false, e),
      );
    } else {
      settle(true, returned);
    }
  } catch (e) {
    settle(false, e);
  }
}

/**
 * The "type" of the nearest package.json at or above `dir`, not above `root`: how Node decides
 * whether a .js file is ESM. ESM files are import()ed rather than require()d, since require(esm)
 * warns on stderr and cannot load top-level await.
 */
function packageType(dir, root) {
  const fs = require('fs');
  const path = require('path');
  root = path.resolve(root);
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    let text;
    try {
      text = fs.readFileSync(path.join(d, 'package.json'), 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      try {
        return JSON.parse(text).type === 'module' ? 'module' : 'commonjs';
      } catch {
        return 'commonjs';
      }
    }
    if (d === root || d === path.dirname(d) || !d.startsWith(root)) return 'commonjs';
  }
}

function importFile(file) {
  return import(require('url').pathToFileURL(file).href);
}

/** Loads a handler module: ESM through import(), CommonJS through a require() rooted at the file. */
async function loadModule(file, root) {
  if (file.endsWith('.mjs') || (file.endsWith('.js') && packageType(require('path').dirname(file), root) === 'module')) {
    return importFile(file);
  }
  try {
    return require('module').createRequire(file)(file);
  } catch (e) {
    if (e === null || typeof e !== 'object' || (e.code !== 'ERR_REQUIRE_ESM' && e.code !== 'ERR_REQUIRE_ASYNC_MODULE')) throw e;
    return importFile(file);
  }
}

module.exports = { parseHandler, runHandler, packageType, loadModule };
