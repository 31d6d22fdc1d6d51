/**
 * A user namespace per function (docs/sandbox.md, Identity), through a real daemon (root): a
 * handler reads its own uid and /proc/self/uid_map from inside (Node, Python, a custom runtime;
 * generic and new instances), two functions get different host uids from the range, never 0; the
 * allocation is in the state dir, survives a restart, is freed on delete and reused only after;
 * a bad --uid-range stops the daemon with a clear message.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config.js';
import { ControlClient } from '../../src/control/client.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/log.js';
import { packDirectory } from '../../src/cli/pack.js';
import { fixture, isRoot, leftoverCgroups, type InvokeReply } from './daemon-harness.js';

const t0 = isRoot ? test.serial : test.skip;
if (!isRoot) test('user namespace tests need root (they build namespaces and cgroups)', (t) => t.pass());

const RANGE_START = 300_000 + Math.floor(Math.random() * 1000) * 100;
const CODE = fixture('identity');
/** CAP_SETGID (6), CAP_SETUID (7), CAP_SETPCAP (8): what an instance holds in its own user namespace until specialisation. */
const KEPT_CAPS = '00000000000001c0';
const NO_CAPS = '0000000000000000';

interface Identity {
  uid: number;
  gid: number;
  euid: number;
  uidMap: string;
  gidMap: string;
  setgroups: string;
  capEff: string;
  capBnd: string;
  noNewPrivs: string;
  tmpFileUid: number;
  codeOwner: number;
  fdsVisible?: boolean;
}

/** A daemon on a state dir that outlives it (restarts), cleaned up by `dispose`. */
class TestDaemon {
  daemon!: Daemon;
  client!: ControlClient;
  constructor(
    readonly dir: string,
    readonly over: Record<string, unknown>,
    readonly cgroupName = `hearth-test-${randomBytes(3).toString('hex')}`,
  ) {}

  get stateDir(): string {
    return join(this.dir, 'state');
  }

  async start(): Promise<void> {
    const config = loadConfig({
      overrides: {
        socket: join(this.dir, 'hearth.sock'),
        stateDir: this.stateDir,
        cgroupName: this.cgroupName,
        logLevel: process.env['HEARTH_TEST_LOG'] ?? 'silent',
        ...this.over,
      },
    });
    this.daemon = new Daemon(config, createLogger(config.logLevel));
    try {
      await this.daemon.start();
    } catch (err) {
      await this.daemon.stop();
      throw err;
    }
    this.client = new ControlClient(config.socket);
  }

  async stop(): Promise<void> {
    this.client?.close();
    await this.daemon?.stop();
  }

  async deploy(name: string, runtime: string, handler: string, extra: Record<string, unknown> = {}): Promise<void> {
    const code = await packDirectory(CODE);
    await this.client.call('PUT', `/v1/functions/${name}`, { runtime, handler, code: code.toString('base64'), timeoutMs: 10_000, ...extra });
  }

  invoke(name: string): Promise<InvokeReply<Identity>> {
    return this.client.call<InvokeReply<Identity>>('POST', `/v1/functions/${name}/invoke`, {});
  }

  uids(): Record<string, number> {
    return (JSON.parse(readFileSync(join(this.stateDir, 'uids.json'), 'utf8')) as { functions: Record<string, number> }).functions;
  }

  /** uids.json once `ready` holds for it (the daemon writes it behind the change), or as it is after 20 s. */
  async settledUids(ready: (u: Record<string, number>) => boolean): Promise<Record<string, number>> {
    for (let i = 0; i < 400; i++) {
      try {
        const u = this.uids();
        if (ready(u)) return u;
      } catch {
        // not written yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.uids();
  }
}

/** The host id that 0 inside maps to, from a one-line uid_map/gid_map ("0 X 1"). */
function mappedRoot(map: string): number {
  const lines = map.trim().split('\n');
  const [inside, outside, count] = lines[0].trim().split(/\s+/).map(Number);
  if (lines.length !== 1 || inside !== 0 || count !== 1) throw new Error(`unexpected map ${JSON.stringify(map)}`);
  return outside;
}

let scratch: string;
let d: TestDaemon;

test.before(async () => {
  if (!isRoot) return;
  scratch = mkdtempSync(join(tmpdir(), 'hearth-userns-'));
  d = new TestDaemon(join(scratch, 'main'), { generic: { node: 1, python: 1, provided: 0 }, uidRange: `${RANGE_START}:1000` });
  await d.start();
  for (const fn of ['a', 'b']) {
    await d.deploy(`node-${fn}`, 'node', 'index.identity', { concurrency: 2 });
    await d.deploy(`python-${fn}`, 'python', 'app.identity', { concurrency: 2 });
    await d.deploy(`custom-${fn}`, 'provided', '');
  }
});

test.after.always(async () => {
  if (!isRoot) return;
  await d?.stop();
  rmSync(scratch, { recursive: true, force: true });
  if (d) {
    const left = leftoverCgroups(d.cgroupName);
    if (left.length) throw new Error(`cgroups left after stop: ${left.join(', ')}`);
  }
});

const seen = new Map<string, number>();

for (const runtime of ['node', 'python', 'custom'] as const) {
  t0(`${runtime}: root inside maps to a host uid of the function alone (from the range, never 0); two functions differ`, async (t) => {
    t.timeout(120_000);
    const hostUids: number[] = [];
    for (const fn of ['a', 'b']) {
      const name = `${runtime}-${fn}`;
      // Two at once on a pool of one generic instance: a generic start and (mostly) a new instance.
      const replies = await Promise.all([d.invoke(name), d.invoke(name)]);
      t.log(name, replies.map((r) => r.start).join(', '));
      const mine = new Set<number>();
      for (const r of replies) {
        t.is(r.error, null, JSON.stringify(r.error));
        const id = r.result;
        t.is(id.uid, 0, 'root inside');
        t.is(id.euid, 0);
        t.is(id.gid, 0);
        const uid = mappedRoot(id.uidMap);
        t.is(mappedRoot(id.gidMap), uid, 'gid = uid on the host');
        t.not(uid, 0, 'never host root');
        t.true(uid > RANGE_START && uid < RANGE_START + 1000, `${uid} is a function id of the range (not the pool id ${RANGE_START})`);
        t.is(id.setgroups, 'deny');
        t.is(id.noNewPrivs, '1');
        t.is(id.tmpFileUid, 0, 'its /tmp files are its own');
        t.is(id.codeOwner, 65534, 'the code (host root) shows as the overflow uid');
        if (runtime === 'node') {
          // Node cannot capset: the three capabilities of its own user namespace stay (one id mapped: they allow nothing).
          t.is(id.capEff, KEPT_CAPS);
          t.is(id.capBnd, KEPT_CAPS);
        } else {
          t.is(id.capEff, NO_CAPS);
          t.is(id.capBnd, NO_CAPS);
          t.true(id.fdsVisible, 'dumpable again after the uid change: /proc/self/fd is its own');
        }
        mine.add(uid);
      }
      t.is(mine.size, 1, 'all instances of one function share its uid');
      const uid = [...mine][0];
      t.is((await d.settledUids((u) => name in u))[name], uid, 'recorded in <stateDir>/uids.json');
      hostUids.push(uid);
      seen.set(name, uid);
    }
    t.not(hostUids[0], hostUids[1], 'two functions, two host uids');
  });
}

t0('every function has its own uid; the allocation survives a daemon restart', async (t) => {
  t.timeout(120_000);
  const uids = [...seen.values()];
  t.is(new Set(uids).size, uids.length, `no uid shared: ${JSON.stringify(Object.fromEntries(seen))}`);
  await d.stop(); // writes what is pending
  const before = d.uids();
  await d.start();
  t.deepEqual(d.uids(), before);
  const again = await d.invoke('python-a');
  t.is(again.error, null, JSON.stringify(again.error));
  t.is(mappedRoot(again.result.uidMap), seen.get('python-a') ?? -1, 'the same uid after the restart');
});

t0('a deleted function frees its uid; it is handed out again only after; a full range is a clear error', async (t) => {
  t.timeout(120_000);
  const small = new TestDaemon(join(scratch, 'small'), { generic: { node: 0, python: 1, provided: 0 }, uidRange: `${RANGE_START + 1000}:3` });
  await small.start();
  try {
    for (const fn of ['f1', 'f2', 'f3']) await small.deploy(fn, 'python', 'app.identity');
    const r1 = await small.invoke('f1');
    const r2 = await small.invoke('f2');
    const u1 = mappedRoot(r1.result.uidMap);
    const u2 = mappedRoot(r2.result.uidMap);
    t.deepEqual([u1, u2].sort(), [RANGE_START + 1001, RANGE_START + 1002]);
    const full = await small.client.request('POST', '/v1/functions/f3/invoke', {});
    t.is(full.status, 503, JSON.stringify(full.body));
    t.regex(JSON.stringify(full.body), /no host uid left for f3: all 2 of --uid-range/);
    t.deepEqual(await small.settledUids((u) => 'f1' in u && 'f2' in u), { f1: u1, f2: u2 }, 'no uid for f3');
    await small.client.call('DELETE', '/v1/functions/f1');
    t.deepEqual(await small.settledUids((u) => !('f1' in u)), { f2: u2 } as Record<string, number>, 'freed on delete');
    const r3 = await small.invoke('f3');
    t.is(r3.error, null, JSON.stringify(r3.error));
    t.is(mappedRoot(r3.result.uidMap), u1, "f3 gets f1's uid, now free");
    t.deepEqual(await small.settledUids((u) => 'f3' in u), { f2: u2, f3: u1 });
  } finally {
    await small.stop();
  }
});

t0('a bad --uid-range stops the daemon with a clear message, before anything starts', (t) => {
  const main = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
  const cases: Array<[string, RegExp]> = [
    ['abc', /uidRange: expected START:COUNT \(e\.g\. 200000:65536\), got 'abc'/],
    ['0:65536', /uidRange: the range must not start at 0 \(host root\)/],
    ['200000:1', /uidRange: COUNT must be at least 2/],
    ['4294967000:1000', /uidRange: the range ends past 4294967294/],
    ['1:100', /uidRange 1:100 holds id 1 of '\w+' in \/etc\/(passwd|group): choose a range no host user or group uses/],
    // The main daemon of this file holds RANGE_START:1000 while this runs.
    [`${RANGE_START + 999}:5`, new RegExp(`uidRange ${RANGE_START + 999}:5 overlaps ${RANGE_START}:1000, claimed by another Hearth daemon on this host`)],
  ];
  for (const [range, want] of cases) {
    const dir = mkdtempSync(join(scratch, 'bad-'));
    const r = spawnSync(
      process.execPath,
      [main, 'daemon', '--uid-range', range, '--state-dir', join(dir, 'state'), '--socket', join(dir, 's.sock'), '--log-level', 'silent'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    t.is(r.status, 1, `${range}: ${r.stderr}`);
    t.regex(r.stderr, want, range);
  }
});
