import test from 'ava';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { ControlServer, type PeerCredentials } from '../../src/control/server.js';
import { buildRoutes, type ApiServices } from '../../src/control/routes.js';
import type { SyncInvokeResult } from '../../src/dispatch/dispatcher.js';
import { HearthError } from '../../src/errors.js';
import type { FunctionRecord } from '../../src/registry/function-spec.js';
import { silentLogger } from '../../src/log.js';

function services(over: Partial<ApiServices> = {}): ApiServices {
  const nope = (): never => {
    throw new HearthError('FUNCTION_NOT_FOUND', 'no such function');
  };
  return {
    health: () => ({ ok: true }),
    putFunction: async () => ({ record: { name: 'x' } as FunctionRecord, created: true }),
    reconfigureFunction: nope,
    listFunctions: () => [],
    getFunction: nope,
    deleteFunction: async () => nope(),
    invoke: async (name, event) => ({ name, event }) as unknown as SyncInvokeResult,
    pool: () => ({ instances: [] }),
    model: nope,
    submitEvent: async () => ({ id: 'e1' }),
    submitBatch: async (_n, p) => ({ ids: p.map((_, i) => `e${i}`) }),
    getEvent: nope,
    listEvents: () => [],
    redriveEvent: nope,
    queueStats: () => ({}),
    invocations: async (name, last) => [{ name, last }],
    logs: async (name, since) => [{ name, since }],
    putNetwork: async () => ({ record: {}, created: true }),
    listNetworks: () => [],
    deleteNetwork: async () => undefined,
    createKey: nope,
    listKeys: () => [],
    deleteKey: async () => nope(),
    ...over,
  };
}

async function withServer(peer: PeerCredentials, svc: ApiServices, fn: (c: ControlClient, path: string) => Promise<void>, allowedGid?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-ctl-'));
  const path = join(dir, 'sub', 'h.sock');
  const server = new ControlServer({
    socketPath: path,
    routes: buildRoutes(svc),
    peerCredentials: () => peer,
    log: silentLogger(),
    ...(allowedGid !== undefined ? { allowedGid } : {}),
  });
  await server.start();
  const client = new ControlClient(path);
  try {
    await fn(client, path);
  } finally {
    client.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const root = { pid: process.pid, uid: 0, gid: 0 };

test('root may call; the socket is mode 0660 and removed at stop', async (t) => {
  let sockPath = '';
  await withServer(root, services(), async (c, path) => {
    sockPath = path;
    t.is(statSync(path).mode & 0o777, 0o660);
    const r = await c.request('GET', '/v1/health');
    t.is(r.status, 200);
    t.deepEqual(r.body, { ok: true });
  });
  t.throws(() => statSync(sockPath));
});

test('a peer that is neither root nor in the group gets 403', async (t) => {
  await withServer({ pid: process.pid, uid: 1000, gid: 1000 }, services(), async (c) => {
    const r = await c.request('GET', '/v1/health');
    t.is(r.status, 403);
    t.is((r.body as { error: { code: string } }).error.code, 'FORBIDDEN');
  });
});

test('a member of the configured group may call', async (t) => {
  await withServer(
    { pid: process.pid, uid: 1000, gid: 4242 },
    services(),
    async (c) => {
      t.is((await c.request('GET', '/v1/health')).status, 200);
    },
    4242,
  );
});

test('errors: unknown endpoint 404, wrong method 405, malformed JSON 400, coded errors keep their status', async (t) => {
  await withServer(root, services(), async (c) => {
    const notFound = await c.request('GET', '/v1/nope');
    t.is(notFound.status, 404);
    t.is((await c.request('DELETE', '/v1/pool')).status, 405);
    const bad = await c.request('PUT', '/v1/functions/f', '{not json');
    t.is(bad.status, 400);
    t.regex((bad.body as { error: { message: string } }).error.message, /not valid JSON/);
    const missing = await c.request('GET', '/v1/functions/ghost');
    t.is(missing.status, 404);
    t.deepEqual(missing.body, { error: { code: 'FUNCTION_NOT_FOUND', message: 'no such function' } });
    const badName = await c.request('POST', '/v1/functions/bad%20name/invoke', '{}');
    t.is(badName.status, 400);
    t.is((badName.body as { error: { code: string } }).error.code, 'INVALID_NAME');
    const badEscape = await c.request('GET', '/v1/functions/a%zz');
    t.is(badEscape.status, 400, "a malformed percent-escape is the caller's error, not a 500");
    t.regex((badEscape.body as { error: { message: string } }).error.message, /percent-encoding/);
  });
});

test('bodies past the limits get 413: sync event over 6 MiB, async event over 256 KiB', async (t) => {
  await withServer(root, services(), async (c) => {
    const big = JSON.stringify({ s: 'x'.repeat(6 * 1024 * 1024) });
    t.is((await c.request('POST', '/v1/functions/f/invoke', big)).status, 413);
    const mid = JSON.stringify({ s: 'x'.repeat(300 * 1024) });
    t.is((await c.request('POST', '/v1/functions/f/events', mid)).status, 413);
    const ok = await c.request('POST', '/v1/functions/f/invoke', JSON.stringify({ a: 1 }));
    t.is(ok.status, 200);
    t.deepEqual(ok.body, { name: 'f', event: { a: 1 } });
  });
});

test('429 carries Retry-After', async (t) => {
  const svc = services({
    submitEvent: async () => {
      throw new HearthError('TOO_MANY_REQUESTS', 'queue is full', { details: { retryAfterS: 3 } });
    },
  });
  await withServer(root, svc, async (c) => {
    const r = await c.request('POST', '/v1/functions/f/events', '{}');
    t.is(r.status, 429);
    t.is(r.headers['retry-after'], '3');
  });
});

test('an internal error is 500 without leaking details', async (t) => {
  const svc = services({
    listFunctions: () => {
      throw new Error('secret path /var/lib/x');
    },
  });
  await withServer(root, svc, async (c) => {
    const r = await c.request('GET', '/v1/functions');
    t.is(r.status, 500);
    t.notRegex(JSON.stringify(r.body), /secret/);
  });
});

test('invocations and logs routes: ?last and ?since are checked at the edge (400), with defaults 20 and 1h', async (t) => {
  await withServer(root, services(), async (c) => {
    t.deepEqual((await c.request('GET', '/v1/functions/f/invocations')).body, { invocations: [{ name: 'f', last: 20 }] });
    t.deepEqual((await c.request('GET', '/v1/functions/f/invocations?last=1000')).body, { invocations: [{ name: 'f', last: 1000 }] });
    for (const bad of ['0', '1001', '2.5', 'x']) t.is((await c.request('GET', `/v1/functions/f/invocations?last=${bad}`)).status, 400, bad);
    t.deepEqual((await c.request('GET', '/v1/functions/f/logs')).body, { lines: [{ name: 'f', since: { ageMs: 3600_000 } }] });
    t.deepEqual((await c.request('GET', '/v1/functions/f/logs?since=10m')).body, { lines: [{ name: 'f', since: { ageMs: 600_000 } }] });
    t.deepEqual((await c.request('GET', '/v1/functions/f/logs?since=2026-12-02T03:00:00Z')).body, {
      lines: [{ name: 'f', since: { atMs: Date.UTC(2026, 11, 2, 3) } }],
    });
    for (const bad of ['yesterday', '10', '-5m', '2026-13-45T00:00:00Z']) {
      const r = await c.request('GET', `/v1/functions/f/logs?since=${encodeURIComponent(bad)}`);
      t.is(r.status, 400, bad);
    }
    t.is((await c.request('GET', '/v1/functions/Bad%20Name/logs')).status, 400);
  });
});

test('networks need root: a group member gets 403 naming the rule for network changes and network deploys, root passes', async (t) => {
  const member = { pid: process.pid, uid: 1000, gid: 4242 };
  const calls: string[] = [];
  const svc = services({
    putNetwork: async (name) => (calls.push(`putNetwork ${name}`), { record: { name }, created: true }),
    deleteNetwork: async (name) => void calls.push(`deleteNetwork ${name}`),
    putFunction: async (name) => (calls.push(`putFunction ${name}`), { record: { name } as FunctionRecord, created: true }),
    getFunction: (name) => {
      if (name === 'onnet') return { name, network: 'vpc1' } as FunctionRecord;
      if (name === 'plain') return { name } as FunctionRecord;
      throw new HearthError('FUNCTION_NOT_FOUND', 'no such function');
    },
  });
  await withServer(
    member,
    svc,
    async (c) => {
      const forbidden = async (method: string, path: string, body?: unknown): Promise<string> => {
        const r = await c.request(method, path, body === undefined ? undefined : JSON.stringify(body));
        t.is(r.status, 403, `${method} ${path}`);
        const e = (r.body as { error: { code: string; message: string } }).error;
        t.is(e.code, 'FORBIDDEN');
        return e.message;
      };
      t.regex(await forbidden('PUT', '/v1/networks/vpc1', {}), /creating or changing network 'vpc1' requires root; uid 1000 may not/);
      t.regex(await forbidden('DELETE', '/v1/networks/vpc1'), /deleting network 'vpc1' requires root/);
      t.regex(await forbidden('PUT', '/v1/functions/fresh', { runtime: 'node', network: 'vpc1' }), /deploying function 'fresh' with a network requires root/);
      t.regex(await forbidden('PUT', '/v1/functions/onnet', { runtime: 'node' }), /redeploying function 'onnet', which is on network 'vpc1' requires root/);
      t.deepEqual(calls, [], 'nothing reached the services');
      t.is((await c.request('PUT', '/v1/functions/plain', JSON.stringify({ runtime: 'node' }))).status, 201, 'no network involved: a member may deploy');
      t.is((await c.request('PUT', '/v1/functions/fresh', JSON.stringify({ runtime: 'node', network: null }))).status, 201);
      t.is((await c.request('GET', '/v1/networks')).status, 200, 'a member may list networks');
    },
    4242,
  );
  calls.length = 0;
  await withServer(root, svc, async (c) => {
    t.is((await c.request('PUT', '/v1/networks/vpc1', '{}')).status, 201);
    t.is((await c.request('PUT', '/v1/functions/onnet', JSON.stringify({ runtime: 'node', network: 'vpc2' }))).status, 201);
    t.is((await c.request('DELETE', '/v1/networks/vpc1')).status, 204);
  });
  t.deepEqual(calls, ['putNetwork vpc1', 'putFunction onnet', 'deleteNetwork vpc1']);
});
