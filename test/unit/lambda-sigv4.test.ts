/**
 * SigV4 verification (src/lambda/sigv4.ts) against AWS's published example (the test suite's
 * get-vanilla request) and against the real signer (@smithy/signature-v4, what the AWS SDK for
 * JavaScript signs with) over generated paths, queries, headers and bodies: whatever the signer
 * signs verifies, and any change to what was signed is refused.
 */
import test from 'ava';
import fc from 'fast-check';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { canonicalQuery, canonicalUri, parseAmzDate, verifySignature, type RawRequest } from '../../src/lambda/sigv4.js';

const KEY = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const secretOf = (id: string): string | undefined => (id === KEY.accessKeyId ? KEY.secretAccessKey : undefined);

test("AWS's get-vanilla example verifies, and its canonical parts are AWS's", (t) => {
  const req: RawRequest = {
    method: 'GET',
    path: '/',
    query: '',
    headers: [
      ['Host', 'example.amazonaws.com'],
      ['X-Amz-Date', '20150830T123600Z'],
      [
        'Authorization',
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
      ],
    ],
  };
  const now = Date.UTC(2015, 7, 30, 12, 36, 0);
  t.deepEqual(verifySignature(req, Buffer.alloc(0), { secretOf, service: 'service', now }), { ok: true, accessKeyId: 'AKIDEXAMPLE', region: 'us-east-1' });
  t.like(verifySignature(req, Buffer.alloc(0), { secretOf, service: 'service', now: now + 6 * 60_000 }), { ok: false, type: 'InvalidSignatureException' });
  t.like(verifySignature(req, Buffer.alloc(0), { secretOf, service: 'lambda', now }), { ok: false, type: 'InvalidSignatureException' });
  t.is(canonicalUri('/a/./b/../c//d%3A'), '/a/c/d%253A');
  t.is(canonicalQuery('b=2&a=z&a=y&c'), 'a=y&a=z&b=2&c=');
});

test('X-Amz-Date: a real date is read to the second; an impossible one (month 13, 30 February, hour 24, year 0050) is refused', (t) => {
  t.is(parseAmzDate('20150830T123600Z'), Date.UTC(2015, 7, 30, 12, 36, 0));
  t.is(parseAmzDate('20240229T235959Z'), Date.UTC(2024, 1, 29, 23, 59, 59));
  for (const s of [
    '20151330T123600Z',
    '20150230T123600Z',
    '20230229T000000Z',
    '20150830T243600Z',
    '20150830T126000Z',
    '00500830T123600Z',
    '2015-08-30T12:36:00Z',
  ])
    t.is(parseAmzDate(s), undefined, s);
});

/** RFC 3986 escaping as the SDK builds paths and queries (encodeURIComponent plus !'()*). */
const escapeUri = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

interface Case {
  method: string;
  segments: string[];
  query: Record<string, string>;
  header: string;
  body: string;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
  segments: fc.array(
    fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => s !== '.' && s !== '..'),
    { maxLength: 4 },
  ),
  query: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 12 }), { maxKeys: 4 }),
  header: fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, '')),
  body: fc.string({ maxLength: 64, unit: 'grapheme' }),
});

async function sign(c: Case, at: Date): Promise<{ raw: RawRequest; body: Buffer }> {
  const path = '/' + c.segments.map(escapeUri).join('/');
  const signer = new SignatureV4({ credentials: KEY, region: 'eu-west-1', service: 'lambda', sha256: Sha256 });
  const signed = await signer.sign(
    {
      method: c.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 9001,
      path,
      query: c.query,
      headers: { host: '127.0.0.1:9001', 'x-hearth-test': c.header },
      body: c.body,
    },
    { signingDate: at },
  );
  const query = Object.entries(c.query)
    .map(([k, v]) => `${escapeUri(k)}=${escapeUri(v)}`)
    .join('&');
  return { raw: { method: c.method, path, query, headers: Object.entries(signed.headers) }, body: Buffer.from(c.body, 'utf8') };
}

test('whatever the real signer signs verifies; a changed method, path, query, header or body does not', async (t) => {
  const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const now = at.getTime() + 1000;
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      const { raw, body } = await sign(c, at);
      const opts = { secretOf, service: 'lambda', now };
      const ok = verifySignature(raw, body, opts);
      if (!ok.ok) throw new Error(`refused: ${ok.message}`);
      const changed: RawRequest[] = [
        { ...raw, method: raw.method === 'GET' ? 'POST' : 'GET' },
        { ...raw, path: raw.path + (raw.path.endsWith('/') ? 'x' : '/x') },
        { ...raw, query: raw.query + (raw.query ? '&' : '') + 'extra=1' },
        { ...raw, headers: raw.headers.map(([k, v]) => [k, k === 'x-hearth-test' ? v + 'x' : v] as const) },
      ];
      for (const r of changed) if (verifySignature(r, body, opts).ok) throw new Error(`a changed request verified: ${JSON.stringify(r)}`);
      if (verifySignature(raw, Buffer.concat([body, Buffer.from('x')]), opts).ok) throw new Error('a changed body verified');
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('refusals name the reason AWS uses', async (t) => {
  const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const { raw, body } = await sign({ method: 'GET', segments: ['2015-03-31', 'functions'], query: {}, header: 'h', body: '' }, at);
  const check = (r: RawRequest, now = at.getTime()) => verifySignature(r, body, { secretOf, service: 'lambda', now });
  const noAuth = { ...raw, headers: raw.headers.filter(([k]) => k !== 'authorization') };
  t.like(check(noAuth), { ok: false, type: 'UnrecognizedClientException' });
  const otherKey = raw.headers.map(([k, v]) => [k, k === 'authorization' ? v.replace('AKIDEXAMPLE', 'AKIDUNKNOWN') : v] as const);
  t.like(check({ ...raw, headers: otherKey }), { ok: false, type: 'UnrecognizedClientException' });
  const garbled = raw.headers.map(([k, v]) => [k, k === 'authorization' ? 'AWS4-HMAC-SHA256 nonsense' : v] as const);
  t.like(check({ ...raw, headers: garbled }), { ok: false, type: 'InvalidSignatureException' });
  t.like(check(raw, at.getTime() - 5 * 60_000 - 1000), { ok: false, type: 'InvalidSignatureException' });
  t.like(check(raw, at.getTime() + 4 * 60_000), { ok: true });
  const unsignedPayload = [...raw.headers, ['x-amz-content-sha256', 'UNSIGNED-PAYLOAD'] as const];
  t.like(check({ ...raw, headers: unsignedPayload }), { ok: false, type: 'InvalidSignatureException' });
});
