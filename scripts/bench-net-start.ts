/**
 * What a private network adds to the request path: generic starts of the same hello function with
 * and without a network, interleaved, end to end from a client of the control socket (the daemon
 * is a separate process). The network's namespaces and veths are prepared with the generic pool,
 * so the difference should be near zero. Root only; builds its own private network (a namespace
 * with a bridge and a TCP server) and removes everything at the end, also on SIGINT.
 *
 *   node dist/scripts/bench-net-start.js [--samples N] [--json OUT]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packDirectory } from '../src/cli/pack.js';
import type { Cleanup } from './bench/cleanup.js';
import { withBenchDaemon } from './bench/daemon-process.js';
import { summarize } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

const PATH_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const ip = (...a: string[]) => execFileSync('ip', a, { env: PATH_ENV, encoding: 'utf8' });

async function main(): Promise<void> {
  const { samples, json } = scriptArgs(
    'bench-net-start',
    'usage: node dist/scripts/bench-net-start.js [--samples N] [--json OUT]',
    { samples: VALUE, json: VALUE },
    ({ values: v }) => ({ samples: numberArg(v.samples, '--samples', 200, COUNT), json: v.json }),
  );
  if (process.getuid?.() !== 0) throw new Error('needs root');
  const rand = randomBytes(3).toString('hex');
  const ns = `hearth-b-${rand}`;
  const runDir = `/run/hearth-b-${rand}`;
  const settings = { generic: { node: 0, python: 1 }, logLevel: 'error', extra: { runDir, genericPerNetwork: 1 } };
  const makeLan = (cleanup: Cleanup): void => {
    cleanup.add(`run dir ${runDir}`, () => rmSync(runDir, { recursive: true, force: true }));
    ip('netns', 'add', ns);
    cleanup.add(`netns ${ns}`, () => void ip('netns', 'del', ns));
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', ns, 'link', 'set', 'br0', 'up');
    ip('-n', ns, 'addr', 'add', '10.77.0.10/24', 'dev', 'br0');
  };
  await withBenchDaemon(
    'hearth-bnet-',
    settings,
    async (d) => {
      const client = d.client;
      await client.call('PUT', '/v1/networks/bench', { attach: { bridge: 'br0', netns: ns }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'] });
      const code = (await packDirectory(join(__dirname, '..', '..', 'examples', 'hello-python'))).toString('base64');
      const waitGeneric = async (network: string | null): Promise<void> => {
        for (let i = 0; i < 400; i++) {
          const pool = await client.call<{ instances: Array<{ state: string; runtime: string; network: string | null }> }>('GET', '/v1/pool');
          if (pool.instances.some((x) => x.state === 'generic' && x.runtime === 'python' && x.network === network)) return;
          await new Promise((r) => setTimeout(r, 5));
        }
        throw new Error(`no generic instance for network ${network}`);
      };
      // Keep one function on the network so its generic pool exists.
      await client.call('PUT', '/v1/functions/anchor', { runtime: 'python', handler: 'main.handler', code, network: 'bench' });
      const e2e: Record<'none' | 'network', number[]> = { none: [], network: [] };
      const init: Record<'none' | 'network', number[]> = { none: [], network: [] };
      for (let i = 0; i < samples; i++) {
        const order: ReadonlyArray<'none' | 'network'> = i % 2 ? ['none', 'network'] : ['network', 'none'];
        for (const kind of order) {
          const name = `f-${kind}-${i}`;
          await client.call('PUT', `/v1/functions/${name}`, {
            runtime: 'python',
            handler: 'main.handler',
            code,
            ...(kind === 'network' ? { network: 'bench' } : {}),
          });
          await waitGeneric(kind === 'network' ? 'bench' : null);
          const t0 = process.hrtime.bigint();
          const r = await client.call<{ start: string; initMs: number; error: unknown }>('POST', `/v1/functions/${name}/invoke`, {});
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          if (r.error || r.start !== 'generic') throw new Error(`${name}: start ${r.start}, error ${JSON.stringify(r.error)}`);
          e2e[kind].push(ms);
          init[kind].push(r.initMs);
          await client.call('DELETE', `/v1/functions/${name}`);
          // Let the retired instance's teardown (and its veth removal) finish off the measured path.
          await new Promise((r) => setTimeout(r, 60));
        }
      }
      const out = {
        command: `node dist/scripts/bench-net-start.js --samples ${samples}`,
        date: new Date().toISOString(),
        generic: { none: summarize(e2e.none), network: summarize(e2e.network) },
        initMs: { none: summarize(init.none), network: summarize(init.network) },
        addedMedianMs: summarize(e2e.network).median - summarize(e2e.none).median,
      };
      console.log(JSON.stringify(out, null, 2));
      if (json) writeFileSync(json, JSON.stringify(out, null, 2));
    },
    makeLan,
  );
}

main().catch((err: Error) => {
  console.error(`bench-net-start: ${err.message}`);
  process.exitCode = 1;
});
