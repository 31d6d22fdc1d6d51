/**
 * Deploying, reading and removing functions: the registry's use cases, as the control API calls
 * them. Order of a deploy: name → body (every field) → network → code decoding → code store →
 * handler file present → record. Everything is validated before anything is written, and a
 * failure at any step leaves the registry unchanged and the store without a new bundle.
 *
 * Old bundles are not removed on update or delete (running instances may still have them
 * mounted); `gcCode` removes the unreferenced ones when the caller says which are still in use.
 */
import { HearthError } from '../errors.js';
import { handlerCandidates, sha256Hex, type CodeStore, type PutResult } from './code-store.js';
import {
  decodeCode,
  parseDeployRequest,
  parseFunctionConfig,
  validateFunctionName,
  type FunctionDefinition,
  type FunctionRecord,
  type Runtime,
  type ScheduleValidator,
} from './function-spec.js';
import type { FunctionRegistry, PutOutcome } from './registry.js';

export interface DeployOptions {
  /** The queue's schedule parser (see ScheduleValidator). Default: any non-empty string. */
  validateSchedule?: ScheduleValidator;
  /** Whether a network of that name exists; unset: any well-formed name is accepted. */
  networkExists?: (name: string) => boolean | Promise<boolean>;
  /** Refuse bundles that lack the handler's module file (default true). */
  checkHandler?: boolean;
  /**
   * After the module file is found: undefined when the handler's function is (or may be) defined,
   * else why not (see src/registry/handler-check.ts). Unset: not checked.
   */
  findHandlerFault?: (bundleDir: string, handler: string, runtime: Runtime) => Promise<string | undefined>;
}

export interface DeployOutcome extends PutOutcome {
  code: PutResult;
}

/** Bundles being deployed right now, by sha (so a failed deploy never removes one another uses). */
const deploying = new WeakMap<CodeStore, Map<string, number>>();

function hold(store: CodeStore, sha: string): () => void {
  let m = deploying.get(store);
  if (!m) deploying.set(store, (m = new Map<string, number>()));
  const map = m;
  map.set(sha, (map.get(sha) ?? 0) + 1);
  return () => {
    const n = (map.get(sha) ?? 1) - 1;
    if (n <= 0) map.delete(sha);
    else map.set(sha, n);
  };
}

/** Removes a bundle this deploy created, unless another deploy or function uses it. Best effort. */
async function discardNewBundle(store: CodeStore, registry: FunctionRegistry, code: PutResult): Promise<void> {
  if (code.reused) return;
  if ((deploying.get(store)?.get(code.sha256) ?? 0) > 1) return;
  const all = await registry.list();
  if (all.some((r) => r.codeSha256 === code.sha256)) return;
  await store.remove(code.sha256).catch(() => undefined);
}

/**
 * Validates a deploy request (parsed JSON body), stores its code, writes the record. Throws
 * INVALID_NAME, BAD_REQUEST (naming the field), NETWORK_NOT_FOUND, PAYLOAD_TOO_LARGE or
 * INVALID_ARCHIVE; on any error nothing has changed.
 */
export async function deploy(store: CodeStore, registry: FunctionRegistry, name: string, body: unknown, opts: DeployOptions = {}): Promise<DeployOutcome> {
  validateFunctionName(name);
  const req = parseDeployRequest(body, { validateSchedule: opts.validateSchedule });
  if (req.network !== undefined && opts.networkExists && !(await opts.networkExists(req.network))) {
    throw new HearthError('NETWORK_NOT_FOUND', `network: no network named ${JSON.stringify(req.network)}`);
  }
  const archive = decodeCode(req.code, store.limits.maxPackedBytes);
  // Held from before the store sees the bytes, so a concurrent gcCode never removes them.
  const release = hold(store, sha256Hex(archive));
  let code: PutResult | undefined;
  try {
    code = await store.put(archive);
    if (opts.checkHandler ?? true) {
      if (!(await store.hasHandlerFile(code.sha256, req.handler, req.runtime))) {
        if (req.runtime === 'provided') {
          throw new HearthError('BAD_REQUEST', 'code: a provided function needs an executable file named "bootstrap" at the root of its bundle');
        }
        const tried = handlerCandidates(req.handler, req.runtime).join(', ');
        throw new HearthError('BAD_REQUEST', `handler: the bundle has no module for ${JSON.stringify(req.handler)} (looked for ${tried})`);
      }
      const fault = await opts.findHandlerFault?.(store.path(code.sha256), req.handler, req.runtime);
      if (fault !== undefined) throw new HearthError('BAD_REQUEST', `handler: ${fault}`);
    }
    const { code: _code, ...config } = req;
    void _code;
    const def: FunctionDefinition = { ...config, codeSha256: code.sha256, codeSize: code.size };
    const outcome = await registry.put(name, def);
    return { ...outcome, code };
  } catch (err) {
    if (code) await discardNewBundle(store, registry, code);
    throw err;
  } finally {
    release();
  }
}

/**
 * Changes a function's configuration and keeps its code: `body` is a whole config (the deploy
 * body without `code`). Throws FUNCTION_NOT_FOUND, INVALID_NAME, BAD_REQUEST (naming the field,
 * also when the kept bundle has no module for a new handler); on any error nothing has changed.
 */
export async function reconfigure(store: CodeStore, registry: FunctionRegistry, name: string, body: unknown, opts: DeployOptions = {}): Promise<PutOutcome> {
  validateFunctionName(name);
  const config = parseFunctionConfig(body, { validateSchedule: opts.validateSchedule });
  const current = await registry.get(name);
  if (!current) throw new HearthError('FUNCTION_NOT_FOUND', `no function named ${JSON.stringify(name)}`);
  if (config.network !== undefined && opts.networkExists && !(await opts.networkExists(config.network))) {
    throw new HearthError('NETWORK_NOT_FOUND', `network: no network named ${JSON.stringify(config.network)}`);
  }
  const sha = current.codeSha256;
  const release = hold(store, sha);
  try {
    if ((opts.checkHandler ?? true) && (config.handler !== current.handler || config.runtime !== current.runtime)) {
      if (!(await store.hasHandlerFile(sha, config.handler, config.runtime))) {
        const tried = handlerCandidates(config.handler, config.runtime).join(', ');
        throw new HearthError('BAD_REQUEST', `handler: the bundle has no module for ${JSON.stringify(config.handler)} (looked for ${tried})`);
      }
      const fault = await opts.findHandlerFault?.(store.path(sha), config.handler, config.runtime);
      if (fault !== undefined) throw new HearthError('BAD_REQUEST', `handler: ${fault}`);
    }
    return await registry.put(name, { ...config, codeSha256: sha, codeSize: current.codeSize });
  } finally {
    release();
  }
}

/** The registry's use cases bound to one store and registry (what the control API holds). */
export class FunctionService {
  constructor(
    readonly store: CodeStore,
    readonly registry: FunctionRegistry,
    private readonly opts: DeployOptions = {},
  ) {}

  deploy(name: string, body: unknown): Promise<DeployOutcome> {
    return deploy(this.store, this.registry, name, body, this.opts);
  }

  reconfigure(name: string, body: unknown): Promise<PutOutcome> {
    return reconfigure(this.store, this.registry, name, body, this.opts);
  }

  list(): Promise<FunctionRecord[]> {
    return this.registry.list();
  }

  /** Throws INVALID_NAME or FUNCTION_NOT_FOUND. */
  async get(name: string): Promise<FunctionRecord> {
    validateFunctionName(name);
    const r = await this.registry.get(name);
    if (!r) throw new HearthError('FUNCTION_NOT_FOUND', `no function named ${JSON.stringify(name)}`);
    return r;
  }

  /** Removes the record (listeners end its instances); the bundle stays until `gcCode`. */
  async delete(name: string): Promise<FunctionRecord> {
    validateFunctionName(name);
    const r = await this.registry.delete(name);
    if (!r) throw new HearthError('FUNCTION_NOT_FOUND', `no function named ${JSON.stringify(name)}`);
    return r;
  }

  /**
   * Removes bundles no function references, except `alsoLive` (e.g. shas mounted in running
   * instances). Returns the removed shas.
   */
  async gcCode(alsoLive: Iterable<string> = []): Promise<string[]> {
    const live = new Set(alsoLive);
    for (const r of await this.registry.list()) live.add(r.codeSha256);
    for (const sha of deploying.get(this.store)?.keys() ?? []) live.add(sha);
    return this.store.gc(live);
  }
}
