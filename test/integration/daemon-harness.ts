/**
 * Starts a real daemon in this process on a temporary state dir, socket and cgroup name, for
 * integration tests (root only). `stop()` removes everything it made.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import { packDirectory } from '../../src/cli/pack.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/log.js';
import type { Runtime } from '../../src/runtimes/types.js';

export const isRoot = process.getuid?.() === 0;

export interface Harness {
  config: Config;
  daemon: Daemon;
  client: ControlClient;
  dir: string;
  deploy(name: string, dir: string, runtime: Runtime, handler: string, extra?: Record<string, unknown>): Promise<unknown>;
  /** `R`: the shape the caller expects the handler's result to have (not checked). */
  invoke<R = unknown>(name: string, event?: unknown): Promise<InvokeReply<R>>;
  stop(): Promise<void>;
}

export interface InvokeReply<R = unknown> {
  result: R;
  error: { type: string; message: string; stack?: string } | null;
  start: 'warm' | 'generic' | 'cold';
  initMs: number;
  durationMs: number;
  instance: string;
  logs: string;
}

export async function startHarness(over: Record<string, unknown> = {}, opts: { policyClock?: Clock } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-it-'));
  const config = loadConfig({
    overrides: {
      socket: join(dir, 'hearth.sock'),
      stateDir: join(dir, 'state'),
      cgroupName: `hearth-test-${randomBytes(3).toString('hex')}`,
      logLevel: process.env['HEARTH_TEST_LOG'] ?? 'silent',
      generic: { node: 1, python: 1 },
      ...over,
    },
  });
  const daemon = new Daemon(config, createLogger(config.logLevel), systemClock, opts.policyClock ?? systemClock);
  try {
    await daemon.start();
  } catch (err) {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const client = new ControlClient(config.socket);
  return {
    config,
    daemon,
    client,
    dir,
    async deploy(name, codeDir, runtime, handler, extra = {}) {
      const code = await packDirectory(codeDir);
      return client.call('PUT', `/v1/functions/${name}`, { runtime, handler, code: code.toString('base64'), ...extra });
    },
    invoke<R>(name: string, event: unknown = {}) {
      return client.call<InvokeReply<R>>('POST', `/v1/functions/${name}/invoke`, event);
    },
    async stop() {
      client.close();
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** cgroup directories left under any controller for this name (should be none after stop). */
export function leftoverCgroups(name: string): string[] {
  const roots = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup'];
  return roots.map((r) => join(r, name)).filter((p) => existsSync(p));
}

export const fixture = (name: string): string => join(__dirname, '..', '..', '..', 'test', 'integration', 'fixtures', name);

/** Polls fn every 50 ms until it returns a value; throws naming `what` after ms. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
