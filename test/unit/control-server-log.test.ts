/** The control server's log lines carry each field once (pino's base already has the daemon's pid). */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { ControlClient } from '../../src/control/client.js';
import { buildRoutes } from '../../src/control/routes.js';
import { ControlServer } from '../../src/control/server.js';

test('a refused peer is logged with its own uid, gid and pid fields, and the line has one "pid"', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  // As src/log.ts makes the daemon's logger: the pid is in every line's base.
  const log = pino({ level: 'info', base: { pid: process.pid } }, sink);
  const dir = mkdtempSync(join(tmpdir(), 'hearth-ctl-log-'));
  const path = join(dir, 'h.sock');
  const server = new ControlServer({ socketPath: path, routes: buildRoutes({} as never), peerCredentials: () => ({ pid: 4242, uid: 1000, gid: 1000 }), log });
  await server.start();
  const client = new ControlClient(path);
  try {
    const r = await client.request('GET', '/v1/health');
    t.is(r.status, 403);
    const line = lines.find((l) => l.includes('peer not allowed'));
    t.truthy(line);
    t.is(line!.match(/"pid":/g)?.length, 1);
    const rec = JSON.parse(line!) as Record<string, unknown>;
    t.is(rec['pid'], process.pid);
    t.is(rec['peerPid'], 4242);
    t.is(rec['peerUid'], 1000);
  } finally {
    client.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
