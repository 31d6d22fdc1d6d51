/**
 * AWS Signature Version 4, the server's side: rebuild the canonical request from the request as
 * it arrived (raw path, raw query, the signed headers' raw values, the body's hash), derive the
 * signing key from the secret, and compare signatures in constant time.
 *
 * The canonicaliser (`canonicalRequest` and its parts) is pure: strings in, a string out, no I/O,
 * no clock, so a fuzzer or a test vector can drive it directly. `verifySignature` adds the clock
 * and the key lookup and says why a request is refused, in AWS's terms:
 * - `UnrecognizedClientException`: no signature at all, or an access key this host does not know;
 * - `InvalidSignatureException`: a malformed Authorization header or scope, a missing or stale
 *   date (more than 5 minutes off), a payload hash that is not the body's, or a wrong signature.
 *
 * Rules followed (AWS's SigV4 documentation, non-S3 services such as Lambda):
 * - canonical URI: the path as sent, `.`/`..`/empty segments removed, then every byte that is not
 *   unreserved (A-Z a-z 0-9 - _ . ~) or `/` percent-encoded again (so `%3A` becomes `%253A`);
 * - canonical query: each `name=value` pair decoded then encoded strictly, sorted by name, then value;
 * - canonical headers: the signed headers (lower-case, in SignedHeaders order), each value the
 *   header's values in arrival order, trimmed, inner runs of spaces folded, joined with `,`;
 * - payload: hex sha256 of the body. Lambda signs the body: an `X-Amz-Content-Sha256` header that
 *   is not the body's hash (`UNSIGNED-PAYLOAD` included) is refused.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
/** How far the request's time may be from ours. */
export const MAX_SKEW_MS = 5 * 60 * 1000;

/** A request as it arrived, before any decoding. */
export interface RawRequest {
  method: string;
  /** The path as sent, percent-encoding intact, without the query. */
  path: string;
  /** The query as sent, without `?` ('' when none). */
  query: string;
  /** Header names and values in arrival order (node's `rawHeaders` as pairs). */
  headers: ReadonlyArray<readonly [string, string]>;
}

const UNRESERVED = /[A-Za-z0-9\-_.~]/;

const PLAIN = /^[A-Za-z0-9\-_.~]*$/;
const PLAIN_PATH = /^[A-Za-z0-9\-_.~/]*$/;

/** Percent-encodes every byte of `s` (UTF-8) except unreserved characters and those in `keep` ('' or '/'). */
export function uriEncode(s: string, keep = ''): string {
  if ((keep === '/' ? PLAIN_PATH : keep === '' ? PLAIN : undefined)?.test(s)) return s;
  if (keep === '' || keep === '/') {
    try {
      // encodeURIComponent leaves !'()* as they are; RFC 3986 (and SigV4) encodes them.
      const e = encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
      return keep === '/' ? e.replace(/%2F/g, '/') : e;
    } catch {
      // A lone surrogate: encoded byte by byte below (as its UTF-8 replacement character).
    }
  }
  let out = '';
  for (const ch of s) {
    if (UNRESERVED.test(ch) || keep.includes(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Decodes `%XX` escapes; a malformed escape stays as it is (it is then encoded as text). */
function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const hex = s.slice(i + 1, i + 3);
    if (s[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else for (const b of Buffer.from(s[i], 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The canonical URI of a raw path (see the module comment). */
export function canonicalUri(rawPath: string): string {
  const segs: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segs.pop();
    else segs.push(seg);
  }
  const path = (rawPath.startsWith('/') || segs.length === 0 ? '/' : '') + segs.join('/') + (segs.length > 0 && rawPath.endsWith('/') ? '/' : '');
  return uriEncode(path, '/');
}

/** The canonical query string of a raw query (without `?`). */
export function canonicalQuery(rawQuery: string): string {
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uriEncode(percentDecode(k)), uriEncode(percentDecode(v))]);
  }
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** `name:value\n` for each signed header, values as the module comment says. Absent headers give `name:`. */
export function canonicalHeaders(headers: RawRequest['headers'], signed: readonly string[]): string {
  const values = new Map<string, string[]>();
  for (const [name, value] of headers) {
    const k = name.toLowerCase();
    const list = values.get(k) ?? [];
    const v = value.trim();
    list.push(v.includes('  ') ? v.replace(/ +/g, ' ') : v);
    values.set(k, list);
  }
  return signed.map((h) => `${h}:${(values.get(h) ?? []).join(',')}\n`).join('');
}

/** The canonical request (the whole text that is hashed into the string to sign). */
export function canonicalRequest(req: RawRequest, signedHeaders: readonly string[], payloadHash: string): string {
  return [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQuery(req.query),
    canonicalHeaders(req.headers, signedHeaders),
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

/** Node's one-shot hash (20.12+) when present: no Hash object per call. */
const oneShot = (nodeCrypto as { hash?: (alg: string, data: string | Buffer, enc: 'hex') => string }).hash;
export const sha256Hex = (data: string | Buffer): string => (oneShot ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex'));
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** The string to sign for a canonical request. */
export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
}

/** The signing key: HMAC chain over date, region, service and `aws4_request`. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
}

/** Signing keys derived recently (a key is valid for a day; AWS's own clients cache them too). */
const keyCache = new Map<string, Buffer>();
const KEY_CACHE_SIZE = 256;

function cachedSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${secret}\n${date}\n${region}\n${service}`;
  let key = keyCache.get(id);
  if (key === undefined) {
    key = signingKey(secret, date, region, service);
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value as string);
    keyCache.set(id, key);
  }
  return key;
}

/** The parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`. */
export interface AuthorizationFields {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** Parses an Authorization header; returns a string saying what is wrong when it is malformed. */
export function parseAuthorization(value: string): AuthorizationFields | string {
  if (!value.startsWith(ALGORITHM + ' ')) return `Authorization must start with ${ALGORITHM}`;
  const fields = new Map<string, string>();
  for (const part of value.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return `Authorization component ${JSON.stringify(part.trim())} is not name=value`;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const cred = fields.get('Credential');
  const signed = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (cred === undefined || signed === undefined || signature === undefined) return 'Authorization needs Credential, SignedHeaders and Signature';
  const scope = cred.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !/^\d{8}$/.test(scope[1]) || scope.some((s) => s === ''))
    return 'Credential must be AccessKeyId/YYYYMMDD/region/service/aws4_request';
  if (!/^[0-9a-f]{64}$/.test(signature)) return 'Signature must be 64 lower-case hex digits';
  const signedHeaders = signed.split(';');
  if (signedHeaders.some((h) => h === '' || h !== h.toLowerCase())) return 'SignedHeaders must be lower-case names separated by ;';
  return { accessKeyId: scope[0], date: scope[1], region: scope[2], service: scope[3], signedHeaders, signature };
}

/** `20150830T123600Z` → ms since the epoch, or undefined when malformed. */
export function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  // Date.UTC rolls impossible fields over (month 13, 30 February, hour 24): such a date is refused.
  return Number.isNaN(t) || new Date(t).toISOString().replace(/[-:]|\.\d{3}/g, '') !== s ? undefined : t;
}

export type VerifyResult =
  { ok: true; accessKeyId: string; region: string } | { ok: false; type: 'UnrecognizedClientException' | 'InvalidSignatureException'; message: string };

export interface VerifyOptions {
  /** The secret of an access key id, undefined when unknown. */
  secretOf: (accessKeyId: string) => string | undefined;
  /** The service name the scope must carry. */
  service: string;
  now: number;
}

const refuse = (type: 'UnrecognizedClientException' | 'InvalidSignatureException', message: string): VerifyResult => ({ ok: false, type, message });

/** Verifies a request's SigV4 Authorization header against the body it came with. */
export function verifySignature(req: RawRequest, body: Buffer, opts: VerifyOptions): VerifyResult {
  const header = (name: string): string | undefined => {
    for (const [k, v] of req.headers) if (k.length === name.length && k.toLowerCase() === name) return v;
    return undefined;
  };
  const authz = header('authorization');
  if (authz === undefined)
    return refuse('UnrecognizedClientException', 'The request is not signed: an Authorization header (AWS Signature Version 4) is required.');
  const a = parseAuthorization(authz);
  if (typeof a === 'string') return refuse('InvalidSignatureException', a);
  const secret = opts.secretOf(a.accessKeyId);
  if (secret === undefined) return refuse('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (a.service !== opts.service) return refuse('InvalidSignatureException', `Credential should be scoped to correct service: '${opts.service}'.`);
  if (!a.signedHeaders.includes('host')) return refuse('InvalidSignatureException', "'Host' must be a signed header.");
  const amzDate = header('x-amz-date') ?? header('date');
  const t = amzDate === undefined ? undefined : parseAmzDate(amzDate);
  if (amzDate === undefined || t === undefined) return refuse('InvalidSignatureException', 'X-Amz-Date must be present and in the form YYYYMMDDTHHMMSSZ.');
  if (!amzDate.startsWith(a.date)) return refuse('InvalidSignatureException', `Credential should be scoped to a valid date, '${amzDate.slice(0, 8)}'.`);
  if (Math.abs(opts.now - t) > MAX_SKEW_MS) {
    return refuse(
      'InvalidSignatureException',
      `Signature expired or not yet valid: ${amzDate} is more than 5 minutes from the server time ${amzTime(opts.now)}.`,
    );
  }
  const payloadHash = sha256Hex(body);
  const claimed = header('x-amz-content-sha256');
  if (claimed !== undefined && claimed !== payloadHash) {
    return refuse('InvalidSignatureException', 'X-Amz-Content-Sha256 must be the hex sha256 of the body (this service signs the payload).');
  }
  const scope = `${a.date}/${a.region}/${a.service}/aws4_request`;
  const canonical = canonicalRequest(req, a.signedHeaders, payloadHash);
  const expected = createHmac('sha256', cachedSigningKey(secret, a.date, a.region, a.service))
    .update(stringToSign(amzDate, scope, canonical))
    .digest();
  const given = Buffer.from(a.signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return refuse(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  }
  return { ok: true, accessKeyId: a.accessKeyId, region: a.region };
}

/** ms since the epoch → `20150830T123600Z`. */
export function amzTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}
