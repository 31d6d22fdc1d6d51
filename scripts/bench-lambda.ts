/**
 * Warm invokes through the Lambda API (TCP, SigV4) versus the Unix control socket, in the same
 * run against the same daemon (a child process) and the same warm no-op Python function: latency
 * of one call at a time (rounds alternate between the two doors), and requests per second with
 * several connections. The Lambda rows replay one request signed once (valid for 5 minutes), so
 * they measure the server's HTTP and signature check, not the client's signing; a row with the
 * real AWS SDK (signing every call) is given for reference. Root only; cleans up after itself.
 *
 *   node dist/scripts/bench-lambda.js [--calls N] [--seconds S] [--json OUT]
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../src/control/client.js';
import { packDirectory } from '../src/cli/pack.js';
import { msSince, sleep, summarize } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Signed {
  path: string;
  headers: Record<string, string>;
  body: string;
}

async function signInvoke(port: number, key: { accessKeyId: string; secretAccessKey: string }, fn: string): Promise<Signed> {
  const signer = new SignatureV4({ credentials: key, region: 'us-east-1', service: 'lambda', sha256: Sha256 });
  const path = `/2015-03-31/functions/${fn}/invocations`;
  const body = '{}';
  const r = await signer.sign({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    path,
    query: {},
    headers: { host: `127.0.0.1:${port}` },
    body,
  });
  return { path, headers: { ...r.headers, 'content-length': String(body.length) }, body };
}

function post(agent: Agent, port: number, s: Signed): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = request({ host: '127.0.0.1', port, method: 'POST', path: s.path, headers: s.headers, agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    c.on('error', reject);
    c.end(s.body);
  });
}

async function main(): Promise<void> {
  const usage = 'usage: node dist/scripts/bench-lambda.js [--calls N] [--seconds S] [--json OUT]';
  const { calls, seconds, json } = scriptArgs('bench-lambda', usage, { calls: VALUE, seconds: VALUE, json: VALUE }, ({ values: v }) => ({
    calls: numberArg(v.calls, '--calls', 4000, COUNT),
    seconds: numberArg(v.seconds, '--seconds', 3, COUNT),
    json: v.json,
  }));
  if (process.getuid?.() !== 0) throw new Error('needs root');
  const dir = mkdtempSync(join(tmpdir(), 'hearth-blam-'));
  const sock = join(dir, 'h.sock');
  const port = await freePort();
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ cgroupName: `hearth-bench-${randomBytes(3).toString('hex')}`, generic: { node: 0, python: 1 }, logLevel: 'error' }),
  );
  let daemon: ChildProcess | undefined;
  const clients: ControlClient[] = [];
  const agent = new Agent({ keepAlive: true });
  let sdk: LambdaClient | undefined;
  const cleanup = async (): Promise<void> => {
    sdk?.destroy();
    agent.destroy();
    for (const c of clients) c.close();
    if (daemon && daemon.exitCode === null) {
      const gone = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const args = ['daemon', '--socket', sock, '--state-dir', join(dir, 'state'), '--config', join(dir, 'config.json'), '--lambda-listen', `127.0.0.1:${port}`];
    daemon = spawn(process.execPath, [join(__dirname, '..', 'src', 'cli', 'main.js'), ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    const c = new ControlClient(sock);
    clients.push(c);
    for (let i = 0; ; i++) {
      if ((await c.request('GET', '/v1/health').catch(() => undefined))?.status === 200) break;
      if (i > 300) throw new Error('daemon did not start');
      await sleep(50);
    }
    const code = (await packDirectory(join(__dirname, '..', '..', 'scripts', 'fixtures', 'sleepy'))).toString('base64');
    await c.call('PUT', '/v1/functions/noop', { runtime: 'python', handler: 'sleepy.noop', code, concurrency: 8 });
    const key = await c.call<{ accessKeyId: string; secretAccessKey: string }>('POST', '/v1/keys', { name: 'bench' });
    const signed = await signInvoke(port, key, 'noop');
    sdk = new LambdaClient({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: key, maxAttempts: 1 });
    const sdkClient = sdk;

    const doors = {
      socket: (cl: ControlClient) => cl.call('POST', '/v1/functions/noop/invoke', {}).then(() => undefined),
      lambda: () => post(agent, port, signed),
      sdk: () => sdkClient.send(new InvokeCommand({ FunctionName: 'noop', Payload: new Uint8Array(Buffer.from('{}')) })).then(() => undefined),
    };
    // The Lambda listener starts right after the control socket.
    for (let i = 0; ; i++) {
      if (
        await doors.lambda().then(
          () => true,
          () => false,
        )
      )
        break;
      if (i > 300) throw new Error('the Lambda API did not start');
      await sleep(50);
    }
    // Warm up: the instance, the connections, the JIT.
    for (let i = 0; i < 300; i++) await Promise.all([doors.socket(c), doors.lambda(), doors.sdk()]);

    const lat: Record<keyof typeof doors, number[]> = { socket: [], lambda: [], sdk: [] };
    const rounds = 20;
    for (let r = 0; r < rounds; r++) {
      for (const door of ['socket', 'lambda', 'sdk'] as const) {
        const n = door === 'sdk' ? Math.ceil(calls / rounds / 4) : Math.ceil(calls / rounds);
        for (let i = 0; i < n; i++) {
          const t0 = process.hrtime.bigint();
          await (door === 'socket' ? doors.socket(c) : doors[door]());
          lat[door].push(msSince(t0));
        }
      }
    }

    const parallel = 8;
    const throughput = async (door: 'socket' | 'lambda'): Promise<number> => {
      const cs = Array.from({ length: parallel }, () => new ControlClient(sock));
      clients.push(...cs);
      const end = performance.now() + seconds * 1000;
      let done = 0;
      await Promise.all(
        cs.map(async (cl) => {
          while (performance.now() < end) {
            await (door === 'socket' ? doors.socket(cl) : doors.lambda());
            done++;
          }
        }),
      );
      return done / seconds;
    };
    const rps = { socket: await throughput('socket'), lambda: await throughput('lambda') };
    const s = { socket: summarize(lat.socket), lambda: summarize(lat.lambda), sdk: summarize(lat.sdk) };
    const out = {
      command: `node dist/scripts/bench-lambda.js --calls ${calls} --seconds ${seconds}`,
      date: new Date().toISOString(),
      latencyMs: s,
      lambdaExtraMs: { p50: s.lambda.median - s.socket.median, p99: s.lambda.p99 - s.socket.p99 },
      requestsPerS: { parallel, ...rps },
    };
    console.log(JSON.stringify(out, null, 2));
    if (json) writeFileSync(json, JSON.stringify(out, null, 2));
  } finally {
    await cleanup();
  }
}

main().catch((err: Error) => {
  console.error(`bench-lambda: ${err.message}`);
  process.exitCode = 1;
});
