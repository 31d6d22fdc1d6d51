import test from 'ava';
import { HearthError } from '../../src/errors.js';
import { isFunctionName, NETWORK_NAME_PATTERN, validateFunctionName } from '../../src/names.js';
import { MemoryQueue } from '../../src/queue/memory-queue.js';
import { parseFunctionConfig } from '../../src/registry/function-spec.js';

const functionNames: Array<[unknown, boolean]> = [
  ['f', true],
  ['my-func_2', true],
  ['A'.repeat(64), true],
  ['A'.repeat(65), false],
  ['', false],
  ['a/b', false],
  ['a.b', false],
  ['..', false],
  ['é', false],
  [42, false],
  [undefined, false],
];

for (const [name, ok] of functionNames) {
  test(`function name ${JSON.stringify(name) ?? String(name)} is ${ok ? 'valid' : 'refused'}`, (t) => {
    t.is(isFunctionName(name), ok);
    if (ok) t.is(validateFunctionName(name), name as string);
    else t.is(t.throws(() => validateFunctionName(name), { instanceOf: HearthError }).code, 'INVALID_NAME');
  });
}

test('the queue takes the same rule: a name the registry refuses is BAD_REQUEST there and queues nothing', async (t) => {
  const q = new MemoryQueue();
  for (const bad of ['', 'a/b', 'x'.repeat(65)]) {
    const err = await t.throwsAsync(q.submit(bad, '{}'), { instanceOf: HearthError, message: /invalid function name/ });
    t.is(err.code, 'BAD_REQUEST');
  }
  t.is((await q.stats()).total.depth, 0);
  t.is((await q.submit('ok-name_1', '{}')).duplicate, false);
  await q.close();
});

test("a function's network field takes the network rule (a DNS label), not the function rule", (t) => {
  t.true(NETWORK_NAME_PATTERN.test('vpc-1'));
  t.is(parseFunctionConfig({ runtime: 'node', handler: 'index.handler', network: 'vpc-1' }).network, 'vpc-1');
  for (const bad of ['Vpc', 'vpc_1', '-vpc', 'a'.repeat(64)]) {
    t.throws(() => parseFunctionConfig({ runtime: 'node', handler: 'index.handler', network: bad }), { message: /network: must match/ }, bad);
  }
});
