/**
 * The deploy-time check that a handler's *function* exists (its module file is checked by the code
 * store). A deploy whose handler names a function its module does not define is refused with the
 * same 400 as a missing module, instead of failing at the first invoke.
 *
 * - Python: the module's syntax tree is read in a sandbox (PythonBytecodeCompiler.findFunction,
 *   the same sandboxed program as the bytecode step); the module is never run.
 * - Node: no sandboxed step runs at a Node deploy, and JavaScript exports cannot be read without
 *   running the module, so the check is a conservative scan of the module's text in the daemon:
 *   the function is missing only if its name appears nowhere in the file and nothing in it can
 *   export a name it never spells (no star re-export, `module.exports = require(…)`, spread,
 *   computed key, `Object.assign`, proxy; see DYNAMIC_EXPORTS).
 *   Reading bytes is all it does with the untrusted file.
 *
 * Whenever the answer is unsure, the deploy is accepted (the first invoke reports an InitError as
 * before).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { FunctionCheck } from './bytecode.js';
import { handlerCandidates } from './code-store.js';
import { handlerModulePath, type Runtime } from './function-spec.js';

/** What the check needs of the Python bytecode compiler. */
export interface PythonFunctionFinder {
  findFunction(dir: string, module: string, fn: string): Promise<FunctionCheck>;
}

/** Largest Node module scanned; a bigger one is accepted unchecked. */
const MAX_SCAN_BYTES = 8 * 1024 * 1024;
/**
 * What may export a name the file never spells: a star re-export, `module.exports` set to something
 * other than an object literal (`= require('./impl')`, `= impl`), spreads, computed keys, property
 * definitions, proxies, eval.
 */
const DYNAMIC_EXPORTS =
  /\bexport\s*\*|module\.exports\s*=(?!\s*\{)|\.\.\.|\bObject\.(?:assign|defineProperty|defineProperties|setPrototypeOf|create)\s*\(|\bexports\s*\[|\bProxy\b|\beval\b|\bFunction\s*\(|\bimport\s*\(/;

/** True when `name` occurs in `source` as a whole identifier (not inside a longer one). */
function mentions(source: string, name: string): boolean {
  let i = source.indexOf(name);
  const ident = /[A-Za-z0-9_$]/;
  while (i >= 0) {
    const before = i > 0 ? source[i - 1] : ' ';
    const after = source[i + name.length] ?? ' ';
    if (!ident.test(before) && !ident.test(after)) return true;
    i = source.indexOf(name, i + 1);
  }
  return false;
}

/** Whether a Node module's text certainly lacks `fn` (see the file comment). */
export function nodeModuleLacks(source: string, fn: string): boolean {
  return !mentions(source, fn) && !DYNAMIC_EXPORTS.test(source);
}

/**
 * Undefined when `handler`'s function is (or may be) defined by its module in the bundle at `dir`;
 * otherwise the reason, naming the function and the file. The module file must exist (checked before).
 */
export async function missingHandlerFunction(dir: string, handler: string, runtime: Runtime, python?: PythonFunctionFinder): Promise<string | undefined> {
  if (runtime === 'provided') return undefined; // the bootstrap is any program; nothing to look into
  const fn = handler.slice(handler.lastIndexOf('.') + 1);
  const module = handlerModulePath(handler, runtime);
  const missing = (file: string): string => `the module ${file} defines no function ${JSON.stringify(fn)} (handler ${JSON.stringify(handler)})`;
  if (runtime === 'python') {
    if (!python) return undefined;
    const r = await python.findFunction(dir, module, fn);
    return r.found === false ? missing(r.file ?? `${module}.py`) : undefined;
  }
  for (const rel of handlerCandidates(handler, runtime)) {
    let source: string;
    try {
      const st = await fsp.stat(path.join(dir, rel));
      if (!st.isFile()) continue;
      if (st.size > MAX_SCAN_BYTES) return undefined;
      source = await fsp.readFile(path.join(dir, rel), 'utf8');
    } catch {
      continue;
    }
    // The first candidate that exists is the one the shim loads.
    return nodeModuleLacks(source, fn) ? missing(rel) : undefined;
  }
  return undefined;
}
