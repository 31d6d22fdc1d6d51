/**
 * The handlers and helper programs the benchmark runs, written into its work directory:
 * hello (the bundled examples), no-op, sleep (for the trace replay), and "bigdep": a handler that
 * imports a generated multi-megabyte dependency tree; plus the one-shot runners that the
 * bubblewrap and crun alternatives execute, and the launcher that starts them.
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, type Runtime } from './daemon-process.js';

export interface HandlerDir {
  dir: string;
  runtime: Runtime;
  handler: string;
}

export interface Fixtures {
  root: string;
  hello: Record<Runtime, HandlerDir>;
  noop: Record<Runtime, HandlerDir>;
  bigdep: Record<Runtime, HandlerDir & { bytes: number; files: number }>;
  sleepPython: HandlerDir;
  /** Directory holding run.py, run.js (one-shot runners) and launcher.py. */
  runners: string;
}

function dirOf(root: string, name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  chmodSync(d, 0o755);
  return d;
}

function write(path: string, text: string): number {
  writeFileSync(path, text, { mode: 0o644 });
  return Buffer.byteLength(text);
}

function copyDir(from: string, to: string): void {
  for (const e of readdirSync(from)) {
    const s = join(from, e);
    if (statSync(s).isFile()) {
      copyFileSync(s, join(to, e));
      chmodSync(join(to, e), 0o644);
    }
  }
}

/** Python source of module k of the generated package (about 20 KB of ordinary code). */
function pyModule(k: number): string {
  const out = [`"""Generated module ${k} of bigdep: ordinary functions, classes and constants."""`, 'import json', 'import re', ''];
  out.push(`TABLE_${k} = {${Array.from({ length: 40 }, (_, i) => `'key_${i}': ${i * k}`).join(', ')}}`);
  for (let j = 0; j < 60; j++) {
    out.push(
      `def transform_${k}_${j}(value, scale=${j + 1}):`,
      `    """Scales and formats value (${k}.${j})."""`,
      `    result = []`,
      `    for i, item in enumerate(value if isinstance(value, list) else [value]):`,
      `        if isinstance(item, (int, float)) and item % ${(j % 7) + 2} == 0:`,
      `            result.append(item * scale + ${j})`,
      `        elif isinstance(item, str):`,
      `            result.append(re.sub(r"\\s+", " ", item).strip().upper())`,
      `        else:`,
      `            result.append(json.dumps({"k": ${k}, "j": ${j}, "i": i}))`,
      `    return result`,
      '',
    );
  }
  out.push(
    `class Model${k}:`,
    `    fields = [${Array.from({ length: 12 }, (_, i) => `'f${i}'`).join(', ')}]`,
    '    def __init__(self, **kw):',
    '        for f in self.fields:',
    '            setattr(self, f, kw.get(f))',
    '    def to_dict(self):',
    '        return {f: getattr(self, f) for f in self.fields}',
    '',
  );
  return out.join('\n');
}

function jsModule(k: number): string {
  const out = [
    `'use strict';`,
    `// Generated module ${k} of bigdep: ordinary functions, classes and constants.`,
    `const TABLE = {${Array.from({ length: 40 }, (_, i) => `key_${i}: ${i * k}`).join(', ')}};`,
  ];
  for (let j = 0; j < 60; j++) {
    out.push(
      `function transform_${k}_${j}(value, scale = ${j + 1}) {`,
      `  const result = [];`,
      `  const items = Array.isArray(value) ? value : [value];`,
      `  items.forEach((item, i) => {`,
      `    if (typeof item === 'number' && item % ${(j % 7) + 2} === 0) result.push(item * scale + ${j});`,
      `    else if (typeof item === 'string') result.push(item.replace(/\\s+/g, ' ').trim().toUpperCase());`,
      `    else result.push(JSON.stringify({ k: ${k}, j: ${j}, i }));`,
      `  });`,
      `  return result;`,
      `}`,
    );
  }
  out.push(
    `class Model${k} { constructor(kw) { for (const f of Model${k}.fields) this[f] = kw[f]; } toJSON() { return Object.fromEntries(Model${k}.fields.map((f) => [f, this[f]])); } }`,
  );
  out.push(`Model${k}.fields = [${Array.from({ length: 12 }, (_, i) => `'f${i}'`).join(', ')}];`);
  out.push(`module.exports = { TABLE, Model${k}, ${Array.from({ length: 60 }, (_, j) => `transform_${k}_${j}`).join(', ')} };`);
  return out.join('\n') + '\n';
}

const RUN_PY = `# One-shot runner for the bubblewrap and crun alternatives: import the handler from /code, call it
# once with the event in argv[2], print "RESULT <json>" and exit.
import importlib, json, sys
sys.path.insert(0, '/code')
mod, fn = sys.argv[1].rsplit('.', 1)
class Context:
    function_name = 'bench'
    aws_request_id = 'bench-1'
    memory_limit_in_mb = 128
    def get_remaining_time_in_millis(self):
        return 3000
handler = getattr(importlib.import_module(mod), fn)
result = handler(json.loads(sys.argv[2]), Context())
sys.stdout.write('RESULT ' + json.dumps(result) + '\\n')
sys.stdout.flush()
`;

const RUN_JS = `'use strict';
// One-shot runner for the bubblewrap and crun alternatives: require the handler from /code, call it
// once with the event in argv[3], print "RESULT <json>" and exit.
const [spec, ev] = process.argv.slice(2);
const dot = spec.lastIndexOf('.');
const mod = require('/code/' + spec.slice(0, dot));
const ctx = { functionName: 'bench', invocationId: 'bench-1', memoryLimitInMB: 128, getRemainingTimeInMillis: () => 3000 };
Promise.resolve(mod[spec.slice(dot + 1)](JSON.parse(ev), ctx)).then((r) => {
  process.stdout.write('RESULT ' + JSON.stringify(r) + '\\n');
});
`;

/**
 * Started as \`unshare -m --propagation private python3 launcher.py\`: hides the hybrid cgroup v2
 * mount in its private mount namespace (crun refuses hybrid mode), then for each JSON line
 * {"id","argv"} on stdin spawns argv with stdout inherited (the runner's RESULT line reaches the
 * benchmark directly) and prints "DONE <id> <status>" once it has exited.
 */
const LAUNCHER_PY = `import json, os, sys
if os.path.ismount('/sys/fs/cgroup/unified'):
    os.system('umount /sys/fs/cgroup/unified')
sys.stdout.write('READY\\n'); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    try:
        pid = os.posix_spawn(req['argv'][0], req['argv'], {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'},
                             file_actions=[(os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0)])
        _, status = os.waitpid(pid, 0)
    except OSError as e:
        status = -e.errno
    sys.stdout.write('DONE %s %d\\n' % (req['id'], status)); sys.stdout.flush()
`;

export function writeFixtures(root: string, opts: { bigdepModules: number }): Fixtures {
  dirOf(root, '');
  const hello = {
    node: { dir: dirOf(root, 'hello-node'), runtime: 'node' as const, handler: 'index.handler' },
    python: { dir: dirOf(root, 'hello-python'), runtime: 'python' as const, handler: 'main.handler' },
  };
  copyDir(join(repoRoot, 'examples/hello-node'), hello.node.dir);
  copyDir(join(repoRoot, 'examples/hello-python'), hello.python.dir);

  const noop = {
    node: { dir: dirOf(root, 'noop-node'), runtime: 'node' as const, handler: 'index.handler' },
    python: { dir: dirOf(root, 'noop-python'), runtime: 'python' as const, handler: 'main.handler' },
  };
  write(join(noop.node.dir, 'index.js'), 'exports.handler = async () => null;\n');
  write(join(noop.python.dir, 'main.py'), 'def handler(event, context):\n    return None\n');

  const sleepPython = { dir: dirOf(root, 'sleep-python'), runtime: 'python' as const, handler: 'main.handler' };
  write(join(sleepPython.dir, 'main.py'), 'import time\n\ndef handler(event, context):\n    time.sleep(event.get("ms", 0) / 1000.0)\n    return None\n');

  // bigdep: a handler importing a generated package of `bigdepModules` modules (~20 KB each).
  const pyDir = dirOf(root, 'bigdep-python');
  const pkg = dirOf(pyDir, 'bigdep');
  let pyBytes = 0;
  const n = opts.bigdepModules;
  pyBytes += write(join(pkg, '__init__.py'), Array.from({ length: n }, (_, k) => `from . import mod${k}`).join('\n') + '\n');
  for (let k = 0; k < n; k++) pyBytes += write(join(pkg, `mod${k}.py`), pyModule(k));
  pyBytes += write(
    join(pyDir, 'main.py'),
    'import bigdep\n\ndef handler(event, context):\n    return {"modules": len(bigdep.__dict__), "name": event.get("name")}\n',
  );

  const jsDir = dirOf(root, 'bigdep-node');
  const nm = dirOf(dirOf(jsDir, 'node_modules'), 'bigdep');
  dirOf(nm, 'lib');
  let jsBytes = 0;
  jsBytes += write(join(nm, 'package.json'), JSON.stringify({ name: 'bigdep', version: '1.0.0', main: 'index.js' }) + '\n');
  jsBytes += write(join(nm, 'index.js'), Array.from({ length: n }, (_, k) => `exports.mod${k} = require('./lib/mod${k}.js');`).join('\n') + '\n');
  for (let k = 0; k < n; k++) jsBytes += write(join(nm, 'lib', `mod${k}.js`), jsModule(k));
  jsBytes += write(
    join(jsDir, 'index.js'),
    "const bigdep = require('bigdep');\nexports.handler = async (event) => ({ modules: Object.keys(bigdep).length, name: event.name });\n",
  );

  const runners = dirOf(root, 'runners');
  write(join(runners, 'run.py'), RUN_PY);
  write(join(runners, 'run.js'), RUN_JS);
  write(join(runners, 'launcher.py'), LAUNCHER_PY);

  return {
    root,
    hello,
    noop,
    sleepPython,
    bigdep: {
      python: { dir: pyDir, runtime: 'python', handler: 'main.handler', bytes: pyBytes, files: n + 2 },
      node: { dir: jsDir, runtime: 'node', handler: 'index.handler', bytes: jsBytes, files: n + 3 },
    },
    runners,
  };
}
