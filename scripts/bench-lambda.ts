/**
 * Warm invokes through the Lambda API (TCP, SigV4) versus the Unix control socket, in the same
 * run against the same daemon (a child process) and the same warm no-op Python function: latency
 * of one call at a time (rounds alternate between the two doors), and requests per second with
 * several connections. Both doors are driven by the same minimal HTTP/1.1 client, and the Lambda
 * rows replay one request signed once (valid for 5 minutes), so they measure the server's TCP,
 * HTTP and signature check, not a client library's cost or its signing; a row with the real AWS
 * SDK (node:http, signing every call) is given for reference. Root only; cleans up after itself.
 *
 *   node dist/scripts/bench-lambda.js [--calls N] [--seconds S] [--json OUT]
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { withBenchDaemon } from './bench/daemon-process.js';
import { msSince, sleep, summarize } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';
import { freePort } from './bench/free-port.js';

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

/**
 * The same minimal keep-alive HTTP/1.1 client for both doors (one request in flight, its bytes
 * prepared once), so the comparison is of the servers, not of two client libraries.
 */
class RawClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: ((status: number) => void) | undefined;
  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.buf.length < end + 4 + len) return;
      this.buf = this.buf.subarray(end + 4 + len);
      const w = this.waiting;
      this.waiting = undefined;
      w?.(Number(head.slice(9, 12)));
    });
  }
  static open(at: string | number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = typeof at === 'string' ? connect(at) : connect(at, '127.0.0.1');
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }
  send(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting = (status) => (status === 200 ? resolve() : reject(new Error(`HTTP ${status}`)));
      this.socket.write(bytes);
    });
  }
  close(): void {
    this.socket.destroy();
  }
}

function requestBytes(method: string, path: string, headers: Record<string, string>, body: string): Buffer {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'content-length') head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

async function main(): Promise<void> {
  const usage = 'usage: node dist/scripts/bench-lambda.js [--calls N] [--seconds S] [--json OUT]';
  const { calls, seconds, json } = scriptArgs('bench-lambda', usage, { calls: VALUE, seconds: VALUE, json: VALUE }, ({ values: v }) => ({
    calls: numberArg(v.calls, '--calls', 4000, COUNT),
    seconds: numberArg(v.seconds, '--seconds', 3, COUNT),
    json: v.json,
  }));
  if (process.getuid?.() !== 0) throw new Error('needs root');
  const port = await freePort();
  const settings = { generic: { node: 0, python: 1 }, logLevel: 'error', extra: { lambdaListen: `127.0.0.1:${port}` } };
  await withBenchDaemon('hearth-blam-', settings, async (d, cleanup) => {
    const sock = d.socket;
    const c = d.client;
    const agent = new Agent({ keepAlive: true });
    cleanup.add('http agent', () => agent.destroy());
    await d.deploy('noop', join(__dirname, '..', '..', 'scripts', 'fixtures', 'sleepy'), 'python', 'sleepy.noop', { concurrency: 8 });
    const key = await c.call<{ accessKeyId: string; secretAccessKey: string }>('POST', '/v1/keys', { name: 'bench' });
    const signed = await signInvoke(port, key, 'noop');
    const sdkClient = new LambdaClient({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: key, maxAttempts: 1 });
    cleanup.add('sdk client', () => sdkClient.destroy());

    // The Lambda listener starts right after the control socket.
    for (let i = 0; ; i++) {
      if (
        await post(agent, port, signed).then(
          () => true,
          () => false,
        )
      )
        break;
      if (i > 300) throw new Error('the Lambda API did not start');
      await sleep(50);
    }
    const rawClient = async (at: string | number): Promise<RawClient> => {
      const r = await RawClient.open(at);
      cleanup.add('raw client', () => r.close());
      return r;
    };
    const socketBytes = requestBytes('POST', '/v1/functions/noop/invoke', { host: 'localhost', 'content-type': 'application/json' }, '{}');
    const lambdaBytes = requestBytes('POST', signed.path, signed.headers, signed.body);
    const rawSocket = await rawClient(sock);
    const rawLambda = await rawClient(port);
    const doors = {
      socket: (cl: RawClient) => cl.send(socketBytes),
      lambda: (cl: RawClient) => cl.send(lambdaBytes),
      sdk: () => sdkClient.send(new InvokeCommand({ FunctionName: 'noop', Payload: new Uint8Array(Buffer.from('{}')) })).then(() => undefined),
    };
    // Warm up: the instance, the connections, the JIT.
    for (let i = 0; i < 300; i++) await Promise.all([doors.socket(rawSocket), doors.lambda(rawLambda), doors.sdk()]);

    const lat: Record<keyof typeof doors, number[]> = { socket: [], lambda: [], sdk: [] };
    const rounds = 20;
    for (let r = 0; r < rounds; r++) {
      for (const door of ['socket', 'lambda', 'sdk'] as const) {
        const n = door === 'sdk' ? Math.ceil(calls / rounds / 4) : Math.ceil(calls / rounds);
        for (let i = 0; i < n; i++) {
          const t0 = process.hrtime.bigint();
          await (door === 'socket' ? doors.socket(rawSocket) : door === 'lambda' ? doors.lambda(rawLambda) : doors.sdk());
          lat[door].push(msSince(t0));
        }
      }
    }

    const parallel = 8;
    const throughput = async (door: 'socket' | 'lambda'): Promise<number> => {
      const cs = await Promise.all(Array.from({ length: parallel }, () => rawClient(door === 'socket' ? sock : port)));
      const end = performance.now() + seconds * 1000;
      let done = 0;
      await Promise.all(
        cs.map(async (cl) => {
          while (performance.now() < end) {
            await doors[door](cl);
            done++;
          }
        }),
      );
      return done / seconds;
    };
    // First a discarded round, so both doors find the same warm instances (the first parallel run makes them).
    await throughput('socket');
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
  });
}

main().catch((err: Error) => {
  console.error(`bench-lambda: ${err.message}`);
  process.exitCode = 1;
});
