/**
 * scripts/lab-network.sh (the README's stand-in private network): `up` makes a namespace with a bridge
 * and a host address on it, refuses a namespace that exists, and `down` leaves nothing behind.
 * Uses its own namespace name so that it never meets a user's `lab`.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const SCRIPT = join(__dirname, '../../../scripts/lab-network.sh');
const NS = `hearth-labtest-${process.pid}`;
const env = { ...process.env, LAB_NETNS: NS, LAB_BRIDGE: 'br0', LAB_HOST: '10.77.0.10/24' };
const root = process.getuid?.() === 0;

const lab = (cmd: string) => spawnSync('bash', [SCRIPT, cmd], { env, encoding: 'utf8' });

test.after.always(() => {
  if (root && existsSync(`/run/netns/${NS}`)) lab('down');
});

(root ? test : test.skip)('lab-network.sh up makes namespace, bridge and host address; down removes them', (t) => {
  const up = lab('up');
  t.is(up.status, 0, up.stderr);
  const link = JSON.parse(execFileSync('ip', ['-j', '-n', NS, 'addr', 'show', 'dev', 'br0'], { encoding: 'utf8' })) as Array<{
    flags: string[];
    linkinfo?: { info_kind?: string };
    addr_info: Array<{ family: string; local: string; prefixlen: number }>;
  }>;
  t.true(link[0].flags.includes('UP'));
  t.deepEqual(
    link[0].addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    ['10.77.0.10/24'],
  );
  const kind = JSON.parse(execFileSync('ip', ['-j', '-d', '-n', NS, 'link', 'show', 'dev', 'br0'], { encoding: 'utf8' })) as Array<{
    linkinfo?: { info_kind?: string };
  }>;
  t.is(kind[0].linkinfo?.info_kind, 'bridge');

  // A second `up` refuses and leaves the first one working.
  const again = lab('up');
  t.is(again.status, 1);
  t.regex(again.stderr, /already exists/);
  t.true(existsSync(`/run/netns/${NS}`));

  const down = lab('down');
  t.is(down.status, 0, down.stderr);
  t.false(existsSync(`/run/netns/${NS}`));
  t.false(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(NS));
  t.is(lab('down').status, 0);
});
