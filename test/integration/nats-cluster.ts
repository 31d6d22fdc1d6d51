/**
 * Real `nats-server` brokers for tests: a JetStream cluster of N nodes on free loopback ports in a
 * temporary directory. Each node can be killed (SIGKILL) and restarted on the same ports and store,
 * so tests can take a broker away and bring it back. `stop()` ends every process this harness
 * started and removes the directory, also after a failed test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { findTool } from '../../src/host-tools.js';
import { freePort } from '../../scripts/bench/free-port.js';

export { freePort };

export interface NatsNode {
  name: string;
  /** Client URL, nats://127.0.0.1:PORT. */
  url: string;
  clientPort: number;
  routePort: number;
  storeDir: string;
  process: ChildProcess | undefined;
}

export interface NatsCluster {
  dir: string;
  nodes: NatsNode[];
  /** Client URLs of every node, for `--nats`. */
  urls: string[];
  /** SIGKILL node i (its store stays). */
  kill(i: number): Promise<void>;
  /** Starts node i again on the same ports and store; resolves when it accepts clients. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** The nats-server binary, or undefined when it is not installed (tests skip, saying why). */
export function natsServerPath(): string | undefined {
  return findTool('nats-server');
}

async function waitForPort(port: number, timeoutMs: number, proc: ChildProcess): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`nats-server exited (${proc.exitCode ?? proc.signalCode}) before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `nodes` brokers (default 3) clustered together with JetStream on. */
export async function startNatsCluster(opts: { nodes?: number } = {}): Promise<NatsCluster> {
  const bin = natsServerPath();
  if (!bin) throw new Error('nats-server is not installed (apt-get install nats-server)');
  const n = opts.nodes ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'hearth-nats-'));
  const nodes: NatsNode[] = [];
  for (let i = 0; i < n; i++) {
    const clientPort = await freePort();
    const routePort = await freePort();
    nodes.push({ name: `n${i + 1}`, url: `nats://127.0.0.1:${clientPort}`, clientPort, routePort, storeDir: join(dir, `n${i + 1}`), process: undefined });
  }
  for (const node of nodes) {
    mkdirSync(node.storeDir, { recursive: true });
    const routes = nodes.filter((o) => o !== node).map((o) => `nats-route://127.0.0.1:${o.routePort}`);
    const conf = [
      `server_name: ${node.name}`,
      `listen: 127.0.0.1:${node.clientPort}`,
      `jetstream { store_dir: "${node.storeDir}", max_memory_store: 268435456, max_file_store: 2147483648 }`,
      ...(n > 1 ? [`cluster { name: hearth-test, listen: 127.0.0.1:${node.routePort}, routes: [${routes.join(', ')}] }`] : []),
    ].join('\n');
    writeFileSync(join(dir, `${node.name}.conf`), conf + '\n');
  }

  const start = async (node: NatsNode): Promise<void> => {
    const proc = spawn(bin, ['-c', join(dir, `${node.name}.conf`)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    node.process = proc;
    try {
      await waitForPort(node.clientPort, 10_000, proc);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${stderr}`, { cause: err });
    }
  };
  const killNode = async (node: NatsNode): Promise<void> => {
    const p = node.process;
    node.process = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };

  const cluster: NatsCluster = {
    dir,
    nodes,
    urls: nodes.map((x) => x.url),
    kill: (i) => killNode(nodes[i]),
    restart: (i) => start(nodes[i]),
    stop: async () => {
      await Promise.all(nodes.map(killNode));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map(start));
    await waitForJetStream(cluster.urls, 30_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Resolves once JetStream answers API requests (a fresh cluster first elects its meta leader). */
export async function waitForJetStream(urls: string[], timeoutMs: number): Promise<void> {
  const nc = await connect({ servers: urls });
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > until) throw new Error(`JetStream not ready within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await nc.close();
  }
}
