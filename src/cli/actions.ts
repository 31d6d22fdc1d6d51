/**
 * What each `hearth` command does once its arguments are parsed (see commands.ts): one API call
 * (or a few), printed for people, or as the API's JSON with --json.
 */
import { readFileSync, statSync } from 'node:fs';
import type { ControlClient } from '../control/client.js';
import type { FlagValues } from './commands.js';
import { formatJson, formatTable, hostRows, networkRows } from './format.js';
import { listInvocations, printLogs } from './history.js';
import { packDirectory } from './pack.js';

/** A usage mistake (missing argument, bad value): printed with the command's help hint, exit 2. */
export class UsageError extends Error {}

/** A local file the command needs cannot be read: printed with its path, exit 1. */
export class LocalFileError extends Error {}

interface InvokeError {
  type: string;
  message: string;
  stack?: string;
}

/** An invocation's error for the terminal: the stack alone when it already shows type and message (Node, Python). */
export function formatInvokeError(e: InvokeError): string {
  const stack = (e.stack ?? '').trimEnd();
  if (stack && e.message && stack.includes(e.message)) return stack + '\n';
  return `${e.type}: ${e.message}\n${stack ? stack + '\n' : ''}`;
}

function readLocal(what: string, path: string, read: () => Buffer | string): Buffer | string {
  try {
    return read();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new LocalFileError(`${what} ${path}: ${why}`);
  }
}

function readData(data: string | undefined): string {
  if (data === undefined) return '{}';
  const text = data.startsWith('@') ? (readLocal('--data', data.slice(1), () => readFileSync(data.slice(1), 'utf8')) as string) : data;
  try {
    JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--data is not valid JSON: ${(err as Error).message}`);
  }
  return text;
}

function num(x: unknown, flag: string): number {
  const n = Number(x);
  if (typeof x !== 'string' || x.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} expects a number, got '${String(x)}'`);
  return n;
}

async function deployBody(src: string, v: FlagValues, need: (x: unknown, what: string) => string): Promise<Record<string, unknown>> {
  const runtime = need(v['runtime'], '--runtime');
  // A provided runtime's handler is optional (it only becomes the bootstrap's _HANDLER).
  const handler = runtime === 'provided' && v['handler'] === undefined ? '' : need(v['handler'], '--handler');
  const isDir = (readLocal('deploy:', src, () => String(statSync(src).isDirectory())) as string) === 'true';
  const code = isDir ? await packDirectory(src) : (readLocal('deploy:', src, () => readFileSync(src)) as Buffer);
  const body: Record<string, unknown> = { runtime, handler, code: code.toString('base64') };
  if (v['memory'] !== undefined) body['memoryMb'] = num(v['memory'], '--memory');
  if (v['timeout'] !== undefined) body['timeoutMs'] = Math.round(num(v['timeout'], '--timeout') * 1000);
  if (v['concurrency'] !== undefined) body['concurrency'] = num(v['concurrency'], '--concurrency');
  if (v['retries'] !== undefined) body['retries'] = num(v['retries'], '--retries');
  if (v['max-event-age'] !== undefined) body['maxEventAgeS'] = num(v['max-event-age'], '--max-event-age');
  if (v['schedule']) body['schedules'] = v['schedule'];
  if (v['network']) body['network'] = v['network'];
  if (v['env']) {
    const env: Record<string, string> = {};
    for (const kv of v['env'] as string[]) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new UsageError(`--env expects K=V, got '${kv}'`);
      env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    body['env'] = env;
  }
  return body;
}

/**
 * Runs command `cmd` (a name from COMMANDS, e.g. `events ls`) and returns the exit code. Throws
 * UsageError, LocalFileError, ApiError or the client's connection errors.
 */
export async function runCommand(client: ControlClient, cmd: string, pos: string[], v: FlagValues): Promise<number> {
  const print = (s: string): void => void process.stdout.write(s);
  const pretty = (x: unknown): number => (print((v['json'] ? JSON.stringify(x, null, 2) : formatJson(x)) + '\n'), 0);
  const need = (x: unknown, what: string): string => {
    if (typeof x !== 'string' || x === '') throw new UsageError(`${what} is required`);
    return x;
  };
  const enc = encodeURIComponent;
  switch (cmd) {
    case 'deploy': {
      const src = need(pos[0], 'DIR or ARCHIVE');
      const name = need(v['name'], '--name');
      const body = await deployBody(src, v, need);
      const res = await client.request('PUT', `/v1/functions/${enc(name)}`, body);
      if (res.status !== 200 && res.status !== 201) {
        const err = (res.body as { error?: { code?: string; message?: string } } | undefined)?.error;
        process.stderr.write(`hearth: ${err?.code ?? 'HTTP_' + res.status}: ${err?.message ?? 'request failed'}\n`);
        return 1;
      }
      const f = res.body as { name: string; codeSha256: string; codeSize: number };
      print(`${res.status === 201 ? 'created' : 'updated'} ${f.name} (code ${f.codeSha256.slice(0, 12)}, ${f.codeSize} bytes)\n`);
      return 0;
    }
    case 'invoke': {
      const name = need(pos[0], 'NAME');
      const data = readData(v['data'] as string | undefined);
      if (v['async']) {
        const headers: Record<string, string> = {};
        if (v['idempotency-key']) headers['Idempotency-Key'] = v['idempotency-key'] as string;
        const r = await client.call<{ id: string }>('POST', `/v1/functions/${enc(name)}/events`, data, headers);
        print(v['json'] ? JSON.stringify(r) + '\n' : r.id + '\n');
        return 0;
      }
      const t0 = process.hrtime.bigint();
      const r = await client.call<{ result: unknown; error: InvokeError | null; start: string; initMs: number; durationMs: number; logs: string }>(
        'POST',
        `/v1/functions/${enc(name)}/invoke`,
        data,
      );
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.logs) process.stderr.write(r.logs.endsWith('\n') ? r.logs : r.logs + '\n');
      if (v['json']) print(JSON.stringify({ ...r, latencyMs: ms }, null, 2) + '\n');
      else if (r.error) process.stderr.write(formatInvokeError(r.error));
      else print(JSON.stringify(r.result) + '\n');
      process.stderr.write(`[start ${r.start}, init ${r.initMs.toFixed(2)} ms, run ${r.durationMs.toFixed(2)} ms, total ${ms.toFixed(2)} ms]\n`);
      return r.error ? 1 : 0;
    }
    case 'ls': {
      const r = await client.call<{ functions: Array<Record<string, unknown>> }>('GET', '/v1/functions');
      if (v['json']) return pretty(r);
      print(formatTable(r.functions, ['name', 'runtime', 'handler', 'memoryMb', 'timeoutMs', 'concurrency', 'updatedAt']));
      return 0;
    }
    case 'show':
      return pretty(await client.call('GET', `/v1/functions/${enc(need(pos[0], 'NAME'))}`));
    case 'rm':
      await client.call('DELETE', `/v1/functions/${enc(need(pos[0], 'NAME'))}`);
      print(`removed ${pos[0]}\n`);
      return 0;
    case 'pool': {
      const r = await client.call<{ instances: Array<Record<string, unknown>> }>('GET', '/v1/pool');
      if (v['json']) return pretty(r);
      print(formatTable(r.instances, ['id', 'runtime', 'function', 'state', 'pid', 'invocations', 'lastUsedAt', 'keepAliveUntil', 'why']));
      return 0;
    }
    case 'queue':
      return pretty(await client.call('GET', '/v1/queue'));
    case 'hosts': {
      const h = await client.call<{ cluster?: { hosts: Array<Record<string, unknown>>; broker?: { hostId?: string } } }>('GET', '/v1/health');
      if (!h.cluster) {
        process.stderr.write('this daemon is one host, in no cluster (it was started without --nats)\n');
        return 1;
      }
      if (v['json']) return pretty({ hosts: h.cluster.hosts });
      print(formatTable(hostRows(h.cluster.hosts, h.cluster.broker?.hostId), ['host', 'seenMsAgo', 'busy', 'idleWarm', 'freeGeneric', 'memoryMb']));
      return 0;
    }
    case 'invocations':
      return listInvocations(client, need(pos[0], 'NAME'), v, { print });
    case 'logs': {
      let stop = false;
      process.once('SIGINT', () => void (stop = true));
      const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
      return printLogs(client, need(pos[0], 'NAME'), v, { print, sleep, stopped: () => stop });
    }
    case 'model': {
      const r = await client.call<{ summary?: string[] }>('GET', `/v1/functions/${enc(need(pos[0], 'NAME'))}/model`);
      if (v['json'] || !r.summary) return pretty(r);
      // The decision in words first, then the figures behind it.
      print(r.summary.join('\n') + '\n\n');
      return pretty({ ...r, summary: undefined });
    }
    case 'events ls': {
      const q = new URLSearchParams();
      for (const k of ['function', 'status', 'limit']) if (v[k]) q.set(k, v[k] as string);
      const r = await client.call<{ events: Array<Record<string, unknown>> }>('GET', `/v1/events?${q}`);
      if (v['json']) return pretty(r);
      print(formatTable(r.events, ['id', 'function', 'status', 'attempts', 'createdAt', 'finishedAt']));
      return 0;
    }
    case 'events show':
      return pretty(await client.call('GET', `/v1/events/${enc(need(pos[0], 'ID'))}`));
    case 'events redrive':
      return pretty(await client.call('POST', `/v1/events/${enc(need(pos[0], 'ID'))}/redrive`));
    case 'network ls': {
      const r = await client.call<{ networks: Array<Record<string, unknown>> }>('GET', '/v1/networks');
      if (v['json']) return pretty(r);
      print(formatTable(networkRows(r.networks), ['name', 'bridge', 'address', 'routes', 'allow', 'instances', 'state']));
      return 0;
    }
    case 'network rm':
      await client.call('DELETE', `/v1/networks/${enc(need(pos[0], 'NAME'))}`);
      print(`removed network ${pos[0]}\n`);
      return 0;
    case 'network create': {
      const name = need(pos[0], 'NAME');
      const body: Record<string, unknown> = {
        attach: { bridge: need(v['bridge'], '--bridge'), ...(v['netns'] ? { netns: v['netns'] } : {}) },
        address: need(v['address'], '--address'),
        routes: v['route'] ?? [],
      };
      if (v['allow']) body['allow'] = v['allow'];
      if (v['gateway']) body['gateway'] = v['gateway'];
      const perHost = v['host-address'] as string[] | undefined;
      if (perHost) {
        const table: Record<string, string> = {};
        for (const x of perHost) {
          const eq = x.indexOf('=');
          if (eq <= 0) throw new UsageError(`--host-address wants HOST=CIDR, got ${JSON.stringify(x)}`);
          table[x.slice(0, eq)] = x.slice(eq + 1);
        }
        body['hostAddresses'] = table;
      }
      return pretty(await client.call('PUT', `/v1/networks/${enc(name)}`, body));
    }
    case 'keys create': {
      const k = await client.call<{ accessKeyId: string; secretAccessKey: string; name: string }>('POST', '/v1/keys', { name: need(pos[0], 'NAME') });
      if (v['json']) print(JSON.stringify({ accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey }) + '\n');
      else print(`access key ${k.name}\n  AWS_ACCESS_KEY_ID=${k.accessKeyId}\n  AWS_SECRET_ACCESS_KEY=${k.secretAccessKey}\nthe secret is shown only now.\n`);
      return 0;
    }
    case 'keys ls': {
      const r = await client.call<{ keys: Array<Record<string, unknown>> }>('GET', '/v1/keys');
      if (v['json']) return pretty(r);
      print(formatTable(r.keys, ['accessKeyId', 'name', 'createdAt']));
      return 0;
    }
    case 'keys rm':
      await client.call('DELETE', `/v1/keys/${enc(need(pos[0], 'ID'))}`);
      print(`removed key ${pos[0]}\n`);
      return 0;
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}
