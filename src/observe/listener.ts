/**
 * The metrics listener (`--metrics-listen HOST:PORT`): read-only HTTP on its own port.
 *
 *   GET /metrics          Prometheus text format (prom-client)
 *   GET /                 the dashboard page; its script, styles and uPlot from the same listener
 *   GET /api/dashboard    the dashboard's JSON (dashboard-data.ts)
 *
 * GET and HEAD only: any other method is 405 with `Allow: GET, HEAD`; unknown paths are 404.
 * Nothing here changes the daemon. It binds where it is told (the config's default host is
 * loopback).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';

export interface ListenerRoutes {
  metrics(): Promise<{ contentType: string; body: string | Buffer | Buffer[] }>;
  dashboard(): Promise<unknown>;
}

interface Asset {
  type: string;
  body: Buffer;
}

/** The page's files: ours (src/observe/dashboard) and uPlot's dist, read once at start. */
function loadAssets(): Map<string, Asset> {
  const ours = findDir(['../../../src/observe/dashboard', '../../src/observe/dashboard', 'dashboard']);
  const uplot = join(require.resolve('uplot'), '..');
  const read = (p: string, type: string): Asset => ({ type, body: readFileSync(p) });
  return new Map([
    ['/', read(join(ours, 'index.html'), 'text/html; charset=utf-8')],
    ['/dashboard.js', read(join(ours, 'dashboard.js'), 'text/javascript; charset=utf-8')],
    ['/dashboard.css', read(join(ours, 'dashboard.css'), 'text/css; charset=utf-8')],
    ['/uplot.iife.min.js', read(join(uplot, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
    ['/uplot.min.css', read(join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8')],
  ]);
}

function findDir(candidates: string[]): string {
  for (const c of candidates) {
    const dir = join(__dirname, c);
    try {
      readFileSync(join(dir, 'index.html'));
      return dir;
    } catch {
      // next
    }
  }
  throw new HearthError('CONFIG', `dashboard files not found (looked in ${candidates.map((c) => join(__dirname, c)).join(', ')})`);
}

export class MetricsListener {
  private server: Server | undefined;
  private assets = new Map<string, Asset>();

  constructor(private readonly opts: { host: string; port: number; routes: ListenerRoutes; log: Logger }) {}

  async start(): Promise<void> {
    this.assets = loadAssets();
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new HearthError('CONFIG', `cannot listen for metrics on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`, { cause: err })),
      );
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    server.on('error', (err) => this.opts.log.error({ err }, 'metrics listener failed'));
    this.server = server;
  }

  /** Where it listens (the port chosen when 0 was asked for). */
  address(): { host: string; port: number } {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) throw new Error('metrics listener is not started');
    return { host: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const head = req.method === 'HEAD';
    const send = (status: number, type: string, body: string | Buffer | Buffer[], extra: Record<string, string> = {}): void => {
      const length = Array.isArray(body) ? body.reduce((n, b) => n + b.length, 0) : Buffer.byteLength(body);
      res.writeHead(status, { 'content-type': type, 'content-length': String(length), 'cache-control': 'no-store', ...extra });
      if (head) res.end();
      else if (Array.isArray(body)) {
        res.cork();
        for (const b of body) res.write(b);
        res.end();
      } else res.end(body);
    };
    if (req.method !== 'GET' && !head) {
      send(405, 'text/plain; charset=utf-8', 'method not allowed: this listener is read-only (GET, HEAD)\n', { allow: 'GET, HEAD' });
      req.resume();
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/metrics') {
        const m = await this.opts.routes.metrics();
        send(200, m.contentType, m.body);
      } else if (path === '/api/dashboard') {
        send(200, 'application/json', JSON.stringify(await this.opts.routes.dashboard()));
      } else {
        const a = this.assets.get(path);
        if (a) send(200, a.type, a.body);
        else send(404, 'text/plain; charset=utf-8', `not found: ${path}\n`);
      }
    } catch (err) {
      this.opts.log.error({ err, path }, 'metrics listener request failed');
      if (!res.headersSent) send(500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  }
}
