/**
 * Fuzzing the function spec validator (src/registry/function-spec.ts, parseDeployRequest): JSON
 * bodies that are mostly valid with one or more fields made hostile, and arbitrary JSON.
 * Properties: it returns or throws HearthError BAD_REQUEST with a message (never another error,
 * never a message-less one); what it accepts keeps every documented bound, and accepting is
 * stable (the accepted request, parsed again, is accepted unchanged).
 */
import test from 'ava';
import fc from 'fast-check';
import { isHearthError } from '../../src/errors.js';
import { ENV_MAX_BYTES, runtimeHandlerFault, MAX_SCHEDULES, parseDeployRequest, RUNTIMES } from '../../src/registry/function-spec.js';
import { corpus, params } from './fuzz-config.js';

const hostileString = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('', '\0', '__proto__', 'constructor', 'index.handler', 'a.b.c', '../x.y', '/abs.h', 'x'.repeat(600), 'ü.handler', 'a\nb.c'),
);
const hostileValue = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, true, -0, 1e308, Number.MAX_SAFE_INTEGER + 2),
  fc.jsonValue({ maxDepth: 2 }),
);
const valid = {
  runtime: fc.constantFrom(...RUNTIMES),
  handler: fc.constantFrom('index.handler', 'app.main', 'pkg/mod.fn'),
  code: fc.constantFrom('UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==', 'eA=='),
  memoryMb: fc.integer({ min: 64, max: 4096 }),
  timeoutMs: fc.integer({ min: 100, max: 900_000 }),
  env: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.string({ maxLength: 20 }), { maxKeys: 4 }),
  concurrency: fc.integer({ min: 1, max: 1000 }),
  retries: fc.integer({ min: 0, max: 10 }),
  maxEventAgeS: fc.integer({ min: 60, max: 21600 }),
  schedules: fc.array(fc.constantFrom('rate(5 minutes)', 'cron(0 * * * ? *)'), { maxLength: 3 }),
  network: fc.constantFrom('vpc1', 'a-b'),
};
const FIELDS = Object.keys(valid) as Array<keyof typeof valid>;

/** A valid body with some fields replaced by hostile values, some dropped and maybe an unknown one added. */
const body = fc
  .tuple(
    fc.record(valid, { requiredKeys: ['runtime', 'handler', 'code'] }),
    fc.dictionary(fc.constantFrom(...FIELDS, 'timeout', '__proto__', 'extra'), hostileValue, { maxKeys: 3 }),
  )
  .map(([base, bad]) => JSON.parse(JSON.stringify({ ...base, ...bad })) as unknown);

function check(input: unknown): void {
  let req;
  try {
    req = parseDeployRequest(input);
  } catch (e) {
    if (!isHearthError(e) || e.code !== 'BAD_REQUEST' || e.message.length === 0)
      throw new Error(`parseDeployRequest threw ${(e as Error).constructor.name} ${(e as { code?: string }).code}: ${(e as Error).message}`, { cause: e });
    return;
  }
  if (!RUNTIMES.includes(req.runtime)) throw new Error(`runtime ${req.runtime}`);
  if (runtimeHandlerFault(req.handler, req.runtime) !== undefined) throw new Error(`handler ${req.handler}`);
  for (const [k, lo, hi] of [
    ['memoryMb', 64, 4096],
    ['timeoutMs', 100, 900_000],
    ['concurrency', 1, 1000],
    ['retries', 0, 10],
    ['maxEventAgeS', 60, 21600],
  ] as const) {
    const v = req[k];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`${k} ${v}`);
  }
  let envBytes = 0;
  for (const [k, v] of Object.entries(req.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || typeof v !== 'string' || v.includes('\0')) throw new Error(`env ${k}`);
    envBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (envBytes > ENV_MAX_BYTES) throw new Error(`env of ${envBytes} bytes`);
  if (req.schedules.length > MAX_SCHEDULES) throw new Error('schedules');
  if (req.network !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(req.network)) throw new Error(`network ${req.network}`);
  const again = parseDeployRequest(JSON.parse(JSON.stringify(req)));
  if (JSON.stringify(again) !== JSON.stringify(req)) throw new Error('accepting is not stable');
}

test('parseDeployRequest: BAD_REQUEST or a request within every bound (corpus, then generated)', (t) => {
  for (const c of corpus('function-spec')) check(JSON.parse(c.data.toString('utf8')));
  fc.assert(fc.property(body, check), params('function-spec', 1500));
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), check), params('function-spec-any', 500));
  t.pass();
});
