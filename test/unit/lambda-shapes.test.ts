/** The Lambda API's translations (src/lambda/shapes.ts, aws-errors.ts): names and ARNs, runtimes, request fields, errors. */
import test from 'ava';
import { HearthError } from '../../src/errors.js';
import { toLambdaError, type LambdaError } from '../../src/lambda/aws-errors.js';
import { configFields, functionConfiguration, hearthRuntime, parseFunctionName, RUNTIME_TABLE } from '../../src/lambda/shapes.js';
import { RUNTIMES, type FunctionRecord } from '../../src/registry/function-spec.js';

const fails = (t: import('ava').ExecutionContext, f: () => unknown, type: string, status: number): void => {
  const e = t.throws(f) as unknown as LambdaError;
  t.is(e.type, type);
  t.is(e.status, status);
};

test('function names: plain, $LATEST, partial and full ARNs; other qualifiers are not found', (t) => {
  t.is(parseFunctionName('my-fn'), 'my-fn');
  t.is(parseFunctionName('my-fn:$LATEST'), 'my-fn');
  t.is(parseFunctionName('123456789012:function:my-fn'), 'my-fn');
  t.is(parseFunctionName('arn:aws:lambda:eu-west-1:123456789012:function:my-fn'), 'my-fn');
  t.is(parseFunctionName('arn:aws:lambda:eu-west-1:123456789012:function:my-fn:$LATEST', '$LATEST'), 'my-fn');
  fails(t, () => parseFunctionName('my-fn:prod'), 'ResourceNotFoundException', 404);
  fails(t, () => parseFunctionName('my-fn', '7'), 'ResourceNotFoundException', 404);
  fails(t, () => parseFunctionName('bad name'), 'InvalidParameterValueException', 400);
  fails(t, () => parseFunctionName('a:b:c'), 'InvalidParameterValueException', 400);
  fails(t, () => parseFunctionName(undefined), 'InvalidParameterValueException', 400);
});

test('runtimes: one table; a name whose Hearth runtime is missing is a clear 400', (t) => {
  t.is(hearthRuntime('python3.12'), 'python');
  t.is(hearthRuntime('nodejs22.x'), 'node');
  fails(t, () => hearthRuntime('java21'), 'InvalidParameterValueException', 400);
  for (const [name, rt] of Object.entries(RUNTIME_TABLE)) {
    const known: readonly string[] = RUNTIMES;
    const got: string | undefined = known.includes(rt) ? hearthRuntime(name) : undefined;
    if (got !== undefined) t.is(got, rt);
    else t.regex(t.throws<Error>(() => hearthRuntime(name))?.message ?? '', new RegExp(`"${rt}" runtime`));
  }
});

test('request fields become deploy fields; what Hearth cannot do is refused, not ignored', (t) => {
  t.deepEqual(
    configFields({ Runtime: 'python3.11', Handler: 'a.b', MemorySize: 256, Timeout: 9, Environment: { Variables: { K: 'v' } }, Description: 'd', Role: 'r' }),
    {
      runtime: 'python',
      handler: 'a.b',
      memoryMb: 256,
      timeoutMs: 9000,
      env: { K: 'v' },
      description: 'd',
    },
  );
  t.deepEqual(configFields({ Environment: {} }), { env: {} });
  fails(t, () => configFields({ Timeout: 0 }), 'InvalidParameterValueException', 400);
  fails(t, () => configFields({ Timeout: 1.5 }), 'InvalidParameterValueException', 400);
  fails(t, () => configFields({ Layers: ['x'] }), 'InvalidParameterValueException', 400);
  fails(t, () => configFields({ PackageType: 'Image' }), 'InvalidParameterValueException', 400);
  fails(t, () => configFields({ Publish: true }), 'InvalidParameterValueException', 400);
  fails(t, () => configFields({ VpcConfig: { SubnetIds: ['s'] } }), 'InvalidParameterValueException', 400);
});

test('a record as a FunctionConfiguration', (t) => {
  const r: FunctionRecord = {
    ...{ name: 'f', runtime: 'python', handler: 'app.h', memoryMb: 128, timeoutMs: 1500, env: { A: 'b' }, concurrency: 10, retries: 2, maxEventAgeS: 60 },
    ...{ schedules: [], codeSha256: 'ab'.repeat(32), codeSize: 10, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-02T00:00:00.000Z' },
  };
  const c = functionConfiguration(r, 'eu-west-1', { node: 'nodejs20.x', python: 'python3.11' });
  t.like(c, {
    FunctionName: 'f',
    FunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:f',
    Runtime: 'python3.11',
    Timeout: 2,
    CodeSha256: Buffer.from('ab'.repeat(32), 'hex').toString('base64'),
    LastModified: '2026-01-02T00:00:00.000+0000',
    Version: '$LATEST',
    Environment: { Variables: { A: 'b' } },
  });
});

test("Hearth's codes become AWS's error types, with Lambda's field names", (t) => {
  t.like(toLambdaError(new HearthError('BAD_REQUEST', 'memoryMb: must be between 64 and 4096')), {
    type: 'InvalidParameterValueException',
    status: 400,
    message: 'MemorySize: must be between 64 and 4096',
  });
  t.like(toLambdaError(new HearthError('FUNCTION_NOT_FOUND', 'x')), { type: 'ResourceNotFoundException', status: 404 });
  t.like(toLambdaError(new HearthError('CONFLICT', 'x')), { type: 'ResourceConflictException', status: 409 });
  t.like(toLambdaError(new HearthError('PAYLOAD_TOO_LARGE', 'x')), { type: 'RequestTooLargeException', status: 413 });
  t.like(toLambdaError(new HearthError('TOO_MANY_REQUESTS', 'x')), { type: 'TooManyRequestsException', status: 429 });
  t.like(toLambdaError(new Error('boom')), { type: 'ServiceException', status: 500 });
});
