/**
 * Link waits done from TypeScript (no sleeping in the addon): they resolve once the links are up,
 * time out with ETIMEDOUT naming the link, and a connect that times out leaves nothing behind.
 */
import test from 'ava';

import { FakeNetBinding } from '../../src/net/fake-net-binding.js';
import { connectInstanceReady, waitLinkUp, waitLinksUp } from '../../src/net/link-wait.js';

function bindingWithBridge() {
  const b = new FakeNetBinding();
  const gw = b.createNetns();
  b.createBridge(gw, 'inner0');
  b.setLink(gw, 'inner0', { up: true });
  return { b, gw, bridgeIndex: b.getLink(gw, 'inner0')!.index };
}

test('resolves once a link that was down comes up', async (t) => {
  const { b, gw } = bindingWithBridge();
  b.createVeth(gw, 'v0', -1, 'v0-peer');
  let checks = 0;
  const getLinkOn = b.getLinkOn.bind(b);
  b.getLinkOn = (fd, name) => {
    if (++checks === 5) b.setLink(gw, 'v0', { up: true }); // comes up between two checks
    return getLinkOn(fd, name);
  };
  const us = await waitLinkUp(b, gw, 'v0', false, 60_000);
  t.true(us >= 0);
  t.true(checks >= 5, 'polled until the link was up');
});

test('times out with ETIMEDOUT naming the link; a missing link is ENODEV', async (t) => {
  const { b, gw } = bindingWithBridge();
  b.createVeth(gw, 'v1', -1, 'v1-peer'); // never brought up
  const e = await t.throwsAsync(
    waitLinksUp(
      b,
      [
        { nsFd: gw, name: 'inner0', forwarding: false },
        { nsFd: gw, name: 'v1', forwarding: false },
      ],
      20,
    ),
  );
  t.like(e, { code: 'ETIMEDOUT', errno: -110, syscall: 'wait link up' });
  t.regex(e.message, /link v1 not up/);
  await t.throwsAsync(waitLinkUp(b, gw, 'nosuch0', false, 20), { code: 'ENODEV' });
});

test('a connected instance whose links never come up is undone', async (t) => {
  const { b, gw, bridgeIndex } = bindingWithBridge();
  b.sweep();
  const before = b.openNamespaces;
  const getLinkOn = b.getLinkOn.bind(b);
  b.getLinkOn = (fd, name) => {
    const l = getLinkOn(fd, name);
    return l && { ...l, operUp: false };
  };
  const spec = { gwNetnsFd: gw, bridgeIndex, gwIfName: 'i7', instIfName: 'eth0', address: '100.96.0.7', gateway: '100.96.0.1' };
  await t.throwsAsync(connectInstanceReady(b, spec, 20), { code: 'ETIMEDOUT' });
  t.is(b.getLink(gw, 'i7'), null, 'the gateway end is deleted');
  b.sweep();
  t.is(b.openNamespaces, before, 'the instance namespace fd is closed');
});

test('a connected instance resolves with its namespace and the time waited', async (t) => {
  const { b, gw, bridgeIndex } = bindingWithBridge();
  const spec = { gwNetnsFd: gw, bridgeIndex, gwIfName: 'i8', instIfName: 'eth0', address: '100.96.0.8', gateway: '100.96.0.1' };
  const res = await connectInstanceReady(b, spec, 1000);
  t.true(res.netnsFd >= 0);
  t.is(res.gwIfIndex, b.getLink(gw, 'i8')!.index);
  t.true(res.waitUs >= 0);
});
