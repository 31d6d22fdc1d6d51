/** How the CLI prints API answers as a table (src/cli/format.ts). */
import test from 'ava';
import { formatTable, networkRows } from '../../src/cli/format.js';

test('table cells: missing values print as -, lists comma-joined, objects as JSON (never [object Object])', (t) => {
  const out = formatTable([{ name: 'fn', tags: ['a', 'b'], limits: { memoryMb: 64 }, note: null, on: true }], ['name', 'tags', 'limits', 'note', 'on']);
  const [head, row] = out.trimEnd().split('\n');
  t.deepEqual(head.split(/\s{2,}/), ['NAME', 'TAGS', 'LIMITS', 'NOTE', 'ON']);
  t.deepEqual(row.split(/\s{2,}/), ['fn', 'a,b', '{"memoryMb":64}', '-', 'true']);
});

test('network rows: the bridge column names the netns of an attached bridge', (t) => {
  const rows = networkRows([
    { name: 'a', spec: { address: '10.0.0.0/24', attach: { netns: 'ns1', bridge: 'br0' } } },
    { name: 'b', spec: { attach: { bridge: 'br1' } } },
  ]);
  t.is(rows[0]['bridge'], 'ns1/br0');
  t.is(rows[1]['bridge'], 'br1');
});
