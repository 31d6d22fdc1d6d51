/**
 * The Node shim booted from a V8 startup snapshot (src/runtimes/node/snapshot-entry.js, built by
 * scripts/build-node-snapshot.js) behaves as the plain shim: CommonJS require, ESM import and
 * import() from user code, console capture, the function's env, thrown errors. Real sandboxes
 * through SandboxDriver + InstanceConnection (root only). Every handler also runs on a plain
 * instance and the outcomes must be equal.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceConnection } from '../../src/runtimes/instance-connection.js';
import type { InvokeOutcome } from '../../src/runtimes/types.js';
import { nativeDirCandidates } from '../../src/sandbox/binding.js';
import { SandboxDriver, type InstanceLimits } from '../../src/sandbox/sandbox-driver.js';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const isRoot = process.getuid?.() === 0;
const built = nativeDirCandidates().some((d) => fs.existsSync(path.join(d, 'hearth.node')));
const skipReason = !isRoot
  ? 'needs root'
  : !built
    ? 'addon not built (npm run build:native)'
    : !fs.existsSync('/usr/bin/node')
      ? 'no /usr/bin/node (the sandboxed runtime)'
      : '';
const it = skipReason ? test.skip : test.serial;
if (skipReason) test.serial('node snapshot integration tests skipped', (t) => t.log(`skipped: ${skipReason}`) ?? t.pass());

const LIMITS: InstanceLimits = { memoryMb: 256, pids: 64, cpuPercent: 0, tmpMb: 8 };
const BLOB_IN_SANDBOX = '/hearth/snapshot/node-shim.blob';

/** Handler bundles: name -> files. */
const BUNDLES: Record<string, Record<string, string>> = {
  cjs: {
    'lib.js': 'exports.answer = 42;\n',
    'dyn.mjs': "export const dyn = 'dynamic esm';\n",
    'index.js': `const lib = require('./lib.js');
exports.handler = async (event, context) => {
  console.log('hello from cjs', event.n);
  process.stderr.write('cjs stderr\\n');
  const { dyn } = await import('./dyn.mjs');
  return {
    answer: lib.answer,
    dyn,
    n: event.n,
    greeting: process.env.GREETING ?? null,
    envKeys: Object.keys(process.env).sort(),
    main: require.main ? require.main.filename : null,
    argv: process.argv.slice(1),
    functionName: context.functionName,
    snapshot: process.execArgv.includes('--snapshot-blob'),
  };
};
exports.fails = async () => {
  console.log('about to fail');
  throw new TypeError('bad input');
};
`,
  },
  esm: {
    'package.json': '{"type":"module"}\n',
    'lib.js': 'export default { answer: 7 };\n',
    'dyn.js': "export const dyn = 'dynamic';\n",
    'app.js': `import lib from './lib.js';
export const handler = async (event) => {
  console.error('hello from esm', event.n);
  const { dyn } = await import('./dyn.js');
  return { answer: lib.answer, dyn, greeting: process.env.GREETING ?? null, snapshot: process.execArgv.includes('--snapshot-blob') };
};
`,
  },
};

let blobDir = '';
let stateDirs: string[] = [];
const codeDirs: Record<string, string> = {};
let snap: SandboxDriver | undefined;
let plain: SandboxDriver | undefined;
let counter = 0;

test.before(async () => {
  if (skipReason) return;
  blobDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-snap-'));
  fs.chmodSync(blobDir, 0o755);
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'build-node-snapshot.js'), '--out', path.join(blobDir, 'node-shim.blob')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`snapshot build failed: ${r.stderr}${r.stdout}`);
  for (const [name, files] of Object.entries(BUNDLES)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hearth-snap-${name}-`));
    fs.chmodSync(dir, 0o755);
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text, { mode: 0o644 });
    codeDirs[name] = dir;
  }
  const rand = randomBytes(4).toString('hex');
  const make = (suffix: string, nodeFlags: string[]): SandboxDriver => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-snap-state-'));
    stateDirs.push(stateDir);
    return new SandboxDriver({
      stateDir,
      cgroupName: `hearth-test-${rand}-${suffix}`,
      nodeFlags,
      extraBinds: [{ src: blobDir, dst: path.dirname(BLOB_IN_SANDBOX) }],
    });
  };
  snap = make('snap', ['--snapshot-blob', BLOB_IN_SANDBOX]);
  plain = make('plain', []);
  await snap.start();
  await plain.start();
});

test.after.always(async () => {
  if (skipReason) return;
  await snap?.stop();
  await plain?.stop();
  for (const d of [blobDir, ...stateDirs, ...Object.values(codeDirs)]) if (d) fs.rmSync(d, { recursive: true, force: true });
  stateDirs = [];
});

interface Run {
  outcome: InvokeOutcome;
}

/** Boots an instance, mounts a bundle, specialises `handler` with `env`, invokes it once. */
async function run(t: ExecutionContext, driver: SandboxDriver, bundle: string, handler: string, env: Record<string, string>, event: unknown): Promise<Run> {
  t.timeout(60_000);
  const proc = await driver.spawnNode(`s${++counter}`, LIMITS);
  const conn = new InstanceConnection(proc.socket);
  try {
    const ready = await conn.ready();
    t.is(ready.runtime, 'node');
    proc.mountCode(codeDirs[bundle]);
    await conn.specialize({ name: `fn-${bundle}`, handler, memoryMb: 256, timeoutMs: 5000, env });
    const outcome = await conn.invoke(`inv${counter}`, event, Date.now() + 5000);
    return { outcome };
  } finally {
    conn.close();
    proc.kill();
    await proc.exited;
  }
}

/** An outcome without what legitimately differs between two runs (timing; the snapshot flag). */
function comparable(o: InvokeOutcome): unknown {
  const { durationMs: _d, ...rest } = o;
  if (rest.ok && rest.result !== null && typeof rest.result === 'object') {
    const { snapshot: _s, ...result } = rest.result as Record<string, unknown>;
    return { ...rest, result };
  }
  return rest;
}

it('snapshot boot: a CommonJS handler requires, imports, logs and sees its env', async (t) => {
  const { outcome } = await run(t, snap!, 'cjs', 'index.handler', { GREETING: 'hi' }, { n: 3 });
  if (!outcome.ok) return t.fail(`handler failed: ${JSON.stringify(outcome.error)}`);
  t.deepEqual(outcome.result, {
    answer: 42,
    dyn: 'dynamic esm',
    n: 3,
    greeting: 'hi',
    envKeys: ['GREETING'],
    main: '/hearth/runtimes/node/shim.js',
    argv: ['/hearth/runtimes/node/shim.js'],
    functionName: 'fn-cjs',
    snapshot: true,
  });
  t.is(outcome.logs, 'hello from cjs 3\ncjs stderr\n');
  const again = await run(t, plain!, 'cjs', 'index.handler', { GREETING: 'hi' }, { n: 3 });
  t.deepEqual(comparable(again.outcome), comparable(outcome));
  t.false((again.outcome as { result: { snapshot: boolean } }).result.snapshot);
});

it('snapshot boot: an ESM handler imports statically and dynamically, logs and sees its env', async (t) => {
  const { outcome } = await run(t, snap!, 'esm', 'app.handler', { GREETING: 'hello' }, { n: 1 });
  if (!outcome.ok) return t.fail(`handler failed: ${JSON.stringify(outcome.error)}`);
  t.deepEqual(outcome.result, { answer: 7, dyn: 'dynamic', greeting: 'hello', snapshot: true });
  t.is(outcome.logs, 'hello from esm 1\n');
  const again = await run(t, plain!, 'esm', 'app.handler', { GREETING: 'hello' }, { n: 1 });
  t.deepEqual(comparable(again.outcome), comparable(outcome));
});

it('snapshot boot: a thrown error is reported with its type, message and logs', async (t) => {
  const { outcome } = await run(t, snap!, 'cjs', 'index.fails', {}, {});
  if (outcome.ok) return t.fail('expected an error outcome');
  t.is(outcome.error.type, 'TypeError');
  t.is(outcome.error.message, 'bad input');
  t.regex(outcome.error.stack ?? '', /\/code\/index\.js/);
  t.is(outcome.logs, 'about to fail\n');
  const again = await run(t, plain!, 'cjs', 'index.fails', {}, {});
  t.deepEqual(comparable(again.outcome), comparable(outcome));
});
