/**
 * The control API's routes: request parsing and validation at the edge, then one call into a
 * service (services.ts). No route holds state.
 */
import type { SyncInvokeOptions, SyncInvokeResult } from '../dispatch/dispatcher.js';
import { HearthError } from '../errors.js';
import type { FunctionRecord } from '../registry/function-spec.js';
import type { AccessKeyInfo, NewAccessKey } from './access-keys.js';
import { validateFunctionName } from '../names.js';
import type { ApiReply, ApiRequest, Route } from './server.js';
import { parseJson } from './server.js';

const MiB = 1024 * 1024;
export const limits = {
  /** A synchronous event. */
  invokeBody: 6 * MiB,
  /** One async event. */
  eventBody: 256 * 1024,
  /** A batch of async events. */
  batchBody: 6 * MiB,
  /** A deploy: 50 MiB of code, base64 (4/3) plus the JSON around it. */
  deployBody: Math.ceil((50 * MiB * 4) / 3) + 64 * 1024,
  small: 64 * 1024,
};

/** Throws INVALID_NAME unless `name` is a valid function name (network names pass this and net's stricter rule). */
export const checkName = validateFunctionName;

/** `?since=`: an age (`10m`) before now, or a time. */
export type Since = { ageMs: number } | { atMs: number };

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** Parses `30s`, `10m`, `2h`, `1d` or an ISO-8601 time; throws BAD_REQUEST. */
export function parseSince(text: string): Since {
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(text);
  if (m) return { ageMs: Number(m[1]) * UNITS[m[2]] };
  const at = /^\d{4}-\d{2}-\d{2}T/.test(text) ? Date.parse(text) : NaN;
  if (Number.isFinite(at)) return { atMs: at };
  throw new HearthError('BAD_REQUEST', `since must be an age (30s, 10m, 2h, 1d) or an ISO-8601 time, got '${text}'`);
}

/** What the routes call; services.ts builds it from the components the daemon wired. */
type Maybe<T> = T | Promise<T>;

export interface ApiServices {
  health(): Maybe<unknown>;
  putFunction(name: string, body: unknown): Promise<{ record: FunctionRecord; created: boolean }>;
  /** Changes a function's configuration, keeping its code (`body`: a deploy body without `code`). */
  reconfigureFunction(name: string, body: unknown): Promise<FunctionRecord>;
  listFunctions(): Maybe<FunctionRecord[]>;
  getFunction(name: string): Maybe<FunctionRecord>;
  deleteFunction(name: string): Promise<void>;
  invoke(name: string, event: unknown, opts?: SyncInvokeOptions): Promise<SyncInvokeResult>;
  pool(): Maybe<unknown>;
  model(name: string): Maybe<unknown>;
  submitEvent(name: string, payload: string, idempotencyKey: string | undefined): Promise<{ id: string }>;
  submitBatch(name: string, payloads: string[]): Promise<{ ids: string[] }>;
  getEvent(id: string): Maybe<unknown>;
  listEvents(filter: { function?: string; status?: string; limit: number }): Maybe<unknown[]>;
  redriveEvent(id: string): Maybe<unknown>;
  queueStats(): Maybe<unknown>;
  /** The last `last` invocations of a function, newest first. */
  invocations(name: string, last: number): Promise<unknown>;
  /** A function's output lines since an age before now or a time, oldest first. */
  logs(name: string, since: Since): Promise<unknown>;
  putNetwork(name: string, body: unknown): Promise<{ record: unknown; created: boolean }>;
  listNetworks(): Maybe<unknown[]>;
  deleteNetwork(name: string): Promise<void>;
  /** Lambda API access keys: the secret is returned by `createKey` only. */
  createKey(name: unknown): Promise<NewAccessKey>;
  listKeys(): Maybe<AccessKeyInfo[]>;
  deleteKey(id: string): Promise<void>;
}

export function buildRoutes(s: ApiServices): Route[] {
  const ok = async (body: unknown, status = 200): Promise<ApiReply> => ({ status, body: await body });
  const fnName = (r: ApiRequest): string => checkName(r.params['name']);
  return [
    { method: 'GET', pattern: '/v1/health', maxBody: 0, handler: () => ok(s.health()) },
    {
      method: 'PUT',
      pattern: '/v1/functions/{name}',
      maxBody: limits.deployBody,
      handler: async (r) => {
        const name = fnName(r);
        const body = parseJson(r.body);
        await requireRootForNetworkDeploy(r, s, name, body);
        const { record, created } = await s.putFunction(name, body);
        return ok(record, created ? 201 : 200);
      },
    },
    { method: 'GET', pattern: '/v1/functions', maxBody: 0, handler: async () => ok({ functions: await s.listFunctions() }) },
    { method: 'GET', pattern: '/v1/functions/{name}', maxBody: 0, handler: (r) => ok(s.getFunction(fnName(r))) },
    {
      method: 'DELETE',
      pattern: '/v1/functions/{name}',
      maxBody: 0,
      handler: async (r) => {
        await s.deleteFunction(fnName(r));
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      pattern: '/v1/functions/{name}/invoke',
      maxBody: limits.invokeBody,
      handler: async (r) => {
        const name = fnName(r);
        const event = r.body.length === 0 ? {} : parseJson(r.body, 'event');
        return ok(await s.invoke(name, event));
      },
    },
    { method: 'GET', pattern: '/v1/functions/{name}/model', maxBody: 0, handler: (r) => ok(s.model(fnName(r))) },
    {
      method: 'GET',
      pattern: '/v1/functions/{name}/invocations',
      maxBody: 0,
      handler: async (r) => {
        const name = fnName(r);
        const text = r.query.get('last');
        const last = text === null ? 20 : Number(text);
        if (!Number.isInteger(last) || last < 1 || last > 1000) throw new HearthError('BAD_REQUEST', 'last must be an integer 1-1000');
        return ok({ invocations: await s.invocations(name, last) });
      },
    },
    {
      method: 'GET',
      pattern: '/v1/functions/{name}/logs',
      maxBody: 0,
      handler: async (r) => {
        const name = fnName(r);
        return ok({ lines: await s.logs(name, parseSince(r.query.get('since') ?? '1h')) });
      },
    },
    {
      method: 'POST',
      pattern: '/v1/functions/{name}/events',
      maxBody: limits.eventBody,
      handler: async (r) => {
        const name = fnName(r);
        const text = r.body.length === 0 ? '{}' : r.body.toString('utf8');
        parseJson(r.body.length === 0 ? Buffer.from('{}') : r.body, 'event');
        const key = header(r, 'idempotency-key');
        if (key !== undefined && (key.length === 0 || key.length > 256)) throw new HearthError('BAD_REQUEST', 'Idempotency-Key must be 1-256 characters');
        return ok(await s.submitEvent(name, text, key), 202);
      },
    },
    {
      method: 'POST',
      pattern: '/v1/functions/{name}/events/batch',
      maxBody: limits.batchBody,
      handler: async (r) => {
        const name = fnName(r);
        const arr = parseJson(r.body, 'batch');
        if (!Array.isArray(arr)) throw new HearthError('BAD_REQUEST', 'batch body must be a JSON array of events');
        if (arr.length === 0) throw new HearthError('BAD_REQUEST', 'batch is empty');
        if (arr.length > 10_000) throw new HearthError('PAYLOAD_TOO_LARGE', `batch of ${arr.length} events exceeds 10000`);
        const payloads = arr.map((e, i) => {
          const t = JSON.stringify(e);
          if (Buffer.byteLength(t) > limits.eventBody) throw new HearthError('PAYLOAD_TOO_LARGE', `event ${i} of the batch exceeds ${limits.eventBody} bytes`);
          return t;
        });
        return ok(await s.submitBatch(name, payloads), 202);
      },
    },
    {
      method: 'GET',
      pattern: '/v1/events',
      maxBody: 0,
      handler: async (r) => {
        const limit = r.query.get('limit') ? Number(r.query.get('limit')) : 100;
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HearthError('BAD_REQUEST', 'limit must be an integer 1-10000');
        const status = r.query.get('status') ?? undefined;
        if (status && !['queued', 'running', 'succeeded', 'failed', 'dead'].includes(status))
          throw new HearthError('BAD_REQUEST', `unknown status '${status}'`);
        const fn = r.query.get('function') ?? undefined;
        if (fn) checkName(fn);
        return ok({ events: await s.listEvents({ ...(fn ? { function: fn } : {}), ...(status ? { status } : {}), limit }) });
      },
    },
    { method: 'GET', pattern: '/v1/events/{id}', maxBody: 0, handler: (r) => ok(s.getEvent(r.params['id'])) },
    { method: 'POST', pattern: '/v1/events/{id}/redrive', maxBody: limits.small, handler: (r) => ok(s.redriveEvent(r.params['id']), 202) },
    { method: 'GET', pattern: '/v1/queue', maxBody: 0, handler: () => ok(s.queueStats()) },
    { method: 'GET', pattern: '/v1/pool', maxBody: 0, handler: () => ok(s.pool()) },
    {
      method: 'PUT',
      pattern: '/v1/networks/{name}',
      maxBody: limits.small,
      handler: async (r) => {
        const name = checkName(r.params['name'], 'network');
        requireRoot(r, `creating or changing network '${name}'`);
        const { record, created } = await s.putNetwork(name, parseJson(r.body));
        return ok(record, created ? 201 : 200);
      },
    },
    { method: 'GET', pattern: '/v1/networks', maxBody: 0, handler: async () => ok({ networks: await s.listNetworks() }) },
    {
      method: 'DELETE',
      pattern: '/v1/networks/{name}',
      maxBody: 0,
      handler: async (r) => {
        const name = checkName(r.params['name'], 'network');
        requireRoot(r, `deleting network '${name}'`);
        await s.deleteNetwork(name);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      pattern: '/v1/keys',
      maxBody: limits.small,
      handler: async (r) => ok(await s.createKey((parseJson(r.body) as { name?: unknown } | null)?.name), 201),
    },
    { method: 'GET', pattern: '/v1/keys', maxBody: 0, handler: async () => ok({ keys: await s.listKeys() }) },
    {
      method: 'DELETE',
      pattern: '/v1/keys/{id}',
      maxBody: 0,
      handler: async (r) => {
        await s.deleteKey(r.params['id']);
        return { status: 204 };
      },
    },
  ];
}

/**
 * Networks reach beyond the instance (a gateway, other functions' instances): only root (uid 0 by
 * SO_PEERCRED) may create, change or delete them, or put a function on one, move it or take it off.
 * FORBIDDEN for anyone else (a member of the socket group may do everything else).
 */
export function requireRoot(r: ApiRequest, what: string): void {
  if (r.peer.uid !== 0) throw new HearthError('FORBIDDEN', `${what} requires root; uid ${r.peer.uid} may not (docs/api.md, Who may do what)`);
}

async function requireRootForNetworkDeploy(r: ApiRequest, s: ApiServices, name: string, body: unknown): Promise<void> {
  if (r.peer.uid === 0) return;
  const wanted = body !== null && typeof body === 'object' ? (body as { network?: unknown }).network : undefined;
  if (wanted !== undefined && wanted !== null) requireRoot(r, `deploying function '${name}' with a network`);
  let current: unknown;
  try {
    current = await s.getFunction(name);
  } catch {
    return; // a new function (or one that cannot be read): nothing to move off a network
  }
  const on = current !== null && typeof current === 'object' ? (current as { network?: unknown }).network : undefined;
  if (typeof on === 'string' && on !== '') requireRoot(r, `redeploying function '${name}', which is on network '${on}'`);
}

function header(r: ApiRequest, name: string): string | undefined {
  return r.headers[name];
}
