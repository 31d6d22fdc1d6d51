/**
 * The `FunctionRegistry` conformance suite: every implementation (MemoryRegistry, FileRegistry,
 * and any future one) must pass it. `functionRegistryConformance(name, make)` registers ava
 * tests; `make` returns a registry on a fresh state, not started (the suite starts it), and a
 * cleanup that stops it and removes its state.
 */
import test, { type ExecutionContext } from 'ava';
import { HearthError } from '../../src/errors.js';
import type { FunctionDefinition, FunctionRecord } from '../../src/registry/function-spec.js';
import type { FunctionRegistry } from '../../src/registry/registry.js';

export const sha = (c: string) => c.repeat(64);

export function def(over: Partial<FunctionDefinition> = {}): FunctionDefinition {
  return {
    runtime: 'node',
    handler: 'index.handler',
    memoryMb: 128,
    timeoutMs: 3000,
    env: { A: '1' },
    concurrency: 10,
    retries: 2,
    maxEventAgeS: 21600,
    schedules: [],
    codeSha256: sha('a'),
    codeSize: 100,
    ...over,
  };
}

export class StepClock {
  t = Date.parse('2026-01-01T00:00:00.000Z');
  now(): number {
    return this.t;
  }
}

export interface RegistrySubject {
  registry: FunctionRegistry;
  cleanup(this: void): Promise<void>;
}

export function functionRegistryConformance(name: string, make: (clock: StepClock) => Promise<RegistrySubject>): void {
  const suite = (title: string, fn: (t: ExecutionContext, r: FunctionRegistry, clock: StepClock) => Promise<void>) =>
    test(`${name}: ${title}`, async (t) => {
      const clock = new StepClock();
      const { registry, cleanup } = await make(clock);
      try {
        await registry.start();
        await fn(t, registry, clock);
      } finally {
        await cleanup();
      }
    });

  suite('put creates, then updates keeping createdAt', async (t, r, clock) => {
    const first = await r.put('fn', def());
    t.true(first.created);
    t.is(first.record.createdAt, '2026-01-01T00:00:00.000Z');
    t.is(first.record.updatedAt, '2026-01-01T00:00:00.000Z');
    t.like(first.record, { name: 'fn', runtime: 'node', handler: 'index.handler', codeSha256: sha('a'), codeSize: 100, env: { A: '1' } });
    clock.t += 5000;
    const second = await r.put('fn', def({ memoryMb: 256, codeSha256: sha('b'), network: 'vpc' }));
    t.false(second.created);
    t.is(second.record.createdAt, '2026-01-01T00:00:00.000Z');
    t.is(second.record.updatedAt, '2026-01-01T00:00:05.000Z');
    t.is(second.record.memoryMb, 256);
    t.is(second.record.network, 'vpc');
    t.deepEqual(await r.get('fn'), second.record);
  });

  suite('a record without network has no network key', async (t, r) => {
    const { record } = await r.put('fn', def());
    t.false('network' in record);
    t.false('network' in ((await r.get('fn')) as FunctionRecord));
  });

  suite('get of an unknown name is undefined; list is sorted', async (t, r) => {
    t.is(await r.get('nope'), undefined);
    await r.put('b', def());
    await r.put('a', def());
    await r.put('c', def());
    t.deepEqual(
      (await r.list()).map((x) => x.name),
      ['a', 'b', 'c'],
    );
  });

  suite('delete returns the record once', async (t, r) => {
    await r.put('fn', def());
    t.is((await r.delete('fn'))?.name, 'fn');
    t.is(await r.delete('fn'), undefined);
    t.is(await r.get('fn'), undefined);
    t.deepEqual(await r.list(), []);
  });

  suite('records handed out are copies', async (t, r) => {
    const { record } = await r.put('fn', def());
    record.env.B = 'mutated';
    record.schedules.push('x');
    const got = (await r.get('fn')) as FunctionRecord;
    t.deepEqual(got.env, { A: '1' });
    t.deepEqual(got.schedules, []);
    got.memoryMb = 1;
    t.is((await r.get('fn'))?.memoryMb, 128);
  });

  suite('a definition that would not load again is refused', async (t, r) => {
    const err = await t.throwsAsync(r.put('fn', def({ codeSha256: 'nope', memoryMb: 1 })), { instanceOf: HearthError });
    t.is(err.code, 'BAD_REQUEST');
    t.regex(err.message, /^function fn: memoryMb: .*codeSha256/);
    t.is(await r.get('fn'), undefined);
  });

  suite('bad names are refused', async (t, r) => {
    await t.throwsAsync(r.put('../x', def()), { instanceOf: HearthError, message: /invalid function name/ });
    await t.throwsAsync(r.delete('a b'), { instanceOf: HearthError });
    t.deepEqual(await r.list(), []);
  });

  suite('listeners hear each change after it is made; a throwing one harms nothing', async (t, r) => {
    const events: [string, string | undefined][] = [];
    r.onChange(() => {
      throw new Error('listener bug');
    });
    const off = r.onChange((name, rec) => {
      events.push([name, rec?.codeSha256]);
    });
    // The change is already visible when a listener hears it.
    const visible: Promise<[string | undefined, string | undefined]>[] = [];
    r.onChange((name, rec) => {
      visible.push(r.get(name).then((got) => [got?.codeSha256, rec?.codeSha256]));
    });
    await r.put('fn', def());
    await r.put('fn', def({ codeSha256: sha('b') }));
    await r.delete('fn');
    await r.delete('fn'); // nothing removed: no event
    off();
    await r.put('other', def());
    t.deepEqual(events, [
      ['fn', sha('a')],
      ['fn', sha('b')],
      ['fn', undefined],
    ]);
    for (const [got, heard] of await Promise.all(visible.slice(0, 3))) t.is(got, heard);
  });

  suite('concurrent puts and deletes on one name apply in call order', async (t, r, clock) => {
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      clock.t += 1;
      ops.push(r.put('fn', def({ codeSize: i })));
    }
    ops.push(r.delete('fn'));
    ops.push(r.put('fn', def({ codeSize: 99 })));
    const results = await Promise.all(ops);
    t.true((results[0] as { created: boolean }).created);
    t.false((results[1] as { created: boolean }).created);
    t.true((results[21] as { created: boolean }).created, 'recreated after the delete');
    t.is((await r.get('fn'))?.codeSize, 99);
  });

  suite('many names concurrently', async (t, r) => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => r.put(`f${i}`, def({ codeSize: i }))));
    const all = await r.list();
    t.is(all.length, 50);
    t.is(all.find((x) => x.name === 'f7')?.codeSize, 7);
  });

  test(`${name}: writes before start are refused with UNAVAILABLE; stop is safe without start`, async (t) => {
    const { registry, cleanup } = await make(new StepClock());
    try {
      const err = await t.throwsAsync(registry.put('fn', def()), { instanceOf: HearthError });
      t.is(err.code, 'UNAVAILABLE');
      t.is((await t.throwsAsync<HearthError>(registry.delete('fn'))).code, 'UNAVAILABLE');
      await registry.stop();
    } finally {
      await cleanup();
    }
  });
}
