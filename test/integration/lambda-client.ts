/**
 * Helpers for the Lambda API's integration tests: a daemon with `--lambda-listen` on a free port
 * and an access key, the real AWS SDK client pointed at it, zip bundles, and raw requests signed
 * with the real SigV4 signer (@smithy/signature-v4) for the cases an SDK never sends.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { request } from 'node:http';
import { join } from 'node:path';
import { makeZip } from '../conformance/archives.js';
import { startHarness, type Harness } from './daemon-harness.js';

export interface LambdaHarness extends Harness {
  port: number;
  key: { accessKeyId: string; secretAccessKey: string };
  lambda: LambdaClient;
}

export async function startLambdaHarness(): Promise<LambdaHarness> {
  const h = await startHarness({ lambdaListen: '127.0.0.1:0' });
  try {
    const port = h.daemon.lambdaAddress()!.port;
    const key = await h.client.call<{ accessKeyId: string; secretAccessKey: string }>('POST', '/v1/keys', { name: 'test' });
    const lambda = new LambdaClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
    const stop = h.stop.bind(h);
    return {
      ...h,
      port,
      key,
      lambda,
      stop: async () => {
        lambda.destroy();
        await stop();
      },
    };
  } catch (err) {
    await h.stop();
    throw err;
  }
}

/** A fixture directory of test/integration/fixtures (from dist/test/integration). */
export const fixtureDir = (name: string): string => join(__dirname, '..', '..', '..', 'test', 'integration', 'fixtures', name);

/** A zip of `files` (name → text); names in `executable` get mode 0755 (a custom runtime's `bootstrap`). */
export const zip = (files: Record<string, string>, executable: readonly string[] = []): Uint8Array =>
  new Uint8Array(makeZip(Object.entries(files).map(([name, data]) => ({ name, data, mode: executable.includes(name) ? 0o100755 : 0o100644, deflate: true }))));

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface SignedRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
  /** Sign with these (default: the harness key). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  signingDate?: Date;
  /** Leave unsigned. */
  unsigned?: boolean;
  /** Change the body after signing. */
  bodyAfterSigning?: string;
}

/** Sends one request, signed by the real SigV4 signer unless `unsigned`. */
export async function signedRequest(h: LambdaHarness, r: SignedRequest): Promise<RawReply> {
  const body = r.body ?? '';
  let req = {
    method: r.method,
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: h.port,
    path: r.path,
    query: r.query ?? {},
    headers: { host: `127.0.0.1:${h.port}`, 'content-type': 'application/json', ...r.headers } as Record<string, string>,
    body,
  };
  if (!r.unsigned) {
    const signer = new SignatureV4({ credentials: r.credentials ?? h.key, region: 'us-east-1', service: 'lambda', sha256: Sha256 });
    req = (await signer.sign(req, r.signingDate ? { signingDate: r.signingDate } : {})) as typeof req;
  }
  const sent = r.bodyAfterSigning ?? body;
  const qs = new URLSearchParams(req.query).toString();
  return new Promise((resolve, reject) => {
    const c = request(
      {
        host: '127.0.0.1',
        port: h.port,
        method: req.method,
        path: req.path + (qs ? `?${qs}` : ''),
        headers: { ...req.headers, 'content-length': Buffer.byteLength(sent) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    c.on('error', reject);
    c.end(sent);
  });
}
