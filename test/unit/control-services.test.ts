/**
 * The control services over a real catalogue (memory registry and code store) and fakes for the
 * queue, dispatcher, pool and networks: unknown names are coded errors, events carry the
 * function's retry settings, and networks answer UNAVAILABLE or CONFLICT as documented.
 */
import test from 'ava';
import { ManualClock } from '../../src/clock.js';
import type { AccessKeys } from '../../src/control/access-keys.js';
import { buildServices } from '../../src/control/services.js';
import type { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { HearthError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { Policy } from '../../src/model/policy.js';
import type { NetworkManager } from '../../src/net/index.js';
import type { Pool } from '../../src/pool/pool.js';
import type { EventQueue } from '../../src/queue/event-queue.js';
import { FunctionCatalogue } from '../../src/registry/catalogue.js';
import { FunctionService } from '../../src/registry/function-service.js';
import { MemoryCodeStore } from '../../src/registry/memory-code-store.js';
import { MemoryRegistry } from '../../src/registry/registry.js';
import type { InvocationHistory } from '../../src/observe/observability.js';
import { def } from '../conformance/function-registry.js';

async function setup(opts: { networksDisabled?: string; history?: InvocationHistory } = {}) {
  const clock = new ManualClock(1_000_000);
  const registry = new MemoryRegistry({ clock });
  await registry.start();
  const store = new MemoryCodeStore();
  const calls: string[] = [];
  const catalogue = new FunctionCatalogue({ registry, store, policy: { describe() {} }, clock, log: createLogger('silent'), genericPerNetwork: 1 });
  await catalogue.start({
    pool: { retire() {}, genericTargets: () => ({}), setGenericTarget() {}, liveCodeShas: () => [] },
    queue: { purgeFunction: async () => 0 },
    schedules: { set: async () => {}, remove: async () => {} },
    gcCode: async () => [],
  });
  const submitted: unknown[] = [];
  const queue = {
    submit: async (fn: string, payload: string, o: object) => {
      submitted.push({ fn, payload, ...o });
      return { id: 'e1', duplicate: (o as { idempotencyKey?: string }).idempotencyKey === 'seen' };
    },
  } as unknown as EventQueue;
  const dispatcher = { noteAccepted: (ids: string[]) => void calls.push(`accepted ${ids.join(',')}`) } as unknown as Dispatcher;
  const pool = {
    setGenericTarget: (rt: string, n: number, net: string) => void calls.push(`target ${rt}@${net}=${n}`),
    drainNetwork: async (net: string) => void calls.push(`drain ${net}`),
  } as unknown as Pool;
  const known = new Set(['vpc', 'lab']);
  const networks = {
    get: (n: string) => (known.has(n) ? { name: n } : undefined),
    list: () => [...known].map((name) => ({ name })),
    create: async (n: string) => ({ name: n }),
    delete: async (n: string) => void calls.push(`delete ${n}`),
  } as unknown as NetworkManager;
  const services = buildServices({
    functions: new FunctionService(store, registry),
    catalogue,
    dispatcher,
    queue,
    pool,
    policy: {} as Policy,
    networks,
    keys: {} as AccessKeys,
    ...(opts.networksDisabled ? { networksDisabled: opts.networksDisabled } : {}),
    ...(opts.history ? { history: opts.history } : {}),
    clock,
    policyClock: clock,
    memoryBudgetMb: 1024,
    cgroupVersion: 2,
  });
  return { registry, services, submitted, calls };
}

const code = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as HearthError).code;
  }
  return 'no error';
};

test('unknown functions are FUNCTION_NOT_FOUND; nothing is queued for them', async (t) => {
  const s = await setup();
  t.is(await code(() => s.services.getFunction('nope')), 'FUNCTION_NOT_FOUND');
  t.is(await code(s.services.submitEvent('nope', '{}', undefined)), 'FUNCTION_NOT_FOUND');
  t.is(await code(s.services.submitBatch('nope', ['{}'])), 'FUNCTION_NOT_FOUND');
  // One wording for "not found" everywhere (the dispatcher and the network manager say the same).
  t.throws(() => s.services.getFunction('nope'), { message: 'no function named "nope"' });
  t.deepEqual(s.submitted, []);
});

test('an event carries its function retries and age limit; a duplicate is not dispatched again', async (t) => {
  const s = await setup();
  await s.registry.put('fn', def({ retries: 3, maxEventAgeS: 120 }));
  t.deepEqual(await s.services.submitEvent('fn', '{"a":1}', undefined), { id: 'e1' });
  await s.services.submitEvent('fn', '{}', 'seen');
  t.deepEqual(s.submitted[0], { fn: 'fn', payload: '{"a":1}', maxAttempts: 4, expiresAt: 1_000_000 + 120_000 });
  t.deepEqual(s.calls, ['accepted e1']);
  t.like(await s.services.getFunction('fn'), { name: 'fn', retries: 3 });
  t.deepEqual(
    ((await s.services.listFunctions()) as { name: string }[]).map((f) => f.name),
    ['fn'],
  );
});

test('networks disabled: creating one is UNAVAILABLE naming why; none are listed', async (t) => {
  const s = await setup({ networksDisabled: 'nft: command not found' });
  const err = await t.throwsAsync(s.services.putNetwork('vpc2', {}), { instanceOf: HearthError });
  t.is(err.code, 'UNAVAILABLE');
  t.regex(err.message, /nft: command not found/);
  t.deepEqual(await s.services.listNetworks(), []);
  t.is(await code(s.services.deleteNetwork('vpc')), 'NETWORK_NOT_FOUND');
});

test('a network in use cannot be deleted; an unused one is drained, then deleted', async (t) => {
  const s = await setup();
  await s.registry.put('web', def({ network: 'vpc' }));
  const err = await t.throwsAsync(s.services.deleteNetwork('vpc'), { instanceOf: HearthError });
  t.is(err.code, 'CONFLICT');
  t.regex(err.message, /used by web/);
  t.is(await code(s.services.putNetwork('vpc', {})), 'CONFLICT');
  t.is(await code(s.services.deleteNetwork('ghost')), 'NETWORK_NOT_FOUND');
  await t.throwsAsync(s.services.deleteNetwork('ghost'), { message: 'no network named "ghost"' });
  await s.services.deleteNetwork('lab');
  t.deepEqual(s.calls, ['target node@lab=0', 'target python@lab=0', 'target provided@lab=0', 'drain lab', 'delete lab']);
});

test('invocations and logs: unknown function FUNCTION_NOT_FOUND; an age is counted back from the clock; no records kept is UNAVAILABLE', async (t) => {
  const asked: unknown[] = [];
  const history: InvocationHistory = {
    invocations: async (fn, n) => (asked.push({ fn, n }), []),
    logs: async (fn, sinceMs) => (asked.push({ fn, sinceMs }), []),
  };
  const s = await setup({ history });
  t.is(await code(s.services.invocations('nope', 5)), 'FUNCTION_NOT_FOUND');
  t.is(await code(s.services.logs('nope', { ageMs: 1 })), 'FUNCTION_NOT_FOUND');
  await s.registry.put('fn', def({}));
  await s.services.invocations('fn', 5);
  await s.services.logs('fn', { ageMs: 60_000 });
  await s.services.logs('fn', { atMs: 42 });
  t.deepEqual(asked, [
    { fn: 'fn', n: 5 },
    { fn: 'fn', sinceMs: 1_000_000 - 60_000 },
    { fn: 'fn', sinceMs: 42 },
  ]);
  const without = await setup();
  await without.registry.put('fn', def({}));
  t.is(await code(without.services.logs('fn', { ageMs: 1 })), 'UNAVAILABLE');
});
