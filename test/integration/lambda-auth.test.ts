/**
 * SigV4 at the Lambda API of a real daemon: requests signed by the real signer pass; unsigned,
 * unknown-key, wrong-secret, stale and tampered requests get 403 in AWS's shape and change
 * nothing; keys made and removed through the control API count at once; the keys file is root's.
 */
import anyTest, { type TestFn } from 'ava';
import { ListFunctionsCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from './daemon-harness.js';
import { signedRequest, startLambdaHarness, zip, type LambdaHarness } from './lambda-client.js';

const test = anyTest as TestFn<{ h: LambdaHarness }>;

test.before(async (t) => {
  if (!isRoot) return;
  t.context.h = await startLambdaHarness();
});
test.after.always(async (t) => {
  await t.context.h?.stop();
});

const createBody = (name: string): string =>
  JSON.stringify({
    FunctionName: name,
    Runtime: 'nodejs20.x',
    Role: 'r',
    Handler: 'index.handler',
    Code: { ZipFile: Buffer.from(zip({ 'index.js': 'exports.handler = async () => 1;' })).toString('base64') },
  });

async function names(h: LambdaHarness): Promise<string[]> {
  const r = await h.client.call<{ functions: Array<{ name: string }> }>('GET', '/v1/functions');
  return r.functions.map((f) => f.name);
}

test.serial('a correctly signed raw request passes, with a query and an ARN in the path', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const made = await signedRequest(h, { method: 'POST', path: '/2015-03-31/functions', body: createBody('signed-ok') });
  t.is(made.status, 201, made.body);
  const arn = encodeURIComponent('arn:aws:lambda:us-east-1:000000000000:function:signed-ok');
  const got = await signedRequest(h, { method: 'GET', path: `/2015-03-31/functions/${arn}/configuration`, query: { Qualifier: '$LATEST' } });
  t.is(got.status, 200, got.body);
  t.is((JSON.parse(got.body) as { FunctionName: string }).FunctionName, 'signed-ok');
  t.truthy(got.headers['x-amzn-requestid']);
});

test.serial('refused signatures: 403 with the error type AWS uses, and nothing changes', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const before = await names(h);
  const cases: Array<[string, Parameters<typeof signedRequest>[1], string]> = [
    ['unsigned', { method: 'POST', path: '/2015-03-31/functions', body: createBody('x1'), unsigned: true }, 'UnrecognizedClientException'],
    [
      'unknown access key',
      {
        method: 'POST',
        path: '/2015-03-31/functions',
        body: createBody('x2'),
        credentials: { accessKeyId: 'HRTHAAAAAAAAAAAAAAAA', secretAccessKey: 'whatever' },
      },
      'UnrecognizedClientException',
    ],
    [
      'wrong secret',
      { method: 'POST', path: '/2015-03-31/functions', body: createBody('x3'), credentials: { accessKeyId: h.key.accessKeyId, secretAccessKey: 'wrong' } },
      'InvalidSignatureException',
    ],
    [
      'ten minutes old',
      { method: 'POST', path: '/2015-03-31/functions', body: createBody('x4'), signingDate: new Date(Date.now() - 10 * 60_000) },
      'InvalidSignatureException',
    ],
    [
      'ten minutes ahead',
      { method: 'POST', path: '/2015-03-31/functions', body: createBody('x5'), signingDate: new Date(Date.now() + 10 * 60_000) },
      'InvalidSignatureException',
    ],
    [
      'body changed after signing',
      { method: 'POST', path: '/2015-03-31/functions', body: createBody('x6'), bodyAfterSigning: createBody('x7') },
      'InvalidSignatureException',
    ],
    [
      'unsigned payload claimed',
      { method: 'POST', path: '/2015-03-31/functions', body: createBody('x8'), headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      'InvalidSignatureException',
    ],
    ['delete, unsigned', { method: 'DELETE', path: '/2015-03-31/functions/signed-ok', unsigned: true }, 'UnrecognizedClientException'],
  ];
  for (const [what, req, type] of cases) {
    const r = await signedRequest(h, req);
    t.is(r.status, 403, `${what}: ${r.body}`);
    t.is(r.headers['x-amzn-errortype'], type, what);
    t.truthy(r.headers['x-amzn-requestid'], what);
    t.true((JSON.parse(r.body) as { message: string }).message.length > 0, what);
  }
  t.deepEqual(await names(h), before, 'no refused request changed the functions');
});

test.serial('keys: made and removed through the control API count at once; the file is root’s only', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  const { h } = t.context;
  const k = await h.client.call<{ accessKeyId: string; secretAccessKey: string }>('POST', '/v1/keys', { name: 'second' });
  const listed = await h.client.call<{ keys: Array<Record<string, unknown>> }>('GET', '/v1/keys');
  t.deepEqual(listed.keys.map((x) => x.name).sort(), ['second', 'test']);
  t.false(JSON.stringify(listed).includes(k.secretAccessKey), 'ls never shows a secret');
  t.is(statSync(join(h.config.stateDir, 'lambda-keys.json')).mode & 0o777, 0o600);
  const dup = await h.client.request('POST', '/v1/keys', { name: 'second' });
  t.is(dup.status, 409);

  const client = new LambdaClient({ endpoint: `http://127.0.0.1:${h.port}`, region: 'eu-west-1', credentials: k, maxAttempts: 1 });
  try {
    const ok = await client.send(new ListFunctionsCommand({}));
    t.true((ok.Functions ?? []).some((f) => f.FunctionName === 'signed-ok'));
    t.is(ok.Functions?.[0]?.FunctionArn?.split(':')[3], 'eu-west-1', 'ARNs carry the region the request was signed for');
    await h.client.call('DELETE', `/v1/keys/${k.accessKeyId}`);
    const refused = await client.send(new ListFunctionsCommand({})).then(
      () => undefined,
      (e: Error) => e,
    );
    t.is(refused?.name, 'UnrecognizedClientException');
  } finally {
    client.destroy();
  }
  const gone = await h.client.request('DELETE', `/v1/keys/${k.accessKeyId}`);
  t.is(gone.status, 404);
});
