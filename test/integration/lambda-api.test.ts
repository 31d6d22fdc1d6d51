/**
 * The Lambda API against a real daemon, driven by the real @aws-sdk/client-lambda: every
 * operation and every error a client can meet, and functions made here and with `hearth deploy`
 * being the same thing.
 */
import anyTest, { type TestFn } from 'ava';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  DeleteFunctionConcurrencyCommand,
  GetFunctionCommand,
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  ListFunctionsCommand,
  PutFunctionConcurrencyCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type LambdaServiceException,
} from '@aws-sdk/client-lambda';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, isRoot, waitFor } from './daemon-harness.js';
import { startLambdaHarness, zip, type LambdaHarness } from './lambda-client.js';

const test = anyTest as TestFn<{ h: LambdaHarness }>;

const PY = `import os, time
def handler(event, context):
    print("hello from python")
    return {"event": event, "greeting": os.environ.get("GREETING"), "id": context.aws_request_id}
def fail(event, context):
    raise ValueError("bad things happened")
def slow(event, context):
    time.sleep(event.get("s", 1))
    return "slept"
`;
const NODE = `exports.handler = async (event, context) => { console.log('hello from node'); return { event, greeting: process.env.GREETING, id: context.awsRequestId, v: 1 }; };`;
const NODE_V2 = `exports.handler = async (event) => ({ v: 2, event });`;

const dec = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const enc = (x: unknown): Uint8Array => new Uint8Array(Buffer.from(JSON.stringify(x)));

/** The SDK's error for `p` (fails the test when it resolves). */
async function awsError(p: Promise<unknown>): Promise<LambdaServiceException> {
  try {
    await p;
  } catch (err) {
    return err as LambdaServiceException;
  }
  throw new Error('expected the call to fail');
}

test.before(async (t) => {
  if (!isRoot) return;
  t.context.h = await startLambdaHarness();
});
test.after.always(async (t) => {
  await t.context.h?.stop();
});

const create = (h: LambdaHarness, name: string, extra: Record<string, unknown> = {}) =>
  h.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'python3.12',
      Role: 'arn:aws:iam::000000000000:role/any',
      Handler: 'app.handler',
      Code: { ZipFile: zip({ 'app.py': PY }) },
      ...extra,
    }),
  );

test.serial('CreateFunction, Get*, and the function is the one hearth ls and hearth invoke see', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const made = await create(h, 'py-fn', { MemorySize: 256, Timeout: 5, Description: 'made by the SDK', Environment: { Variables: { GREETING: 'hi' } } });
  t.is(made.$metadata.httpStatusCode, 201);
  t.is(made.FunctionName, 'py-fn');
  t.is(made.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:py-fn');
  t.regex(made.Runtime ?? '', /^python3/);
  t.is(made.MemorySize, 256);
  t.is(made.Timeout, 5);
  t.is(made.Description, 'made by the SDK');
  t.deepEqual(made.Environment?.Variables, { GREETING: 'hi' });
  t.is(made.Version, '$LATEST');
  t.is(made.State, 'Active');
  t.regex(made.CodeSha256 ?? '', /^[A-Za-z0-9+/]{43}=$/);

  const got = await h.lambda.send(new GetFunctionCommand({ FunctionName: 'py-fn' }));
  t.is(got.Configuration?.Handler, 'app.handler');
  t.is(got.Concurrency?.ReservedConcurrentExecutions, 10);
  const byArn = await h.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: made.FunctionArn }));
  t.is(byArn.RevisionId, made.RevisionId);

  const listed = await h.client.call<{ functions: Array<{ name: string; env: Record<string, string>; memoryMb: number }> }>('GET', '/v1/functions');
  const rec = listed.functions.find((f) => f.name === 'py-fn');
  t.deepEqual(rec && { env: rec.env, memoryMb: rec.memoryMb }, { env: { GREETING: 'hi' }, memoryMb: 256 });
  const viaSocket = await h.invoke<{ greeting: string }>('py-fn', { a: 1 });
  t.is(viaSocket.result.greeting, 'hi');
});

test.serial('Invoke: RequestResponse with a Tail log, Event through the queue, DryRun', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const r = await h.lambda.send(new InvokeCommand({ FunctionName: 'py-fn', Payload: enc({ x: 42 }), LogType: 'Tail' }));
  t.is(r.StatusCode, 200);
  t.is(r.FunctionError, undefined);
  t.is(r.ExecutedVersion, '$LATEST');
  const out = JSON.parse(dec(r.Payload)) as { event: unknown; greeting: string; id: string };
  t.deepEqual(out.event, { x: 42 });
  t.is(out.greeting, 'hi');
  t.is(out.id, r.$metadata.requestId ?? 'missing', 'the request id is the id the handler saw');
  const log = Buffer.from(r.LogResult ?? '', 'base64').toString('utf8');
  t.regex(log, /hello from python/);
  t.regex(log, new RegExp(`REPORT RequestId: ${out.id}`));

  const ev = await h.lambda.send(new InvokeCommand({ FunctionName: 'py-fn', InvocationType: 'Event', Payload: enc({ queued: true }) }));
  t.is(ev.StatusCode, 202);
  const id = ev.$metadata.requestId!;
  const done = await waitFor('the event to succeed', async () => {
    const e = await h.client.call<{ status: string; result: unknown }>('GET', `/v1/events/${id}`);
    return e.status === 'succeeded' ? e : undefined;
  });
  t.like(done.result, { event: { queued: true } });

  const dry = await h.lambda.send(new InvokeCommand({ FunctionName: 'py-fn', InvocationType: 'DryRun' }));
  t.is(dry.StatusCode, 204);
});

test.serial('Invoke: a handler error answers 200 with X-Amz-Function-Error and Lambda’s error body', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  await create(h, 'py-fail', { Handler: 'app.fail' });
  const r = await h.lambda.send(new InvokeCommand({ FunctionName: 'py-fail', Payload: enc({}) }));
  t.is(r.StatusCode, 200);
  t.is(r.FunctionError, 'Unhandled');
  const body = JSON.parse(dec(r.Payload)) as { errorMessage: string; errorType: string; stackTrace: string[] };
  t.is(body.errorType, 'ValueError');
  t.is(body.errorMessage, 'bad things happened');
  t.true(Array.isArray(body.stackTrace) && body.stackTrace.some((l) => l.includes('app.py')));
});

test.serial('UpdateFunctionConfiguration and UpdateFunctionCode change what runs; RevisionId guards updates', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const made = await h.lambda.send(
    new CreateFunctionCommand({
      FunctionName: 'node-fn',
      Runtime: 'nodejs20.x',
      Role: 'r',
      Handler: 'index.handler',
      Code: { ZipFile: zip({ 'index.js': NODE }) },
    }),
  );
  t.regex(made.Runtime ?? '', /^nodejs\d+\.x$/);
  const conf = await h.lambda.send(
    new UpdateFunctionConfigurationCommand({ FunctionName: 'node-fn', Environment: { Variables: { GREETING: 'changed' } }, MemorySize: 192, Timeout: 7 }),
  );
  t.is(conf.MemorySize, 192);
  t.is(conf.Timeout, 7);
  t.is(conf.CodeSha256, made.CodeSha256, 'the code is kept');
  let r = await h.lambda.send(new InvokeCommand({ FunctionName: 'node-fn', Payload: enc({}) }));
  t.like(JSON.parse(dec(r.Payload)), { greeting: 'changed', v: 1 });

  const stale = await awsError(
    h.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'node-fn', ZipFile: zip({ 'index.js': NODE_V2 }), RevisionId: made.RevisionId })),
  );
  t.is(stale.name, 'PreconditionFailedException');
  t.is(stale.$metadata.httpStatusCode, 412);

  const code = await h.lambda.send(
    new UpdateFunctionCodeCommand({ FunctionName: 'node-fn', ZipFile: zip({ 'index.js': NODE_V2 }), RevisionId: conf.RevisionId }),
  );
  t.not(code.CodeSha256, made.CodeSha256);
  t.is(code.MemorySize, 192, 'the configuration is kept');
  r = await h.lambda.send(new InvokeCommand({ FunctionName: 'node-fn', Payload: enc({ k: 1 }) }));
  t.deepEqual(JSON.parse(dec(r.Payload)), { v: 2, event: { k: 1 } });
});

test.serial('ListFunctions pages with Marker/MaxItems and includes functions deployed with hearth deploy', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const dir = mkdtempSync(join(tmpdir(), 'hearth-lambda-src-'));
  try {
    writeFileSync(join(dir, 'index.js'), NODE);
    await h.deploy('cli-fn', dir, 'node', 'index.handler', { env: { GREETING: 'from deploy' } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const names: string[] = [];
  let marker: string | undefined;
  for (let pages = 0; pages < 10; pages++) {
    const page = await h.lambda.send(new ListFunctionsCommand({ MaxItems: 2, ...(marker ? { Marker: marker } : {}) }));
    t.true((page.Functions ?? []).length <= 2);
    names.push(...(page.Functions ?? []).map((f) => f.FunctionName!));
    marker = page.NextMarker;
    if (!marker) break;
  }
  t.deepEqual(names, ['cli-fn', 'node-fn', 'py-fail', 'py-fn']);
  const r = await h.lambda.send(new InvokeCommand({ FunctionName: 'cli-fn', Payload: enc({}) }));
  t.like(JSON.parse(dec(r.Payload)), { greeting: 'from deploy' });
});

test.serial('reserved concurrency: Put/Get/Delete, and an invoke over it is refused with 429', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  await create(h, 'py-slow', { Handler: 'app.slow', Timeout: 30 });
  const put = await h.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'py-slow', ReservedConcurrentExecutions: 1 }));
  t.is(put.ReservedConcurrentExecutions, 1);
  t.is((await h.lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: 'py-slow' }))).ReservedConcurrentExecutions, 1);
  // The first invoke holds the only slot until the second has been answered.
  const first = h.lambda.send(new InvokeCommand({ FunctionName: 'py-slow', Payload: enc({ s: 10 }) }));
  await waitFor('the first invoke to be running', async () => {
    const pool = await h.client.call<{ instances: Array<{ function: string | null; state: string }> }>('GET', '/v1/pool');
    return pool.instances.some((i) => i.function === 'py-slow' && i.state === 'busy') ? true : undefined;
  });
  const second = await awsError(h.lambda.send(new InvokeCommand({ FunctionName: 'py-slow', Payload: enc({ s: 0 }) })));
  t.is(second.name, 'TooManyRequestsException');
  t.is(second.$metadata.httpStatusCode, 429);
  t.is((second as unknown as { Reason: string }).Reason, 'ReservedFunctionConcurrentInvocationLimitExceeded');
  t.is(dec((await first).Payload), '"slept"');
  const zero = await awsError(h.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'py-slow', ReservedConcurrentExecutions: 0 })));
  t.is(zero.name, 'InvalidParameterValueException');
  await h.lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: 'py-slow' }));
  t.is((await h.lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: 'py-slow' }))).ReservedConcurrentExecutions, 10);
});

test.serial('errors come in AWS’s shape and change nothing', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const cases: Array<[string, Promise<unknown>, string, number]> = [
    ['unknown function', h.lambda.send(new GetFunctionCommand({ FunctionName: 'nope' })), 'ResourceNotFoundException', 404],
    ['invoke of an unknown function', h.lambda.send(new InvokeCommand({ FunctionName: 'nope' })), 'ResourceNotFoundException', 404],
    ['a version qualifier', h.lambda.send(new GetFunctionCommand({ FunctionName: 'py-fn', Qualifier: '3' })), 'ResourceNotFoundException', 404],
    ['create over an existing one', create(h, 'py-fn'), 'ResourceConflictException', 409],
    ['memory out of range', create(h, 'bad-mem', { MemorySize: 100_000 }), 'InvalidParameterValueException', 400],
    ['unknown runtime', create(h, 'bad-rt', { Runtime: 'java21' }), 'InvalidParameterValueException', 400],
    ['handler module missing', create(h, 'bad-handler', { Handler: 'nothere.handler' }), 'InvalidParameterValueException', 400],
    ['not a zip', create(h, 'bad-zip', { Code: { ZipFile: new Uint8Array(Buffer.from('not a zip')) } }), 'InvalidParameterValueException', 400],
    ['layers', create(h, 'bad-layers', { Layers: ['arn:aws:lambda:us-east-1:1:layer:x:1'] }), 'InvalidParameterValueException', 400],
    [
      'payload not JSON',
      h.lambda.send(new InvokeCommand({ FunctionName: 'py-fn', Payload: new Uint8Array(Buffer.from('{nope')) })),
      'InvalidRequestContentException',
      400,
    ],
    [
      'sync payload over 6 MB',
      h.lambda.send(new InvokeCommand({ FunctionName: 'py-fn', Payload: new Uint8Array(Buffer.from(JSON.stringify('x'.repeat(6 * 1024 * 1024)))) })),
      'RequestTooLargeException',
      413,
    ],
    [
      'async payload over 1 MB',
      h.lambda.send(
        new InvokeCommand({ FunctionName: 'py-fn', InvocationType: 'Event', Payload: new Uint8Array(Buffer.from(JSON.stringify('x'.repeat(1024 * 1024)))) }),
      ),
      'RequestTooLargeException',
      413,
    ],
    ['delete of an unknown function', h.lambda.send(new DeleteFunctionCommand({ FunctionName: 'nope' })), 'ResourceNotFoundException', 404],
  ];
  for (const [what, p, type, status] of cases) {
    const e = await awsError(p);
    t.is(e.name, type, what);
    t.is(e.$metadata.httpStatusCode, status, what);
    t.truthy(e.$metadata.requestId, `${what}: x-amzn-RequestId`);
    t.true(e.message.length > 0, `${what}: a message`);
  }
  const noBootstrap = await awsError(create(h, 'bad-custom-rt', { Runtime: 'provided.al2023', Handler: 'function.handler' }));
  t.is(noBootstrap.name, 'InvalidParameterValueException', 'a provided bundle without an executable bootstrap');
  t.regex(noBootstrap.message, /bootstrap/);
  const fns = await h.client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions');
  t.deepEqual(
    fns.functions.map((f) => f.name).filter((n) => n.startsWith('bad-')),
    [],
    'no refused create left a function',
  );
});

test.serial('DeleteFunction removes it for both front doors', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const del = await h.lambda.send(new DeleteFunctionCommand({ FunctionName: 'py-fail' }));
  t.is(del.$metadata.httpStatusCode, 204);
  t.is((await awsError(h.lambda.send(new GetFunctionCommand({ FunctionName: 'py-fail' })))).name, 'ResourceNotFoundException');
  const fns = await h.client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions');
  t.false(fns.functions.some((f) => f.name === 'py-fail'));
});

test.serial('a custom runtime (provided.al2023, a bootstrap on the Runtime API) is created, invoked and fails like the others', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const bootstrap = readFileSync(join(fixture('provided-python'), 'bootstrap'), 'utf8');
  const made = await create(h, 'custom-rt', {
    Runtime: 'provided.al2023',
    Handler: 'function.handler',
    Code: { ZipFile: zip({ bootstrap }, ['bootstrap']) },
    Environment: { Variables: { FOO: 'bar' } },
  });
  t.is(made.$metadata.httpStatusCode, 201);
  t.is(made.Runtime, 'provided.al2023');
  const ok = await h.lambda.send(new InvokeCommand({ FunctionName: 'custom-rt', Payload: enc({ action: 'echo', n: 1 }) }));
  t.is(ok.StatusCode, 200);
  t.is(ok.FunctionError, undefined);
  t.like(JSON.parse(dec(ok.Payload)), { event: { action: 'echo', n: 1 } });
  const failed = await h.lambda.send(new InvokeCommand({ FunctionName: 'custom-rt', Payload: enc({ action: 'error', why: 'no reason' }) }));
  t.is(failed.StatusCode, 200);
  t.is(failed.FunctionError, 'Unhandled');
  t.like(JSON.parse(dec(failed.Payload)), { errorType: 'ValueError', errorMessage: 'bad input: no reason', stackTrace: ['at step one', 'at step two'] });
  await h.lambda.send(new DeleteFunctionCommand({ FunctionName: 'custom-rt' }));
});
