import test from 'ava';
import { HearthError } from '../../src/errors.js';
import { containsPrefix, formatIp, overlaps, parseCidr, parseIp } from '../../src/net/ipv4.js';
import { parseAllow, specForHost, validateNetworkName, validateSpec, type NetworkSpec } from '../../src/net/spec.js';

const base: NetworkSpec = { attach: { bridge: 'br0' }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'] };

test('ipv4 parsing is strict', (t) => {
  t.is(parseIp('10.0.0.1'), 0x0a000001);
  t.is(formatIp(0xffffffff), '255.255.255.255');
  for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.-1', '']) t.is(parseIp(bad), undefined, bad);
  t.deepEqual(parseCidr('10.0.0.0/8', { strict: true })?.prefix, { base: 0x0a000000, len: 8 });
  t.is(parseCidr('10.0.0.1/8', { strict: true }), undefined);
  t.is(parseCidr('10.0.0.1/33', { strict: false }), undefined);
  t.is(parseCidr('10.0.0.1/08', { strict: false }), undefined);
  t.deepEqual(parseCidr('0.0.0.0/0', { strict: true })?.prefix, { base: 0, len: 0 });
});

test('prefix containment and overlap', (t) => {
  const p = (s: string) => parseCidr(s, { strict: true })!.prefix;
  t.true(containsPrefix(p('10.0.0.0/8'), p('10.1.0.0/16')));
  t.false(containsPrefix(p('10.1.0.0/16'), p('10.0.0.0/8')));
  t.true(overlaps(p('10.1.0.0/16'), p('10.0.0.0/8')));
  t.false(overlaps(p('10.1.0.0/16'), p('10.2.0.0/16')));
  t.true(overlaps(p('0.0.0.0/0'), p('192.168.1.0/24')));
});

test('allow entries: CIDR, CIDR:PORT, bare address', (t) => {
  t.deepEqual(parseAllow('10.77.0.10/32:7000'), { prefix: { base: 0x0a4d000a, len: 32 }, port: 7000 });
  t.deepEqual(parseAllow('10.77.0.0/24'), { prefix: { base: 0x0a4d0000, len: 24 } });
  t.deepEqual(parseAllow('10.77.0.10:53'), { prefix: { base: 0x0a4d000a, len: 32 }, port: 53 });
  for (const bad of ['10.77.0.10/32:0', '10.77.0.10/32:65536', '10.77.0.1/24', 'x', '10.77.0.10:07']) t.is(parseAllow(bad), undefined, bad);
});

test('a valid spec is normalised; allow defaults to the routes', (t) => {
  const v = validateSpec({ ...base, routes: ['10.77.0.0/24', '10.88.0.0/16'], gateway: '10.77.0.1' });
  t.deepEqual(v.spec, {
    attach: { bridge: 'br0' },
    address: '10.77.0.2/24',
    routes: ['10.77.0.0/24', '10.88.0.0/16'],
    gateway: '10.77.0.1',
    allow: ['10.77.0.0/24', '10.88.0.0/16'],
  });
  t.is(v.allow.length, 2);
  const w = validateSpec({ ...base, attach: { bridge: 'br0', netns: 'vpc' }, allow: ['10.77.0.10/32:7000'] });
  t.deepEqual(w.spec.allow, ['10.77.0.10/32:7000']);
  t.is(w.spec.attach.netns, 'vpc');
});

test('hostAddresses: each host builds from its own address; a host not listed uses address', (t) => {
  const v = validateSpec({ ...base, hostAddresses: { h2: '10.77.0.4/24', h1: '10.77.0.3/24' } });
  t.deepEqual(v.spec.hostAddresses, { h1: '10.77.0.3/24', h2: '10.77.0.4/24' });
  t.deepEqual(specForHost(v.spec, 'h2'), { attach: { bridge: 'br0' }, address: '10.77.0.4/24', routes: ['10.77.0.0/24'], allow: ['10.77.0.0/24'] });
  t.is(specForHost(v.spec, 'h9').address, '10.77.0.2/24');
  t.is(specForHost(v.spec, undefined).address, '10.77.0.2/24');
  t.false('hostAddresses' in specForHost(v.spec, 'h1'));
  const plain = validateSpec(base).spec;
  t.is(specForHost(plain, 'h1'), plain, 'a spec without the table is used as it is');
});

const bad: Array<[string, unknown, RegExp]> = [
  ['not an object', 'x', /object/],
  ['unknown field', { ...base, extra: 1 }, /unknown field "extra"/],
  ['missing bridge', { ...base, attach: {} }, /attach.bridge/],
  ['bridge name too long', { ...base, attach: { bridge: 'a-very-long-bridge-name' } }, /attach.bridge/],
  ['netns with a slash', { ...base, attach: { bridge: 'br0', netns: '../x' } }, /attach.netns/],
  ['address without prefix', { ...base, address: '10.77.0.2' }, /prefix length/],
  ['address is the network address', { ...base, address: '10.77.0.0/24' }, /network or broadcast/],
  ['address /31', { ...base, address: '10.77.0.2/31' }, /1\.\.30/],
  ['route with host bits', { ...base, routes: ['10.77.0.1/24'] }, /not a valid prefix/],
  ['overlapping routes', { ...base, routes: ['10.77.0.0/24', '10.77.0.128/25'] }, /overlap/],
  ['no routes', { ...base, routes: [] }, /at least one/],
  ['route needs a gateway', { ...base, routes: ['10.88.0.0/16'] }, /give a gateway/],
  ['gateway outside the subnet', { ...base, routes: ['10.88.0.0/16'], gateway: '10.1.0.1' }, /not inside/],
  ['gateway is own address', { ...base, gateway: '10.77.0.2' }, /own address/],
  ['allow outside routes', { ...base, allow: ['10.99.0.1/32'] }, /outside every route/],
  ['allow with a bad port', { ...base, allow: ['10.77.0.10/32:99999'] }, /CIDR:PORT/],
  ['hostAddresses not an object', { ...base, hostAddresses: ['10.77.0.3/24'] }, /hostAddresses must be an object/],
  ['hostAddresses with a bad host id', { ...base, hostAddresses: { 'a b': '10.77.0.3/24' } }, /not a host id/],
  ['hostAddresses outside the subnet', { ...base, hostAddresses: { b: '10.78.0.3/24' } }, /not in the address's subnet/],
  ['hostAddresses with another prefix length', { ...base, hostAddresses: { b: '10.77.0.3/25' } }, /not in the address's subnet/],
  ['hostAddresses repeating address', { ...base, hostAddresses: { b: '10.77.0.2/24' } }, /already used by address/],
  ['hostAddresses repeating each other', { ...base, hostAddresses: { b: '10.77.0.3/24', c: '10.77.0.3/24' } }, /already used by hostAddresses.b/],
  ['hostAddresses the broadcast address', { ...base, hostAddresses: { b: '10.77.0.255/24' } }, /broadcast/],
];
for (const [name, raw, re] of bad) {
  test(`rejects: ${name}`, (t) => {
    const e = t.throws(() => validateSpec(raw), { instanceOf: HearthError });
    t.is(e?.code, 'BAD_REQUEST');
    t.regex(e?.message ?? '', re);
  });
}

test('network names', (t) => {
  t.notThrows(() => validateNetworkName('vpc-1'));
  for (const n of ['', 'Vpc', '-a', 'a-', 'a_b', 'a'.repeat(64), '../x']) {
    t.is(t.throws(() => validateNetworkName(n), { instanceOf: HearthError })?.code, 'BAD_REQUEST', n);
  }
});
