/**
 * Clients other than the JS SDK against the Lambda API of a real daemon: boto3 (botocore's own
 * SigV4 signer and request shapes) and the AWS CLI. Skipped, saying why, where they are not installed.
 */
import anyTest, { type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isRoot } from './daemon-harness.js';
import { fixtureDir, startLambdaHarness, type LambdaHarness } from './lambda-client.js';

const run = promisify(execFile);
const test = anyTest as TestFn<{ h: LambdaHarness }>;

const has = async (cmd: string, args: string[]): Promise<boolean> =>
  run(cmd, args, { timeout: 30_000 }).then(
    () => true,
    () => false,
  );

test.before(async (t) => {
  if (!isRoot) return;
  t.context.h = await startLambdaHarness();
});
test.after.always(async (t) => {
  await t.context.h?.stop();
});

test.serial('boto3: create, invoke with a Tail log, list, update, concurrency, not-found, delete', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  if (!(await has('python3', ['-c', 'import boto3']))) return t.pass('skipped: boto3 is not installed for python3');
  const { h } = t.context;
  const { stdout } = await run(
    'python3',
    [`${fixtureDir('lambda-clients')}/boto3_client.py`, `http://127.0.0.1:${h.port}`, h.key.accessKeyId, h.key.secretAccessKey],
    {
      timeout: 120_000,
    },
  );
  const out = JSON.parse(stdout) as Record<string, unknown>;
  t.deepEqual(out['created'], { status: 201, arn: 'arn:aws:lambda:eu-central-1:000000000000:function:boto-fn', timeout: 10 });
  const inv = out['invoke'] as { status: number; payload: unknown; log: string };
  t.is(inv.status, 200);
  t.deepEqual(inv.payload, { got: { a: [1, 2] }, env: 'v' });
  t.regex(inv.log, /boto3 was here/);
  t.deepEqual(out['list'], ['boto-fn']);
  t.is(out['config'], 256);
  t.is(out['concurrency'], 3);
  t.is(out['missing'], 'ResourceNotFoundException');
  t.is(out['deleted'], 204);
});

test.serial('AWS CLI: list-functions and invoke', async (t) => {
  if (!isRoot) return t.pass('skipped: integration tests need root');
  if (!(await has('aws', ['--version']))) return t.pass('skipped: the aws CLI is not installed');
  const { h } = t.context;
  await h.deploy('cli-made', fixtureDir('lambda-clients'), 'python', 'echo.handler');
  const env = { ...process.env, AWS_ACCESS_KEY_ID: h.key.accessKeyId, AWS_SECRET_ACCESS_KEY: h.key.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1' };
  const aws = (...args: string[]) => run('aws', ['--endpoint-url', `http://127.0.0.1:${h.port}`, 'lambda', ...args], { env, timeout: 60_000 });
  const list = JSON.parse((await aws('list-functions')).stdout) as { Functions: Array<{ FunctionName: string }> };
  t.deepEqual(
    list.Functions.map((f) => f.FunctionName),
    ['cli-made'],
  );
  const outFile = `${h.dir}/out.json`;
  const inv = JSON.parse((await aws('invoke', '--function-name', 'cli-made', '--payload', '{"q": 1}', outFile)).stdout) as { StatusCode: number };
  t.is(inv.StatusCode, 200);
  const { readFileSync } = await import('node:fs');
  t.deepEqual(JSON.parse(readFileSync(outFile, 'utf8')), { echo: { q: 1 } });
  const missing = await aws('get-function', '--function-name', 'nope').then(
    () => '',
    (e: { stderr: string }) => e.stderr,
  );
  t.regex(missing, /ResourceNotFoundException/);
});
