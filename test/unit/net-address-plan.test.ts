import test from 'ava';
import { HearthError } from '../../src/errors.js';
import { addressPrefixes, allocateInnerSubnet, InstanceAddresses } from '../../src/net/address-plan.js';
import { formatIp, formatPrefix, parseCidr, parseIp } from '../../src/net/ipv4.js';
import { buildRuleset } from '../../src/net/ruleset.js';
import { validateSpec } from '../../src/net/spec.js';

const p = (s: string) => parseCidr(s, { strict: true })!.prefix;
const pool = { pool: '100.96.0.0/12', subnetLen: 22 };

test('inner subnets skip routes, host addresses and other gateways', (t) => {
  t.is(formatPrefix(allocateInnerSubnet(pool, [])), '100.96.0.0/22');
  t.is(formatPrefix(allocateInnerSubnet(pool, [p('100.96.0.0/22')])), '100.96.4.0/22');
  t.is(formatPrefix(allocateInnerSubnet(pool, [p('100.96.0.0/21'), p('100.96.9.7/32')])), '100.96.12.0/22');
  // A default route does not collide: the inner subnet is more specific inside the gateway.
  t.is(formatPrefix(allocateInnerSubnet(pool, [p('0.0.0.0/0')])), '100.96.0.0/22');
  const host = addressPrefixes([{ address: parseIp('100.96.1.5')!, prefixLen: 16 }]);
  t.is(formatPrefix(allocateInnerSubnet(pool, host)), '100.97.0.0/22');
});

test('a pool covered by a route is refused with a reason', (t) => {
  const e = t.throws(() => allocateInnerSubnet(pool, [p('100.64.0.0/10')]), { instanceOf: HearthError });
  t.is(e?.code, 'BAD_REQUEST');
  t.regex(e?.message ?? '', /no free inner subnet/);
});

test('instance addresses: 2..last-1, reused as late as possible', (t) => {
  const a = new InstanceAddresses(p('100.96.0.0/29'));
  t.is(formatIp(a.gatewayAddress), '100.96.0.1');
  t.is(a.capacity, 5);
  const got = [a.take(), a.take(), a.take(), a.take(), a.take()];
  t.deepEqual(got, [2, 3, 4, 5, 6]);
  t.is(a.take(), undefined);
  a.give(3);
  a.give(3); // idempotent
  a.give(5);
  t.is(a.take(), 3);
  t.is(a.take(), 5);
  t.is(a.take(), undefined);
  t.is(a.used, 5);
});

test('ruleset: only allowed destinations, PAT to the outer address, refusal for the rest', (t) => {
  const v = validateSpec({ attach: { bridge: 'br0' }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'], allow: ['10.77.0.10/32:7000', '10.77.0.64/26'] });
  const text = buildRuleset({
    innerIf: 'inner',
    outerIf: 'outer',
    innerSubnet: p('100.96.0.0/22'),
    outerAddress: v.address,
    allow: v.allow,
    deny: [parseIp('192.0.2.2')!],
  });
  t.true(text.startsWith('flush ruleset\ntable inet hearth {'));
  t.regex(text, /ip daddr 10\.77\.0\.10\/32 meta l4proto \{ tcp, udp \} th dport 7000 accept/);
  t.regex(text, /ip daddr 10\.77\.0\.64\/26 accept/);
  t.regex(text, /snat ip to 10\.77\.0\.2/);
  t.regex(text, /elements = \{ 192\.0\.2\.2 \}/);
  // The host check comes before any accept.
  t.true(text.indexOf('@host_addresses') < text.indexOf('accept\n    iifname "inner" oifname'));
  t.regex(text, /chain forward_filter \{\n {4}type filter hook forward priority filter; policy drop;/);
  t.regex(text, /chain input_filter \{\n {4}type filter hook input priority filter; policy drop;/);
  t.notRegex(text, /\bfwd\b/);
});
