/**
 * The `SharedNetworkDefinitions` conformance suite (src/net/definitions.ts): every implementation
 * (MemoryNetworkDefinitions, JetStreamNetworkDefinitions) must pass it. `make` returns a fresh
 * store as seen from two hosts, `a` and `b`, neither started (the suite starts them, after
 * `follow`), and a cleanup that stops them and removes the store; `host()` one more host on it.
 */
import test, { type ExecutionContext } from 'ava';
import { HearthError } from '../../src/errors.js';
import type { NetworkDefinition, NetworkDefinitionFollower, SharedNetworkDefinitions } from '../../src/net/definitions.js';
import { validateSpec } from '../../src/net/spec.js';

export interface NetworkDefinitionsSubject {
  a: SharedNetworkDefinitions;
  b: SharedNetworkDefinitions;
  host(): Promise<SharedNetworkDefinitions>;
  cleanup(this: void): Promise<void>;
}

export const netDef = (name: string, address = '10.77.0.2/24'): NetworkDefinition => ({
  name,
  spec: validateSpec({ attach: { bridge: 'br0' }, address, routes: ['10.77.0.0/24'], hostAddresses: { b: '10.77.0.3/24' } }).spec,
  createdAt: '2026-12-02T10:00:00.000Z',
});

/** What a follower heard: `load`s and `change`s, in order. */
export class Heard implements NetworkDefinitionFollower {
  readonly events: Array<{ kind: 'load'; names: string[] } | { kind: 'change'; name: string; def: NetworkDefinition | undefined }> = [];
  load(defs: NetworkDefinition[]): void {
    this.events.push({ kind: 'load', names: defs.map((d) => d.name) });
  }
  change(name: string, def: NetworkDefinition | undefined): void {
    this.events.push({ kind: 'change', name, def });
  }
  /** The last change heard for `name`: its definition, null for a delete, undefined if none. */
  last(name: string): NetworkDefinition | null | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i];
      if (e.kind === 'change' && e.name === name) return e.def ?? null;
    }
    return undefined;
  }
}

async function eventually(t: ExecutionContext, what: string, check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) {
      t.fail(`not within ${ms} ms: ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e instanceof HearthError ? e.code : `not a HearthError: ${String(e)}`;
  }
}

export function networkDefinitionsConformance(name: string, make: () => Promise<NetworkDefinitionsSubject>): void {
  const start = async (t: ExecutionContext) => {
    const s = await make();
    t.teardown(() => s.cleanup());
    const ha = new Heard();
    const hb = new Heard();
    s.a.follow(ha);
    s.b.follow(hb);
    await s.a.start();
    await s.b.start();
    await eventually(t, 'both attached and loaded', () => s.a.attached && s.b.attached && ha.events.length > 0 && hb.events.length > 0);
    return { ...s, ha, hb };
  };

  test.serial(`${name}: an empty store loads empty; a create is listed at once here and heard on the other host`, async (t) => {
    const { a, b, ha, hb } = await start(t);
    t.deepEqual(ha.events[0], { kind: 'load', names: [] });
    t.deepEqual(a.list(), []);
    await a.create(netDef('vpc'));
    t.deepEqual(
      a.list().map((d) => d.name),
      ['vpc'],
    );
    await eventually(t, 'b hears vpc', () => hb.last('vpc') !== undefined);
    t.deepEqual(hb.last('vpc'), netDef('vpc'));
    t.deepEqual(b.list(), [netDef('vpc')]);
  });

  test.serial(`${name}: a taken name is CONFLICT from either host and changes nothing`, async (t) => {
    const { a, b, hb } = await start(t);
    await a.create(netDef('vpc'));
    await eventually(t, 'b hears vpc', () => hb.last('vpc') !== undefined);
    t.is(await code(b.create(netDef('vpc', '10.77.0.9/24'))), 'CONFLICT');
    t.is(await code(a.create(netDef('vpc', '10.77.0.9/24'))), 'CONFLICT');
    t.is(a.list()[0].spec.address, '10.77.0.2/24');
    t.is(b.list()[0].spec.address, '10.77.0.2/24');
  });

  test.serial(`${name}: two hosts creating one name at once: one wins, the other gets CONFLICT`, async (t) => {
    const { a, b } = await start(t);
    const codes = await Promise.all([code(a.create(netDef('race', '10.77.0.4/24'))), code(b.create(netDef('race', '10.77.0.5/24')))]);
    t.deepEqual([...codes].sort(), ['CONFLICT', undefined].sort());
  });

  test.serial(`${name}: delete: unknown is NETWORK_NOT_FOUND; a delete is heard on the other host`, async (t) => {
    const { a, b, hb } = await start(t);
    t.is(await code(a.delete('ghost')), 'NETWORK_NOT_FOUND');
    await a.create(netDef('vpc'));
    await eventually(t, 'b hears vpc', () => hb.last('vpc') !== undefined);
    await b.delete('vpc');
    t.deepEqual(b.list(), []);
    await eventually(t, 'a forgets vpc', () => a.list().length === 0);
    t.is(await code(a.delete('vpc')), 'NETWORK_NOT_FOUND');
    // The name is free again.
    await a.create(netDef('vpc', '10.77.0.7/24'));
    await eventually(t, 'b hears the new vpc', () => hb.last('vpc')?.spec.address === '10.77.0.7/24');
  });

  test.serial(`${name}: a host that joins later loads every definition before any change`, async (t) => {
    const s = await start(t);
    await s.a.create(netDef('one'));
    await s.a.create(netDef('two', '10.77.0.8/24'));
    const c = await s.host();
    const hc = new Heard();
    c.follow(hc);
    await c.start();
    t.teardown(() => c.stop());
    await eventually(t, 'c loaded', () => hc.events.length > 0);
    t.deepEqual(hc.events[0], { kind: 'load', names: ['one', 'two'] });
    t.deepEqual(
      c.list().map((d) => d.spec.address),
      ['10.77.0.2/24', '10.77.0.8/24'],
    );
  });
}
