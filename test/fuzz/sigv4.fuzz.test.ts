/**
 * Fuzzing the SigV4 canonicaliser and verifier of the Lambda API (src/lambda/sigv4.ts): raw paths,
 * queries, header lists and Authorization values as they arrive from the network (percent-junk,
 * lone surrogates, dot segments, control characters, odd spacing). Properties: nothing throws;
 * canonicalUri gives a path of unreserved characters, `/` and upper-case `%XX` only, with no empty,
 * `.` or `..` segment, absolute for an absolute raw path; canonicalQuery gives sorted `k=v` pairs of the same alphabet and is
 * stable (canonicalising its output changes nothing); canonicalHeaders gives one trimmed line per
 * signed name; parseAuthorization gives a message or fields within their rules; verifySignature
 * answers a refusal of one of its two types for any request not signed with the key (never ok,
 * never anything else). The signer round trip (whatever @smithy/signature-v4 signs verifies, any
 * change is refused) is test/unit/lambda-sigv4.test.ts.
 */
import test from 'ava';
import fc from 'fast-check';
import {
  amzTime,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  parseAmzDate,
  parseAuthorization,
  verifySignature,
  type RawRequest,
} from '../../src/lambda/sigv4.js';
import { corpus, params } from './fuzz-config.js';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const KEY_ID = 'AKIDFUZZ';
const secretOf = (id: string): string | undefined => (id === KEY_ID ? 'fuzz-secret' : undefined);

/** Pieces raw request text is made of: escapes good and bad, dots, separators, non-ASCII, a lone surrogate. */
const piece = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom(
    '%',
    '%2',
    '%zz',
    '%2F',
    '%2f',
    '%00',
    '%FF',
    '%C3%A9',
    '%E2%82',
    '.',
    '..',
    '/',
    '//',
    '&',
    '=',
    '?',
    '#',
    ' ',
    '+',
    '~',
    'é',
    '\ud800',
    '\udfff',
    '😀',
    '\0',
    '\t',
  ),
);
const rawText = fc.array(piece, { maxLength: 12 }).map((ps) => ps.join(''));
const headerName = fc.oneof(
  fc.constantFrom('Host', 'host', 'X-Amz-Date', 'x-amz-date', 'Authorization', 'X-Amz-Content-Sha256', 'Date', 'X-Weird'),
  fc.string({ maxLength: 8 }),
);
const headerValue = fc.oneof(rawText, fc.constantFrom('  a   b  ', '\ta\t', '20260102T030405Z', '20260102T030405', '2026'));
const headers = fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 });

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const authorization = fc.oneof(
  rawText,
  fc
    .record({
      id: fc.constantFrom(KEY_ID, 'AKIDOTHER', ''),
      date: fc.constantFrom('20260102', '2026010', '20260103', 'yyyymmdd'),
      region: fc.constantFrom('us-east-1', '', 'eu/west'),
      service: fc.constantFrom('lambda', 'execute-api', ''),
      term: fc.constantFrom('aws4_request', 'aws4_request/x', ''),
      signed: fc.constantFrom('host;x-amz-date', 'host', 'Host;x-amz-date', 'x-amz-date', '', 'host;;x'),
      sig: fc.oneof(hex64, rawText),
      sep: fc.constantFrom(', ', ',', ' ,  '),
    })
    .map((a) => `AWS4-HMAC-SHA256 Credential=${a.id}/${a.date}/${a.region}/${a.service}/${a.term}${a.sep}SignedHeaders=${a.signed}${a.sep}Signature=${a.sig}`),
);
const request: fc.Arbitrary<{ req: RawRequest; body: Buffer }> = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'post', 'DELETE', ''),
    path: rawText,
    query: rawText,
    headers,
    authorization: fc.option(authorization),
    date: fc.constantFrom(amzTime(NOW), amzTime(NOW - 10 * 60_000), '20260102T030405', ''),
    body: fc.uint8Array({ maxLength: 32 }),
  })
  .map((r) => {
    const hs: Array<[string, string]> = [...r.headers, ['Host', '127.0.0.1:9001'], ['X-Amz-Date', r.date]];
    if (r.authorization !== null) hs.push(['Authorization', r.authorization]);
    return { req: { method: r.method, path: r.path, query: r.query, headers: hs }, body: Buffer.from(r.body) };
  });

const ESCAPED = '(?:[A-Za-z0-9\\-_.~]|%[0-9A-F]{2})';
const URI = new RegExp(`^/(?:${ESCAPED}+/)*(?:${ESCAPED}+/?)?$`);
/** A raw path without the leading `/` (not an origin-form target) stays relative; same alphabet and segments. */
const RELATIVE_URI = new RegExp(`^(?:${ESCAPED}+/)*(?:${ESCAPED}+/?)?$`);
const PAIR = new RegExp(`^${ESCAPED}*=${ESCAPED}*$`);

function checkUri(raw: string): void {
  const uri = canonicalUri(raw);
  if (!(raw.startsWith('/') || uri === '/' ? URI : RELATIVE_URI).test(uri))
    throw new Error(`canonicalUri(${JSON.stringify(raw)}) = ${JSON.stringify(uri)}: not a canonical path`);
  for (const seg of uri.split('/')) if (seg === '.' || seg === '..') throw new Error(`dot segment left in ${uri}`);
}

function checkQuery(raw: string): void {
  const q = canonicalQuery(raw);
  if (q === '') return;
  const pairs = q.split('&');
  for (const p of pairs) if (!PAIR.test(p)) throw new Error(`canonicalQuery(${JSON.stringify(raw)}): bad pair ${JSON.stringify(p)}`);
  for (let i = 1; i < pairs.length; i++) {
    const [ak, av] = pairs[i - 1].split('=');
    const [bk, bv] = pairs[i].split('=');
    if (ak > bk || (ak === bk && av > bv)) throw new Error(`canonicalQuery(${JSON.stringify(raw)}) not sorted: ${q}`);
  }
  if (canonicalQuery(q) !== q) throw new Error(`canonicalQuery not stable on ${JSON.stringify(raw)}: ${q} -> ${canonicalQuery(q)}`);
}

function checkHeaders(hs: ReadonlyArray<readonly [string, string]>, signed: string[]): void {
  const text = canonicalHeaders(hs, signed);
  const lines = text.split('\n');
  if (lines.pop() !== '' || lines.length !== signed.length) throw new Error(`canonicalHeaders: ${lines.length} lines for ${signed.length} names`);
  lines.forEach((l, i) => {
    if (!l.startsWith(`${signed[i]}:`)) throw new Error(`canonicalHeaders line ${i} is ${JSON.stringify(l)}`);
    const value = l.slice(signed[i].length + 1);
    for (const part of value.split(',')) if (part !== part.trim() || part.includes('  ')) throw new Error(`untrimmed value ${JSON.stringify(value)}`);
  });
}

function checkAuthorization(value: string): void {
  const a = parseAuthorization(value);
  if (typeof a === 'string') {
    if (a.length === 0) throw new Error('empty message');
    return;
  }
  if (!/^\d{8}$/.test(a.date) || !/^[0-9a-f]{64}$/.test(a.signature)) throw new Error(`accepted ${JSON.stringify(value)}`);
  if ([a.accessKeyId, a.region, a.service].some((s) => s === '' || s.includes('/'))) throw new Error(`accepted scope of ${JSON.stringify(value)}`);
  if (a.signedHeaders.some((h) => h === '' || h !== h.toLowerCase())) throw new Error(`accepted SignedHeaders of ${JSON.stringify(value)}`);
}

function checkVerify(req: RawRequest, body: Buffer): void {
  const r = verifySignature(req, body, { secretOf, service: 'lambda', now: NOW });
  if (r.ok) throw new Error(`an unsigned request verified: ${JSON.stringify(req)}`);
  if (r.type !== 'UnrecognizedClientException' && r.type !== 'InvalidSignatureException') throw new Error(`refusal type ${String(r.type)}`);
  if (r.message.length === 0) throw new Error('refusal without a message');
  // the whole canonical request is text made of the parts above, whatever came in
  canonicalRequest(req, ['host', 'x-amz-date'], '0'.repeat(64));
}

interface CorpusEntry {
  method?: string;
  path?: string;
  query?: string;
  headers?: Array<[string, string]>;
  authorization?: string;
}

test('sigv4: canonical URI, query and headers are well-formed and stable; Authorization parsing keeps its rules; unsigned requests never verify (corpus, then generated)', (t) => {
  for (const c of corpus('sigv4')) {
    const e = JSON.parse(c.data.toString('utf8')) as CorpusEntry;
    const hs: Array<[string, string]> = e.headers ?? [];
    if (e.authorization !== undefined) {
      checkAuthorization(e.authorization);
      hs.push(['Authorization', e.authorization]);
    }
    checkUri(e.path ?? '/');
    checkQuery(e.query ?? '');
    checkHeaders(hs, ['host', 'x-amz-date']);
    checkVerify({ method: e.method ?? 'POST', path: e.path ?? '/', query: e.query ?? '', headers: hs }, Buffer.alloc(0));
  }
  fc.assert(fc.property(rawText, checkUri), params('sigv4-uri', 2000));
  fc.assert(fc.property(rawText, checkQuery), params('sigv4-query', 2000));
  fc.assert(
    fc.property(
      headers,
      fc.array(
        fc.string({ minLength: 1, maxLength: 6 }).map((s) => s.toLowerCase()),
        { maxLength: 4 },
      ),
      checkHeaders,
    ),
    params('sigv4-headers', 1000),
  );
  fc.assert(fc.property(authorization, checkAuthorization), params('sigv4-authorization', 2000));
  fc.assert(
    fc.property(request, ({ req, body }) => checkVerify(req, body)),
    params('sigv4-verify', 1000),
  );
  t.pass();
});

test('sigv4: parseAmzDate reads what amzTime writes; anything else is undefined or a finite time', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(9999, 11, 31) }), (ms) => {
      const s = amzTime(ms);
      if (parseAmzDate(s) !== Math.floor(ms / 1000) * 1000) throw new Error(`${s} read back as ${parseAmzDate(s)}`);
    }),
    params('sigv4-date', 1000),
  );
  fc.assert(
    fc.property(rawText, (s) => {
      const v = parseAmzDate(s);
      if (v !== undefined && !Number.isFinite(v)) throw new Error(`${JSON.stringify(s)} -> ${v}`);
      // Whatever is read is the date written: nothing rolls over (month 13, 30 February).
      if (v !== undefined && amzTime(v) !== s) throw new Error(`${JSON.stringify(s)} read as ${amzTime(v)}`);
    }),
    params('sigv4-date-raw', 1000),
  );
  t.pass();
});
