/**
 * The layering of docs/architecture.md, checked on the tree: every relative import in src/ goes
 * from one area to an area it may use (an invocation walks one way, down), and no source file is
 * longer than a reader can take in one sitting.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');
const SRC = join(ROOT, 'src');

/** Modules every area may import: errors, the clock, logging, name rules, percentiles, the frame format, host tool lookup. */
const SHARED = new Set(['errors', 'clock', 'log', 'names', 'stats', 'wire', 'host-tools']);

/** For each area (a directory of src/, or a top-level file), the other areas it may import. */
const ALLOWED: Record<string, readonly string[]> = {
  daemon: ['*'],
  cli: ['control', 'config', 'doctor'],
  control: ['dispatch', 'registry', 'queue', 'pool', 'net', 'model', 'observe'],
  observe: ['dispatch', 'registry', 'queue', 'pool', 'model'],
  dispatch: ['pool', 'queue', 'registry', 'runtimes'],
  lambda: ['control', 'dispatch', 'registry'],
  doctor: ['config', 'sandbox', 'native'],
  queue: [],
  cluster: ['registry', 'queue', 'pool', 'dispatch', 'model', 'net'],
  registry: ['sandbox', 'runtimes'],
  pool: ['sandbox', 'runtimes', 'model', 'registry'],
  model: [],
  net: ['sandbox', 'runtimes', 'pool', 'native'],
  sandbox: ['runtimes', 'native'],
  runtimes: [],
  native: [],
  config: ['model'],
  errors: [],
  clock: [],
  log: [],
  names: [],
  stats: [],
  wire: [],
  'host-tools': [],
};

function walk(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, ext));
    else if (ext.test(name)) out.push(p);
  }
  return out;
}

/** The area of a path inside src/: its first directory, or the file's name without extension. */
function area(path: string): string {
  const rel = relative(SRC, path).split('/');
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.[cm]?[jt]s$/, '');
}

/** Relative module specifiers of a TypeScript file: `from '…'`, `import('…')`, `require('…')`. */
function imports(text: string): string[] {
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs;
}

test('every import in src/ goes to an area its layer may use', (t) => {
  const violations: string[] = [];
  let checked = 0;
  for (const file of walk(SRC, /\.ts$/)) {
    const from = area(file);
    const allowed = ALLOWED[from];
    if (!allowed) {
      violations.push(`${relative(ROOT, file)}: area '${from}' is not in docs/architecture.md's table`);
      continue;
    }
    for (const spec of imports(readFileSync(file, 'utf8'))) {
      const to = area(resolve(dirname(file), spec));
      checked++;
      if (to === from || SHARED.has(to) || allowed.includes('*') || allowed.includes(to)) continue;
      // `hearth daemon` is one of the CLI's commands: it starts the daemon through its entry point
      // (src/daemon/run.ts), loaded lazily, and through nothing else of the daemon's.
      if (from === 'cli' && spec === '../daemon/run.js') continue;
      violations.push(`${relative(ROOT, file)} imports ${spec} (${from} → ${to})`);
    }
  }
  t.deepEqual(violations, []);
  t.true(checked > 100, `only ${checked} imports found: is the pattern still right?`);
});

test('no layer below imports the daemon or the CLI', (t) => {
  const offenders = walk(SRC, /\.ts$/)
    .filter((f) => !['daemon', 'cli'].includes(area(f)))
    .filter((f) => imports(readFileSync(f, 'utf8')).some((s) => ['daemon', 'cli'].includes(area(resolve(dirname(f), s)))))
    .map((f) => relative(ROOT, f));
  t.deepEqual(offenders, []);
});

test('no source file in src/, scripts/ or native/ passes 400 lines', (t) => {
  const long: string[] = [];
  const files = [...walk(SRC, /\.(ts|js|cjs|mjs|py)$/), ...walk(join(ROOT, 'scripts'), /\.(ts|js|sh)$/), ...walk(join(ROOT, 'native'), /\.(cc|h)$/)];
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n').length - 1;
    if (lines > 400) long.push(`${relative(ROOT, f)}: ${lines} lines`);
  }
  t.true(files.length > 50);
  t.deepEqual(long, []);
});
