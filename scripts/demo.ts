/**
 * The README's first command: start the daemon on its embedded defaults, deploy the bundled
 * examples, invoke each a few times (the first start is `generic` or `cold`, the rest `warm`),
 * print each result with its start kind and latency, then stop the daemon (SIGTERM drains).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ControlClient } from '../src/control/client.js';
import { packDirectory } from '../src/cli/pack.js';
import { scriptArgs } from './cli-args.js';

const root = join(__dirname, '..', '..');
const socket = process.env['HEARTH_SOCKET'] ?? '/run/hearth/hearth.sock';

const examples = [
  { name: 'hello-node', dir: 'examples/hello-node', runtime: 'node', handler: 'index.handler', event: { name: 'Ada' } },
  { name: 'hello-esm', dir: 'examples/hello-esm', runtime: 'node', handler: 'handler.main', event: { name: 'Grace' } },
  { name: 'hello-python', dir: 'examples/hello-python', runtime: 'python', handler: 'main.handler', event: { name: 'Guido' } },
  {
    name: 'wordcount-python',
    dir: 'examples/wordcount-python',
    runtime: 'python',
    handler: 'words.count',
    event: { text: 'the cat and the hat and the bat', top: 2 },
  },
];

async function waitForHealth(client: ControlClient, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await client.request('GET', '/v1/health');
      if (r.status === 200) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`the daemon did not answer on ${socket} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The daemon's default state directory: the demo leaves it behind, and says so. */
const STATE_DIR = '/var/lib/hearth';

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: the daemon builds sandboxes and must run as root\n');
    return 1;
  }
  const daemon = spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), 'daemon', '--socket', socket, '--state-dir', STATE_DIR, '--log-level', 'warn'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => daemon.on('exit', (code) => r(code)));
  const client = new ControlClient(socket);
  let failures = 0;
  try {
    await Promise.race([waitForHealth(client, 30_000), exited.then((c) => Promise.reject(new Error(`daemon exited with ${c}`)))]);
    // Give the generic pool a moment to fill so the first start shows code mounted at trigger.
    await new Promise((r) => setTimeout(r, 1500));
    for (const ex of examples) {
      if (!existsSync(join(root, ex.dir))) continue;
      const code = await packDirectory(join(root, ex.dir));
      await client.call('PUT', `/v1/functions/${ex.name}`, { runtime: ex.runtime, handler: ex.handler, code: code.toString('base64') });
      for (let i = 0; i < 3; i++) {
        const t0 = process.hrtime.bigint();
        const r = await client.call<{ result: unknown; error: { type: string; message: string } | null; start: string }>(
          'POST',
          `/v1/functions/${ex.name}/invoke`,
          ex.event,
        );
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const what = r.error ? `ERROR ${r.error.type}: ${r.error.message}` : JSON.stringify(r.result);
        if (r.error) failures++;
        process.stdout.write(`${ex.name.padEnd(17)} start=${r.start.padEnd(7)} ${ms.toFixed(2).padStart(8)} ms  ${what}\n`);
      }
    }
    const pool = await client.call<{ instances: Array<{ runtime: string; state: string; function: string | null }> }>('GET', '/v1/pool');
    process.stdout.write(`pool: ${pool.instances.map((i) => `${i.runtime}/${i.state}${i.function ? '/' + i.function : ''}`).join(', ')}\n`);
  } finally {
    client.close();
    daemon.kill('SIGTERM');
    const code = await exited;
    process.stdout.write(`daemon stopped (exit ${code})\n`);
    process.stdout.write(`its state (functions, code, event queue) stays in ${STATE_DIR} for the next run; remove it with: rm -rf ${STATE_DIR}\n`);
  }
  return failures === 0 ? 0 : 1;
}

scriptArgs('demo', 'usage: npm run demo   (no options; HEARTH_SOCKET picks the control socket)', {}, () => undefined);
main().then(
  (c) => (process.exitCode = c),
  (err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exitCode = 1;
  },
);
