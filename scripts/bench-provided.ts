/**
 * The `provided` runtime against the Python runtime, end to end from a client of the control
 * socket (the daemon is a separate process): generic starts (a new function's first invocation on
 * a warm generic instance, init included) and warm invocations, interleaved. Three kinds:
 * - python: examples/hello-python (the Python shim);
 * - provided-c: a compiled bootstrap (scripts/fixtures/provided-echo.c, built here with cc), the
 *   stand-in for a Go or Rust runtime; skipped when no C compiler is found;
 * - provided-py: a Python bootstrap using urllib, the typical script runtime.
 * Root only; removes its daemon and temporary files at the end, also on SIGINT.
 *
 *   node dist/scripts/bench-provided.js [--samples N] [--warm N] [--json OUT]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packDirectory } from '../src/cli/pack.js';
import { withBenchDaemon } from './bench/daemon-process.js';
import { summarize } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

const PY_BOOTSTRAP = `#!/usr/bin/python3
import os, urllib.request
api = 'http://%s/2018-06-01/runtime/invocation/' % os.environ['AWS_LAMBDA_RUNTIME_API']
while True:
    with urllib.request.urlopen(api + 'next') as r:
        rid, body = r.headers['Lambda-Runtime-Aws-Request-Id'], r.read()
    urllib.request.urlopen(urllib.request.Request(api + rid + '/response', data=body, method='POST')).read()
`;

type Kind = 'python' | 'provided-c' | 'provided-py';

function findCc(): string | undefined {
  for (const cc of ['/usr/bin/cc', '/usr/bin/gcc', '/usr/bin/clang']) if (existsSync(cc)) return cc;
  return undefined;
}

async function main(): Promise<void> {
  const { samples, warm, json } = scriptArgs(
    'bench-provided',
    'usage: node dist/scripts/bench-provided.js [--samples N] [--warm N] [--json OUT]',
    { samples: VALUE, warm: VALUE, json: VALUE },
    ({ values: v }) => ({ samples: numberArg(v.samples, '--samples', 40, COUNT), warm: numberArg(v.warm, '--warm', 400, COUNT), json: v.json }),
  );
  if (process.getuid?.() !== 0) throw new Error('needs root');
  const settings = { generic: { node: 0, python: 1 }, logLevel: 'error', extra: { generic: { node: 0, python: 1, provided: 1 } } };
  await withBenchDaemon('hearth-bprov-', settings, async (d) => {
    const client = d.client;
    const dir = d.dir;
    const bundles: Partial<Record<Kind, { runtime: string; handler: string; code: string }>> = {};
    bundles.python = {
      runtime: 'python',
      handler: 'main.handler',
      code: (await packDirectory(join(__dirname, '..', '..', 'examples', 'hello-python'))).toString('base64'),
    };
    const pyDir = join(dir, 'provided-py');
    mkdirSync(pyDir);
    writeFileSync(join(pyDir, 'bootstrap'), PY_BOOTSTRAP, { mode: 0o755 });
    bundles['provided-py'] = { runtime: 'provided', handler: '', code: (await packDirectory(pyDir)).toString('base64') };
    const cc = findCc();
    if (cc) {
      const cDir = join(dir, 'provided-c');
      mkdirSync(cDir);
      execFileSync(cc, ['-O2', '-o', join(cDir, 'bootstrap'), join(__dirname, '..', '..', 'scripts', 'fixtures', 'provided-echo.c')]);
      bundles['provided-c'] = { runtime: 'provided', handler: '', code: (await packDirectory(cDir)).toString('base64') };
    } else {
      console.error('bench-provided: no C compiler (cc, gcc, clang): the compiled bootstrap is skipped');
    }
    const kinds = Object.keys(bundles) as Kind[];
    const waitGeneric = async (runtime: string): Promise<void> => {
      for (let i = 0; i < 400; i++) {
        const pool = await client.call<{ instances: Array<{ state: string; runtime: string }> }>('GET', '/v1/pool');
        if (pool.instances.some((x) => x.state === 'generic' && x.runtime === runtime)) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`no generic ${runtime} instance`);
    };
    type Reply = { start: string; initMs: number; error: unknown; result: unknown };
    const invoke = async (name: string, event: unknown): Promise<{ ms: number; r: Reply }> => {
      const t0 = process.hrtime.bigint();
      const r = await client.call<Reply>('POST', `/v1/functions/${name}/invoke`, event);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.error) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
      return { ms, r };
    };
    const generic = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
    const init = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
    for (let i = 0; i < samples; i++) {
      for (const kind of i % 2 ? [...kinds].reverse() : kinds) {
        const name = `g-${kind}-${i}`;
        await client.call('PUT', `/v1/functions/${name}`, bundles[kind]);
        await waitGeneric(bundles[kind]!.runtime);
        const { ms, r } = await invoke(name, { name: 'bench' });
        if (r.start !== 'generic') throw new Error(`${name}: start ${r.start}`);
        generic[kind].push(ms);
        init[kind].push(r.initMs);
        await client.call('DELETE', `/v1/functions/${name}`);
        await new Promise((r) => setTimeout(r, 60)); // the retired instance's teardown, off the measured path
      }
    }
    const warmMs = Object.fromEntries(kinds.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
    for (const kind of kinds) {
      await client.call('PUT', `/v1/functions/w-${kind}`, bundles[kind]);
      for (let i = 0; i < 20; i++) await invoke(`w-${kind}`, { name: 'warm-up' });
    }
    for (let i = 0; i < warm; i++) {
      for (const kind of i % 2 ? [...kinds].reverse() : kinds) {
        const { ms, r } = await invoke(`w-${kind}`, { name: 'bench' });
        if (r.start !== 'warm') throw new Error(`w-${kind}: start ${r.start}`);
        warmMs[kind].push(ms);
      }
    }
    const out = {
      command: `node dist/scripts/bench-provided.js --samples ${samples} --warm ${warm}`,
      date: new Date().toISOString(),
      genericStartMs: Object.fromEntries(kinds.map((k) => [k, summarize(generic[k])])),
      genericInitMs: Object.fromEntries(kinds.map((k) => [k, summarize(init[k])])),
      warmInvokeMs: Object.fromEntries(kinds.map((k) => [k, summarize(warmMs[k])])),
    };
    console.log(JSON.stringify(out, null, 2));
    if (json) writeFileSync(json, JSON.stringify(out, null, 2));
  });
}

main().catch((err: Error) => {
  console.error(`bench-provided: ${err.message}`);
  process.exitCode = 1;
});
