/**
 * The metrics listener: read-only (GET and HEAD; anything else 405 with Allow), the metrics text,
 * the dashboard's page and assets (uPlot served from node_modules, nothing from elsewhere), its
 * JSON; and `--metrics-listen` parsing (loopback unless told).
 */
import test from 'ava';
import { request } from 'node:http';
import { parseListenAddress, loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { dashboardData } from '../../src/observe/dashboard-data.js';
import { MetricsListener } from '../../src/observe/listener.js';
import { HearthMetrics } from '../../src/observe/metrics.js';
import { RecentInvocations } from '../../src/observe/recent.js';
import { FakeState, instance, rec } from './observe-fixture.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, method: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' || method === 'PUT' ? 'x' : undefined);
  });
}

async function listening(t: import('ava').ExecutionContext) {
  const state = new FakeState();
  state.fns.set('f', 'node');
  state.insts = [instance({ function: 'f', state: 'idle' }), instance({ id: 'g1', state: 'generic' })];
  const metrics = new HearthMetrics(state);
  const recent = new RecentInvocations();
  const now = Date.now();
  const l = new MetricsListener({
    host: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    routes: {
      metrics: async () => ({ contentType: metrics.contentType, body: await metrics.render() }),
      dashboard: () => dashboardData(state, recent, now),
    },
  });
  await l.start();
  t.teardown(() => l.stop());
  return { l, port: l.address().port, metrics, recent, state, now };
}

test('GET /metrics is the Prometheus text; HEAD has the headers and no body', async (t) => {
  const { port, metrics } = await listening(t);
  metrics.onInvocation(rec({ function: 'f' }));
  const r = await call(port, 'GET', '/metrics');
  t.is(r.status, 200);
  t.regex(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  t.regex(r.body, /hearth_invocations_total\{function="f",start="warm",outcome="ok",trigger="sync"\} 1/);
  const h = await call(port, 'HEAD', '/metrics');
  t.is(h.status, 200);
  t.is(h.body, '');
  t.true(Number(h.headers['content-length']) > 0);
});

test('the listener is read-only: POST, PUT, DELETE are 405 with Allow: GET, HEAD; unknown paths 404', async (t) => {
  const { port } = await listening(t);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    for (const path of ['/metrics', '/', '/api/dashboard']) {
      const r = await call(port, method, path);
      t.is(r.status, 405, `${method} ${path}`);
      t.is(r.headers['allow'], 'GET, HEAD');
    }
  }
  t.is((await call(port, 'GET', '/v1/functions')).status, 404);
  t.is((await call(port, 'GET', '/../package.json')).status, 404);
});

test('the dashboard page and every asset it loads come from the listener itself', async (t) => {
  const { port } = await listening(t);
  const page = await call(port, 'GET', '/');
  t.is(page.status, 200);
  t.regex(String(page.headers['content-type']), /text\/html/);
  const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  t.deepEqual(refs.sort(), ['/dashboard.css', '/dashboard.js', '/uplot.iife.min.js', '/uplot.min.css']);
  for (const ref of refs) {
    const r = await call(port, 'GET', ref);
    t.is(r.status, 200, ref);
    t.true(r.body.length > 100, ref);
  }
  t.regex((await call(port, 'GET', '/uplot.iife.min.js')).body, /uPlot/);
  t.notRegex((await call(port, 'GET', '/dashboard.js')).body, /https?:\/\//, 'no request leaves the daemon');
});

test('GET /api/dashboard: per-function rate, start split, latency, errors, instances, decisions, failures, series', async (t) => {
  const { port, recent, now } = await listening(t);
  recent.add(rec({ function: 'f', start: 'cold', durationMs: 10, endedAt: now - 2000 }));
  recent.add(rec({ function: 'f', start: 'warm', durationMs: 1, endedAt: now - 1500 }));
  recent.add(rec({ function: 'f', start: 'warm', durationMs: 2, endedAt: now - 1400, outcome: 'error', error: { type: 'TypeError', message: 'bad' } }));
  recent.add(rec({ function: 'f', start: 'warm', durationMs: 2, endedAt: now - 120_000 }));
  const d = JSON.parse((await call(port, 'GET', '/api/dashboard')).body);
  t.is(d.functions.length, 1);
  t.like(d.functions[0], {
    name: 'f',
    runtime: 'node',
    perMinute: 3,
    starts: { cold: 1, generic: 0, warm: 3 },
    p50Ms: 2,
    p99Ms: 10,
    errors: 1,
    total: 4,
    instances: { idle: 1, busy: 0 },
    decision: { keepAliveS: 600, prewarmAt: null, targetInstances: 1 },
  });
  t.deepEqual(d.generic, [{ runtime: 'node', network: null, count: 1 }]);
  t.like(d.failures[0], { function: 'f', outcome: 'error', error: 'TypeError: bad' });
  t.is(d.series.t.length, 300);
  t.is(
    d.series.warm.reduce((a: number, b: number) => a + b, 0),
    3,
    'the series covers the last 5 minutes',
  );
});

test('--metrics-listen: HOST:PORT, [v6]:PORT, and PORT alone on loopback; bad values are a CONFIG error', (t) => {
  t.deepEqual(parseListenAddress('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 });
  t.deepEqual(parseListenAddress('[::1]:9464'), { host: '::1', port: 9464 });
  t.deepEqual(parseListenAddress('9464'), { host: '127.0.0.1', port: 9464 });
  t.deepEqual(parseListenAddress(':9464'), { host: '127.0.0.1', port: 9464 });
  for (const bad of ['', 'host:', 'host:70000', 'a b:1', 'http://x:1']) t.is(typeof parseListenAddress(bad), 'string', bad);
  t.deepEqual(loadConfig({ overrides: { stateDir: '/tmp/x', metricsListen: '9100' } }).metricsListen, { host: '127.0.0.1', port: 9100 });
  t.is(loadConfig({ overrides: { stateDir: '/tmp/x' } }).metricsListen, undefined);
  t.throws(() => loadConfig({ overrides: { stateDir: '/tmp/x', metricsListen: 'nope' } }), { message: /metricsListen: expected HOST:PORT/ });
});
