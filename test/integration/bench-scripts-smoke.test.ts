/**
 * One tiny iteration of each stand-alone benchmark script, so they cannot rot. No timing is
 * asserted: only that each runs to the end, reports what it should, and leaves nothing behind.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = (name: string) => join(__dirname, '..', '..', 'scripts', `${name}.js`);
const isRoot = process.getuid?.() === 0;
const it = isRoot ? test.serial : test.skip;
if (!isRoot) test('benchmark script smoke tests need root (they start daemons and namespaces)', (t) => t.pass());

let dir = '';
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-bsmoke-'));
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('bench: --docs on a smoke run is refused before anything starts; --help documents the headline', async (t) => {
  const out = join(dir, 'refused');
  const err = await t.throwsAsync(run(process.execPath, [script('bench'), '--smoke', '--docs', '--out', out], { timeout: 60_000 }));
  t.is((err as { code?: number }).code, 2);
  t.regex((err as { stderr?: string }).stderr ?? '', /--docs needs a --quick or --full run of every suite/);
  t.false(existsSync(out));
  const { stdout } = await run(process.execPath, [script('bench'), '--help'], { timeout: 60_000 });
  t.regex(stdout, /"headline"/);
  t.regex(stdout, /--docs\|--no-docs/);
});

it('bench-events: accept rates, queue-to-start and drain', async (t) => {
  const out = join(dir, 'events.json');
  await run(process.execPath, [script('bench-events'), '--events', '1000', '--json', out], { timeout: 120_000 });
  const r = JSON.parse(readFileSync(out, 'utf8'));
  t.is(r.accept.length, 4);
  for (const a of r.accept) t.true(a.eventsPerS > 0 && a.events > 0, a.label);
  t.true(r.queueToStartMs.submitToSucceededClientSide.n === 300);
  t.true(r.drain.eventsPerS > 0);
});

it('bench-net-start: generic starts with and without a network', async (t) => {
  if (!existsSync('/usr/sbin/nft')) return t.pass('skipped: nft missing (scripts/install.sh installs nftables)');
  const out = join(dir, 'net-start.json');
  await run(process.execPath, [script('bench-net-start'), '--samples', '2', '--json', out], { timeout: 120_000 });
  const r = JSON.parse(readFileSync(out, 'utf8'));
  t.is(r.generic.none.n, 2);
  t.is(r.generic.network.n, 2);
  t.is(typeof r.addedMedianMs, 'number');
});

it('bench-net: the gateway on its own', async (t) => {
  if (!existsSync('/usr/sbin/nft')) return t.pass('skipped: nft missing (scripts/install.sh installs nftables)');
  const { stdout } = await run(process.execPath, [script('bench-net'), '--instances', '4', '--rtt', '20'], { timeout: 180_000 });
  t.regex(stdout, /instances per gateway: (\d+) held, \1 connected, 0 failed/);
  t.regex(stdout, /round-trip overhead of the gateway/);
});

it('bench-queue: the queue on its own', async (t) => {
  const { stdout } = await run(process.execPath, [script('bench-queue'), '--runs', '1', '--events', '200', '--dir', dir], { timeout: 120_000 });
  t.regex(stdout, /accept, batches of 1000\s+median\s+\d+ events\/s/);
  t.regex(stdout, /drain/);
});

it('bench-placement: sandboxed and bare shims pinned to one CPU', async (t) => {
  const { stdout } = await run(process.execPath, [script('bench-placement'), '--cpu', '0', '--blocks', '1'], { timeout: 120_000 });
  for (const k of ['zygote, sandboxed', 'standalone, sandboxed', 'bare shim']) t.regex(stdout, new RegExp(`\\| ${k} \\| 50 \\| \\d+\\.\\d+ \\|`));
});

it('bench-node-boot: boot, idle memory and first invoke of the plain and --no-lazy variants', async (t) => {
  const out = join(dir, 'node-boot.json');
  const { stdout } = await run(
    process.execPath,
    [script('bench-node-boot'), '--runs', '1', '--warm', '1', '--invokes', '2', '--only', 'plain,no-lazy', '--json', out],
    { timeout: 180_000 },
  );
  t.regex(stdout, /\| plain \|/);
  t.regex(stdout, /\| no-lazy \| `--no-lazy` \|/);
  t.true(existsSync(out));
});

it('bench-init: spawn -> ready with and without the PID 1 reaper, Node and Python', async (t) => {
  const out = join(dir, 'init.json');
  const { stdout } = await run(process.execPath, [script('bench-init'), '--runs', '1', '--json', out], { timeout: 120_000 });
  for (const v of ['node no reaper', 'node reaper', 'python no reaper', 'python reaper']) t.regex(stdout, new RegExp(`\\| ${v} \\| 1 \\| \\d+\\.\\d+ \\|`));
  const rows = JSON.parse(readFileSync(out, 'utf8')) as Array<{ name: string; n: number; cpuMedian: number }>;
  t.is(rows.length, 4);
  for (const r of rows) t.true(r.n === 1 && r.cpuMedian > 0, r.name);
});

it('bench-userns: new instance and generic start with and without the user namespace, Node and Python', async (t) => {
  const out = join(dir, 'userns.json');
  const { stdout } = await run(process.execPath, [script('bench-userns'), '--runs', '1', '--json', out], { timeout: 120_000 });
  for (const v of ['node no userns', 'node userns', 'python no userns', 'python userns']) t.regex(stdout, new RegExp(`\\| ${v} \\| 1 \\| \\d+\\.\\d+ \\|`));
  t.regex(stdout, /load average at the end: /);
  const rows = JSON.parse(readFileSync(out, 'utf8')) as Array<{ name: string; n: number; cpuMedian: number; mapMedian: number }>;
  t.is(rows.length, 4);
  for (const r of rows) t.true(r.n === 1 && r.cpuMedian > 0 && r.mapMedian >= 0, r.name);
});
