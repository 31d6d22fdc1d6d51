/**
 * Translations between the Lambda API's shapes and Hearth's: function names and ARNs, runtime
 * names, a FunctionRecord as a FunctionConfiguration, and Lambda request fields as the fields of
 * Hearth's deploy body. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import { arch } from 'node:os';
import { FUNCTION_DEFAULTS, RUNTIMES, type FunctionRecord, type Runtime } from '../registry/function-spec.js';
import { invalidParameter, LambdaError, notFound } from './aws-errors.js';

/** The account id in the ARNs Hearth shows (one host, one account). */
export const ACCOUNT_ID = '000000000000';
export const LATEST = '$LATEST';

/**
 * Lambda runtime names and the Hearth runtime each runs on. A name whose Hearth runtime this
 * build does not have (RUNTIMES) is refused with a 400 naming it.
 */
export const RUNTIME_TABLE: Readonly<Record<string, string>> = {
  'python3.9': 'python',
  'python3.10': 'python',
  'python3.11': 'python',
  'python3.12': 'python',
  'python3.13': 'python',
  'nodejs18.x': 'node',
  'nodejs20.x': 'node',
  'nodejs22.x': 'node',
  'provided.al2': 'provided',
  'provided.al2023': 'provided',
};

/** The Hearth runtime for a Lambda runtime name; throws InvalidParameterValueException. */
export function hearthRuntime(name: unknown): Runtime {
  if (typeof name !== 'string') throw invalidParameter('Runtime: is required (e.g. python3.12, nodejs20.x, provided.al2023)');
  const rt = RUNTIME_TABLE[name];
  if (rt === undefined)
    throw invalidParameter(`Runtime: ${JSON.stringify(name)} is not supported by Hearth; supported: ${Object.keys(RUNTIME_TABLE).join(', ')}`);
  if (!(RUNTIMES as readonly string[]).includes(rt)) throw invalidParameter(`Runtime: ${name} needs Hearth's "${rt}" runtime, which this daemon does not have`);
  return rt as Runtime;
}

/** How a Hearth runtime is named in answers: the runtime the host really runs. */
export interface RuntimeNames {
  node: string;
  python: string;
  [other: string]: string;
}

export function defaultRuntimeNames(pythonVersion?: string): RuntimeNames {
  return { node: `nodejs${process.versions.node.split('.')[0]}.x`, python: pythonVersion ? `python${pythonVersion}` : 'python3', provided: 'provided.al2023' };
}

/**
 * A FunctionName as the API takes it (name, `name:qualifier`, partial `account:function:name` or
 * a full ARN) → the function's name. Only the `$LATEST` qualifier exists on Hearth.
 */
export function parseFunctionName(raw: unknown, qualifier?: string | null): string {
  if (typeof raw !== 'string' || raw === '') throw invalidParameter('FunctionName: is required');
  let name = raw;
  let qual: string | undefined;
  const arn = /^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]*:\d{12}:function:([^:]+)(?::([^:]+))?$/.exec(raw);
  const partial = /^\d{12}:function:([^:]+)(?::([^:]+))?$/.exec(raw);
  const m = arn ?? partial;
  if (m) [name, qual] = [m[1], m[2]];
  else if (raw.includes(':')) {
    const parts = raw.split(':');
    if (parts.length !== 2) throw invalidParameter(`FunctionName: ${JSON.stringify(raw)} is not a function name or ARN`);
    [name, qual] = parts;
  }
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw invalidParameter(`FunctionName: ${JSON.stringify(raw)} must be 1-64 of A-Z a-z 0-9 _ - (or an ARN)`);
  for (const q of [qual, qualifier ?? undefined]) {
    if (q !== undefined && q !== LATEST)
      throw notFound(`Function not found: ${functionArn('us-east-1', name)}:${q} (Hearth has no versions or aliases, only $LATEST)`);
  }
  return name;
}

export const functionArn = (region: string, name: string): string => `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${name}`;

/** `2024-05-01T10:00:00.000+0000`, Lambda's LastModified format. */
const lastModified = (iso: string): string => iso.replace(/Z$/, '+0000');

/** The revision id: changes whenever the function does. */
export function revisionId(r: FunctionRecord): string {
  const h = createHash('sha256').update(`${r.codeSha256}/${r.updatedAt}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A record as the Lambda API's FunctionConfiguration. */
export function functionConfiguration(r: FunctionRecord, region: string, names: RuntimeNames): Record<string, unknown> {
  return {
    FunctionName: r.name,
    FunctionArn: functionArn(region, r.name),
    Runtime: names[r.runtime] ?? r.runtime,
    Role: `arn:aws:iam::${ACCOUNT_ID}:role/hearth`,
    Handler: r.handler,
    CodeSize: r.codeSize,
    Description: r.description ?? '',
    Timeout: Math.ceil(r.timeoutMs / 1000),
    MemorySize: r.memoryMb,
    LastModified: lastModified(r.updatedAt),
    CodeSha256: Buffer.from(r.codeSha256, 'hex').toString('base64'),
    Version: LATEST,
    Environment: { Variables: { ...r.env } },
    RevisionId: revisionId(r),
    State: 'Active',
    LastUpdateStatus: 'Successful',
    PackageType: 'Zip',
    Architectures: [arch() === 'arm64' ? 'arm64' : 'x86_64'],
    EphemeralStorage: { Size: 512 },
    TracingConfig: { Mode: 'PassThrough' },
  };
}

/** A record's configuration as a Hearth deploy body without code (what reconfigure takes). */
export function hearthConfig(r: FunctionRecord): Record<string, unknown> {
  const body: Record<string, unknown> = {
    runtime: r.runtime,
    handler: r.handler,
    memoryMb: r.memoryMb,
    timeoutMs: r.timeoutMs,
    env: { ...r.env },
    concurrency: r.concurrency,
    retries: r.retries,
    maxEventAgeS: r.maxEventAgeS,
    schedules: [...r.schedules],
  };
  if (r.network !== undefined) body['network'] = r.network;
  if (r.description !== undefined) body['description'] = r.description;
  return body;
}

type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => x !== null && typeof x === 'object' && !Array.isArray(x);

/** The request body as an object; InvalidRequestContentException when it is not one. */
export function jsonObject(body: Buffer): Json {
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new LambdaError('InvalidRequestContentException', 400, `Could not parse request body into json: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new LambdaError('InvalidRequestContentException', 400, 'Could not parse request body into json: expected an object');
  return v;
}

/** Refuses what Hearth would otherwise silently ignore but changes what the function is. */
function refuseUnsupported(b: Json): void {
  if (Array.isArray(b['Layers']) && b['Layers'].length > 0) throw invalidParameter('Layers: Hearth does not support layers; put the code in the bundle');
  if (b['PackageType'] !== undefined && b['PackageType'] !== 'Zip') throw invalidParameter('PackageType: only Zip is supported');
  if (b['Publish'] === true) throw invalidParameter('Publish: Hearth has no versions; only $LATEST exists');
  const vpc = b['VpcConfig'];
  if (isObject(vpc) && Array.isArray(vpc['SubnetIds']) && vpc['SubnetIds'].length > 0)
    throw invalidParameter('VpcConfig: not supported; use a Hearth private network (docs/networks.md)');
  const archs = b['Architectures'];
  const ours = arch() === 'arm64' ? 'arm64' : 'x86_64';
  if (Array.isArray(archs) && archs.some((a) => a !== ours)) throw invalidParameter(`Architectures: this host runs ${ours} only`);
}

/**
 * The configuration fields of a CreateFunction or UpdateFunctionConfiguration body as Hearth
 * deploy-body fields (only those present). Type checks beyond the shape are Hearth's validation.
 */
export function configFields(b: Json): Json {
  refuseUnsupported(b);
  const out: Json = {};
  if (b['Runtime'] !== undefined) out['runtime'] = hearthRuntime(b['Runtime']);
  if (b['Handler'] !== undefined) out['handler'] = b['Handler'];
  if (b['MemorySize'] !== undefined) out['memoryMb'] = b['MemorySize'];
  if (b['Timeout'] !== undefined) {
    const t = b['Timeout'];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 900) throw invalidParameter('Timeout: must be an integer number of seconds, 1-900');
    out['timeoutMs'] = t * 1000;
  }
  if (b['Description'] !== undefined) out['description'] = b['Description'];
  if (b['Environment'] !== undefined) {
    const env = b['Environment'];
    if (!isObject(env)) throw invalidParameter('Environment: must be an object {"Variables": {...}}');
    out['env'] = env['Variables'] ?? {};
  }
  return out;
}

/** Code.ZipFile (base64, as the JSON carries it); anything else is refused. */
export function zipFile(code: unknown, where: string): string {
  const c = isObject(code) ? code : {};
  if (c['S3Bucket'] !== undefined || c['S3Key'] !== undefined || c['ImageUri'] !== undefined)
    throw invalidParameter(`${where}: Hearth takes the code inline only (ZipFile); S3 and image locations are not supported`);
  const z = c['ZipFile'];
  if (typeof z !== 'string' || z === '') throw invalidParameter(`${where}.ZipFile: is required (the zip archive of the code)`);
  return z;
}

/** ReservedConcurrentExecutions of a PutFunctionConcurrency body. */
export function reservedConcurrency(b: Json): number {
  const n = b['ReservedConcurrentExecutions'];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalidParameter('ReservedConcurrentExecutions: must be a non-negative integer');
  if (n === 0) throw invalidParameter('ReservedConcurrentExecutions: 0 (throttle every invocation) is not supported by Hearth; the minimum is 1');
  return n;
}

export const DEFAULT_CONCURRENCY = FUNCTION_DEFAULTS.concurrency;
