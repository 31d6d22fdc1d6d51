#!/usr/bin/env node
/**
 * The `hearth` command. Everything but `daemon` talks to a running daemon through the control API
 * only (socket from --socket or HEARTH_SOCKET, default /run/hearth/hearth.sock).
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiError, ControlClient } from './client.js';
import { packDirectory } from './pack.js';

const DEFAULT_SOCKET = '/run/hearth/hearth.sock';

const usage = `usage: hearth <command> [options]

  daemon [--socket PATH] [--state-dir DIR] [--config FILE] [--log-level L]
  doctor [--json] [--state-dir DIR]
  deploy DIR|ARCHIVE --name NAME --runtime node|python --handler FILE.FUNC
         [--memory MB] [--timeout S] [--env K=V]... [--concurrency N]
         [--retries N] [--max-event-age S] [--schedule EXPR]... [--network NAME]
  invoke NAME [--data JSON|@FILE] [--async] [--idempotency-key KEY]
  ls | show NAME | rm NAME | pool | queue | model NAME
  events ls [--function F] [--status S] [--limit N] | events show ID | events redrive ID
  network create NAME --bridge BR [--netns NS] --address CIDR --route CIDR... [--allow CIDR[:PORT]...] [--gateway IP]
  network ls | network rm NAME

Global: --socket PATH (or HEARTH_SOCKET)`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(usage + '\n');
    return cmd ? 0 : 2;
  }
  if (cmd === 'daemon') {
    const { runDaemon } = await import('../daemon/run.js');
    return runDaemon(rest);
  }
  if (cmd === 'doctor') return (await import('../doctor/run.js')).runDoctor(rest);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      socket: { type: 'string' },
      name: { type: 'string' },
      runtime: { type: 'string' },
      handler: { type: 'string' },
      memory: { type: 'string' },
      timeout: { type: 'string' },
      env: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      retries: { type: 'string' },
      'max-event-age': { type: 'string' },
      schedule: { type: 'string', multiple: true },
      network: { type: 'string' },
      data: { type: 'string' },
      async: { type: 'boolean' },
      'idempotency-key': { type: 'string' },
      function: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      bridge: { type: 'string' },
      netns: { type: 'string' },
      address: { type: 'string' },
      route: { type: 'string', multiple: true },
      allow: { type: 'string', multiple: true },
      gateway: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const client = new ControlClient(values.socket ?? process.env['HEARTH_SOCKET'] ?? DEFAULT_SOCKET);
  try {
    return await run(client, cmd, positionals, values);
  } catch (err) {
    if (err instanceof ApiError) {
      process.stderr.write(`hearth: ${err.code}: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
      process.stderr.write(`hearth: cannot reach the daemon at ${client.socketPath} (${e.code}); is \`hearth daemon\` running?\n`);
      return 1;
    }
    process.stderr.write(`hearth: ${e.message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

async function run(client: ControlClient, cmd: string, pos: string[], v: Values): Promise<number> {
  const out = (x: unknown): void => void process.stdout.write(JSON.stringify(x, null, 2) + '\n');
  const need = (x: string | undefined, what: string): string => {
    if (!x) throw new Error(`${cmd}: ${what} is required (see hearth --help)`);
    return x;
  };
  const enc = encodeURIComponent;
  switch (cmd) {
    case 'deploy': {
      const src = need(pos[0], 'DIR or ARCHIVE');
      const name = need(v['name'] as string, '--name');
      const code = statSync(src).isDirectory() ? await packDirectory(src) : readFileSync(src);
      const body: Record<string, unknown> = {
        runtime: need(v['runtime'] as string, '--runtime'),
        handler: need(v['handler'] as string, '--handler'),
        code: code.toString('base64'),
      };
      if (v['memory']) body['memoryMb'] = num(v['memory'], '--memory');
      if (v['timeout']) body['timeoutMs'] = Math.round(num(v['timeout'], '--timeout') * 1000);
      if (v['concurrency']) body['concurrency'] = num(v['concurrency'], '--concurrency');
      if (v['retries']) body['retries'] = num(v['retries'], '--retries');
      if (v['max-event-age']) body['maxEventAgeS'] = num(v['max-event-age'], '--max-event-age');
      if (v['schedule']) body['schedules'] = v['schedule'];
      if (v['network']) body['network'] = v['network'];
      if (v['env']) {
        const env: Record<string, string> = {};
        for (const kv of v['env'] as string[]) {
          const i = kv.indexOf('=');
          if (i <= 0) throw new Error(`--env expects K=V, got '${kv}'`);
          env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        body['env'] = env;
      }
      const res = await client.request('PUT', `/v1/functions/${enc(name)}`, body);
      if (res.status !== 200 && res.status !== 201) return apiFail(res.body, res.status);
      const f = res.body as { name: string; codeSha256: string; codeSize: number };
      process.stdout.write(`${res.status === 201 ? 'created' : 'updated'} ${f.name} (code ${f.codeSha256.slice(0, 12)}, ${f.codeSize} bytes)\n`);
      return 0;
    }
    case 'invoke': {
      const name = need(pos[0], 'NAME');
      const data = readData(v['data'] as string | undefined);
      if (v['async']) {
        const headers: Record<string, string> = {};
        if (v['idempotency-key']) headers['Idempotency-Key'] = v['idempotency-key'] as string;
        const r = await client.call<{ id: string }>('POST', `/v1/functions/${enc(name)}/events`, data, headers);
        process.stdout.write(r.id + '\n');
        return 0;
      }
      const t0 = process.hrtime.bigint();
      const r = await client.call<{ result: unknown; error: { type: string; message: string; stack?: string } | null; start: string; initMs: number; durationMs: number; logs: string }>(
        'POST',
        `/v1/functions/${enc(name)}/invoke`,
        data,
      );
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.logs) process.stderr.write(r.logs.endsWith('\n') ? r.logs : r.logs + '\n');
      if (v['json']) out({ ...r, latencyMs: ms });
      else if (r.error) process.stderr.write(`${r.error.type}: ${r.error.message}\n${r.error.stack ?? ''}\n`);
      else process.stdout.write(JSON.stringify(r.result) + '\n');
      process.stderr.write(`[start ${r.start}, init ${r.initMs.toFixed(2)} ms, run ${r.durationMs.toFixed(2)} ms, total ${ms.toFixed(2)} ms]\n`);
      return r.error ? 1 : 0;
    }
    case 'ls': {
      const r = await client.call<{ functions: Array<Record<string, unknown>> }>('GET', '/v1/functions');
      if (v['json']) return out(r), 0;
      table(r.functions, ['name', 'runtime', 'handler', 'memoryMb', 'timeoutMs', 'concurrency', 'updatedAt']);
      return 0;
    }
    case 'show':
      out(await client.call('GET', `/v1/functions/${enc(need(pos[0], 'NAME'))}`));
      return 0;
    case 'rm':
      await client.call('DELETE', `/v1/functions/${enc(need(pos[0], 'NAME'))}`);
      process.stdout.write(`removed ${pos[0]}\n`);
      return 0;
    case 'pool': {
      const r = await client.call<{ instances: Array<Record<string, unknown>> }>('GET', '/v1/pool');
      if (v['json']) return out(r), 0;
      table(r.instances, ['id', 'runtime', 'function', 'state', 'pid', 'invocations', 'lastUsedAt', 'keepAliveUntil', 'why']);
      return 0;
    }
    case 'queue':
      out(await client.call('GET', '/v1/queue'));
      return 0;
    case 'model':
      out(await client.call('GET', `/v1/functions/${enc(need(pos[0], 'NAME'))}/model`));
      return 0;
    case 'events': {
      const sub = pos[0];
      if (sub === 'ls') {
        const q = new URLSearchParams();
        for (const k of ['function', 'status', 'limit']) if (v[k]) q.set(k, v[k] as string);
        const r = await client.call<{ events: Array<Record<string, unknown>> }>('GET', `/v1/events?${q}`);
        if (v['json']) return out(r), 0;
        table(r.events, ['id', 'function', 'status', 'attempts', 'createdAt', 'finishedAt']);
        return 0;
      }
      if (sub === 'show') return out(await client.call('GET', `/v1/events/${enc(need(pos[1], 'ID'))}`)), 0;
      if (sub === 'redrive') return out(await client.call('POST', `/v1/events/${enc(need(pos[1], 'ID'))}/redrive`)), 0;
      throw new Error('events: expected ls, show ID or redrive ID');
    }
    case 'network': {
      const sub = pos[0];
      if (sub === 'ls') {
        const r = await client.call<{ networks: Array<Record<string, unknown>> }>('GET', '/v1/networks');
        if (v['json']) return out(r), 0;
        table(r.networks, ['name', 'address', 'routes', 'allow', 'instances']);
        return 0;
      }
      if (sub === 'rm') {
        await client.call('DELETE', `/v1/networks/${enc(need(pos[1], 'NAME'))}`);
        process.stdout.write(`removed network ${pos[1]}\n`);
        return 0;
      }
      if (sub === 'create') {
        const name = need(pos[1], 'NAME');
        const body: Record<string, unknown> = {
          attach: { bridge: need(v['bridge'] as string, '--bridge'), ...(v['netns'] ? { netns: v['netns'] } : {}) },
          address: need(v['address'] as string, '--address'),
          routes: v['route'] ?? [],
        };
        if (v['allow']) body['allow'] = v['allow'];
        if (v['gateway']) body['gateway'] = v['gateway'];
        out(await client.call('PUT', `/v1/networks/${enc(name)}`, body));
        return 0;
      }
      throw new Error('network: expected create, ls or rm');
    }
    default:
      process.stderr.write(`hearth: unknown command '${cmd}'\n${usage}\n`);
      return 2;
  }
}

function apiFail(body: unknown, status: number): number {
  const err = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  process.stderr.write(`hearth: ${err?.code ?? 'HTTP_' + status}: ${err?.message ?? 'request failed'}\n`);
  return 1;
}

function num(x: unknown, flag: string): number {
  const n = Number(x);
  if (!Number.isFinite(n)) throw new Error(`${flag} expects a number, got '${String(x)}'`);
  return n;
}

function readData(data: string | undefined): string {
  if (data === undefined) return '{}';
  const text = data.startsWith('@') ? readFileSync(data.slice(1), 'utf8') : data;
  try {
    JSON.parse(text);
  } catch (err) {
    throw new Error(`--data is not valid JSON: ${(err as Error).message}`);
  }
  return text;
}

function table(rows: Array<Record<string, unknown>>, cols: string[]): void {
  const cell = (x: unknown): string => (x === undefined || x === null ? '-' : Array.isArray(x) ? x.join(',') : String(x));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((s, i) => s.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(line(cols.map((c) => c.toUpperCase())) + '\n');
  for (const r of rows) process.stdout.write(line(cols.map((c) => cell(r[c]))) + '\n');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`hearth: ${err.message}\n`);
    process.exitCode = 1;
  },
);
