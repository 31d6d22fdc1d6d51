/**
 * The Lambda API's operations (2015-03-31 paths, and the concurrency operations' own dates), each
 * a translation of AWS's request into one or two calls of the control API's services and of the
 * answer back into AWS's shape. No state here: a function made through this API is the same
 * FunctionRecord `hearth deploy` makes.
 */
import type { ApiServices } from '../control/routes.js';
import type { FunctionRecord } from '../registry/function-spec.js';
import { LambdaError, invalidParameter } from './aws-errors.js';
import { invoke, invokeBodyLimit } from './invoke.js';
import {
  configFields,
  DEFAULT_CONCURRENCY,
  functionConfiguration,
  hearthConfig,
  jsonObject,
  parseFunctionName,
  reservedConcurrency,
  revisionId,
  zipFile,
  type RuntimeNames,
} from './shapes.js';

export interface OperationContext {
  services: ApiServices;
  region: string;
  runtimeNames: RuntimeNames;
}

export interface LambdaRequest {
  /** Path parameters, decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** A request header (lower-case name), undefined when absent. */
  header(name: string): string | undefined;
  body: Buffer;
  /** The id answered in x-amzn-RequestId (Invoke: the invocation's id). */
  requestId: string;
}

export interface LambdaReply {
  status: number;
  headers?: Record<string, string>;
  /** A Buffer is sent as is; anything else as JSON. */
  body?: unknown;
  /** Overrides the reply's x-amzn-RequestId. */
  requestId?: string;
}

export interface Operation {
  name: string;
  method: string;
  /** Path segments; `{name}` matches one segment. */
  path: string;
  /** Largest body accepted (before reading it). */
  maxBody: (header: (name: string) => string | undefined) => number;
  run(ctx: OperationContext, req: LambdaRequest): Promise<LambdaReply>;
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** A deploy: 50 MB zipped code, base64, plus the JSON around it (Lambda's direct-upload limit). */
const DEPLOY_BODY = Math.ceil((50 * MiB * 4) / 3) + 64 * KiB;
const SMALL_BODY = 256 * KiB;

const fn = (req: LambdaRequest): string => parseFunctionName(req.params['name'], req.query.get('Qualifier'));
const config = (ctx: OperationContext, r: FunctionRecord): Record<string, unknown> => functionConfiguration(r, ctx.region, ctx.runtimeNames);

function checkRevision(body: Record<string, unknown>, current: FunctionRecord): void {
  const want = body['RevisionId'];
  if (want !== undefined && want !== revisionId(current)) {
    throw new LambdaError(
      'PreconditionFailedException',
      412,
      'The Revision Id provided does not match the latest Revision Id. Call GetFunction to get the latest Revision Id',
    );
  }
}

async function current(ctx: OperationContext, name: string): Promise<FunctionRecord> {
  return ctx.services.getFunction(name);
}

export const OPERATIONS: readonly Operation[] = [
  {
    name: 'CreateFunction',
    method: 'POST',
    path: '/2015-03-31/functions',
    maxBody: () => DEPLOY_BODY,
    run: async (ctx, req) => {
      const b = jsonObject(req.body);
      const name = parseFunctionName(b['FunctionName']);
      const body: Record<string, unknown> = { ...configFields(b), code: zipFile(b['Code'], 'Code') };
      if (body['runtime'] === undefined) throw invalidParameter('Runtime: is required for a Zip function');
      if ((await ctx.services.listFunctions()).some((r) => r.name === name))
        throw new LambdaError('ResourceConflictException', 409, `Function already exist: ${name}`);
      const { record } = await ctx.services.putFunction(name, body);
      return { status: 201, body: config(ctx, record) };
    },
  },
  {
    name: 'ListFunctions',
    method: 'GET',
    path: '/2015-03-31/functions',
    maxBody: () => 0,
    run: async (ctx, req) => {
      const maxText = req.query.get('MaxItems');
      const max = maxText === null ? 50 : Number(maxText);
      if (!Number.isInteger(max) || max < 1 || max > 10_000) throw invalidParameter('MaxItems: must be an integer 1-10000');
      const marker = req.query.get('Marker');
      const all = await ctx.services.listFunctions();
      const from = marker ? all.filter((r) => r.name > marker) : all;
      const page = from.slice(0, max);
      const next = from.length > max ? { NextMarker: page[page.length - 1].name } : {};
      return { status: 200, body: { Functions: page.map((r) => config(ctx, r)), ...next } };
    },
  },
  {
    name: 'GetFunction',
    method: 'GET',
    path: '/2015-03-31/functions/{name}',
    maxBody: () => 0,
    run: async (ctx, req) => {
      const r = await current(ctx, fn(req));
      return {
        status: 200,
        body: { Configuration: config(ctx, r), Code: { RepositoryType: 'Hearth' }, Concurrency: { ReservedConcurrentExecutions: r.concurrency } },
      };
    },
  },
  {
    name: 'GetFunctionConfiguration',
    method: 'GET',
    path: '/2015-03-31/functions/{name}/configuration',
    maxBody: () => 0,
    run: async (ctx, req) => ({ status: 200, body: config(ctx, await current(ctx, fn(req))) }),
  },
  {
    name: 'UpdateFunctionCode',
    method: 'PUT',
    path: '/2015-03-31/functions/{name}/code',
    maxBody: () => DEPLOY_BODY,
    run: async (ctx, req) => {
      const name = fn(req);
      const b = jsonObject(req.body);
      if (b['DryRun'] === true) throw invalidParameter('DryRun: not supported by UpdateFunctionCode on Hearth');
      if (b['Publish'] === true) throw invalidParameter('Publish: Hearth has no versions; only $LATEST exists');
      const code = zipFile(b, 'UpdateFunctionCode');
      const r = await current(ctx, name);
      checkRevision(b, r);
      const { record } = await ctx.services.putFunction(name, { ...hearthConfig(r), code });
      return { status: 200, body: config(ctx, record) };
    },
  },
  {
    name: 'UpdateFunctionConfiguration',
    method: 'PUT',
    path: '/2015-03-31/functions/{name}/configuration',
    maxBody: () => SMALL_BODY,
    run: async (ctx, req) => {
      const name = fn(req);
      const b = jsonObject(req.body);
      const changes = configFields(b);
      const r = await current(ctx, name);
      checkRevision(b, r);
      const record = await ctx.services.reconfigureFunction(name, { ...hearthConfig(r), ...changes });
      return { status: 200, body: config(ctx, record) };
    },
  },
  {
    name: 'DeleteFunction',
    method: 'DELETE',
    path: '/2015-03-31/functions/{name}',
    maxBody: () => 0,
    run: async (ctx, req) => {
      await ctx.services.deleteFunction(fn(req));
      return { status: 204 };
    },
  },
  {
    name: 'Invoke',
    method: 'POST',
    path: '/2015-03-31/functions/{name}/invocations',
    maxBody: invokeBodyLimit,
    run: (ctx, req) => invoke(ctx.services, fn(req), req),
  },
  {
    name: 'PutFunctionConcurrency',
    method: 'PUT',
    path: '/2017-10-31/functions/{name}/concurrency',
    maxBody: () => SMALL_BODY,
    run: async (ctx, req) => {
      const name = parseFunctionName(req.params['name']);
      const n = reservedConcurrency(jsonObject(req.body));
      const r = await current(ctx, name);
      await ctx.services.reconfigureFunction(name, { ...hearthConfig(r), concurrency: n });
      return { status: 200, body: { ReservedConcurrentExecutions: n } };
    },
  },
  {
    name: 'GetFunctionConcurrency',
    method: 'GET',
    path: '/2019-09-30/functions/{name}/concurrency',
    maxBody: () => 0,
    run: async (ctx, req) => {
      const r = await current(ctx, parseFunctionName(req.params['name']));
      return { status: 200, body: { ReservedConcurrentExecutions: r.concurrency } };
    },
  },
  {
    name: 'DeleteFunctionConcurrency',
    method: 'DELETE',
    path: '/2017-10-31/functions/{name}/concurrency',
    maxBody: () => 0,
    run: async (ctx, req) => {
      const name = parseFunctionName(req.params['name']);
      const r = await current(ctx, name);
      if (r.concurrency !== DEFAULT_CONCURRENCY) await ctx.services.reconfigureFunction(name, { ...hearthConfig(r), concurrency: DEFAULT_CONCURRENCY });
      return { status: 204 };
    },
  },
];

/** The operation for a method and decoded path segments, with its path parameters; undefined when none. */
export function matchOperation(method: string, segments: readonly string[]): { op: Operation; params: Record<string, string> } | undefined {
  for (const op of OPERATIONS) {
    if (op.method !== method) continue;
    const want = op.path.split('/').filter((s) => s !== '');
    if (want.length !== segments.length) continue;
    const params: Record<string, string> = {};
    if (want.every((w, i) => (w.startsWith('{') ? ((params[w.slice(1, -1)] = segments[i]), true) : w === segments[i]))) return { op, params };
  }
  return undefined;
}
