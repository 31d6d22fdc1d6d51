/**
 * Daemon configuration: validated once, defaults filled in one place, then frozen.
 * Sources, later ones win: embedded defaults < config file (JSON) < command-line flags.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { HearthError } from './errors.js';

/** The default range: 65536 ids from 200000, a subordinate range no distribution hands to users by default. */
/** An example range (the first automatic block, src/daemon/uid-range.ts). */
export const DEFAULT_UID_RANGE = '200000:65536';

/** Largest usable host id: 4294967295 is (uid_t)-1, never a valid id. */
const MAX_ID = 4294967294;

/** `--uid-range START:COUNT` -> the range, or a string that says what is wrong. */
export function parseUidRange(text: string): { start: number; count: number } | string {
  const m = /^\s*(\d{1,10}):(\d{1,10})\s*$/.exec(text);
  if (!m) return `expected START:COUNT (e.g. ${DEFAULT_UID_RANGE}), got '${text}'`;
  const start = Number(m[1]);
  const count = Number(m[2]);
  if (start < 1) return `the range must not start at 0 (host root), got '${text}'`;
  if (count < 2) return `COUNT must be at least 2 (the pool id and one function), got '${text}'`;
  if (start + count - 1 > MAX_ID) return `the range ends past ${MAX_ID}, the largest host id, got '${text}'`;
  return { start, count };
}

function uidRange() {
  return z.string().transform((s, ctx) => {
    const r = parseUidRange(s);
    if (typeof r === 'string') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: r });
      return z.NEVER;
    }
    return r;
  });
}

const poolSchema = z
  .object({
    /** Generic (function-less) instances kept ready per runtime. */
    node: z.number().int().min(0).max(500).default(2),
    python: z.number().int().min(0).max(500).default(4),
    provided: z.number().int().min(0).max(500).default(0),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    socket: z.string().min(1).default('/run/hearth/hearth.sock'),
    stateDir: z.string().min(1).default('/var/lib/hearth'),
    /**
     * This daemon's name for the host resources it owns (cgroup parent, runtime dir), so that
     * several daemons share one host: default `hearth-<8 hex of sha256(realpath(stateDir))>`
     * (daemonName()). Two daemons with the same name would clean up each other's resources.
     */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/)
      .optional(),
    /** Runtime files: gateway network namespaces are pinned under <runDir>/netns. Default /run/<name>. */
    runDir: z.string().min(1).optional(),
    /** Generic instances kept ready per runtime on each private network that has functions of it. */
    genericPerNetwork: z.number().int().min(0).max(100).default(1),
    /**
     * `HOST:PORT` where the Lambda API (AWS's REST API, SigV4-signed; docs/lambda.md) listens over
     * TCP; unset: not served. Port 0 picks a free port.
     */
    lambdaListen: listenAddress().optional(),
    /** Group (name or gid) allowed to use the control socket besides root. */
    socketGroup: z.union([z.string(), z.number().int()]).optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    generic: poolSchema,
    /** Idle specialised instances are ended after this long without work (fallback when the model has no view). */
    keepAliveMs: z.number().int().min(1000).default(600_000),
    /** Memory budget for all instances, MB; eviction by value when exceeded. */
    memoryBudgetMb: z.number().int().min(64).default(8192),
    /** Instance defaults for generic instances before specialisation (memory: the default function size, so most starts need no cgroup write). */
    genericMemoryMb: z.number().int().min(32).default(128),
    pidsMax: z.number().int().min(8).default(64),
    tmpMb: z.number().int().min(1).default(64),
    cpuPercent: z.number().int().min(1).max(1000).default(100),
    /** Instance ids without user namespaces (`userns: false`); with them, the pool id is the range's first. */
    sandboxUid: z.number().int().min(1).default(65534),
    sandboxGid: z.number().int().min(1).default(65534),
    /**
     * A user namespace per instance, root inside mapped to a host uid of its function alone
     * (docs/sandbox.md, Identity). false: every instance runs as sandboxUid/sandboxGid (benchmarks).
     */
    userns: z.boolean().default(true),
    /**
     * Host ids for functions (`--uid-range START:COUNT`): START is the pool id of unspecialised
     * instances, each function gets one of the others. No host user or process may use them.
     * Absent: the first block of 65,536 ids from 200000 that no other daemon on the host claimed
     * (src/daemon/uid-range.ts).
     */
    uidRange: uidRange().optional(),
    /** Parent cgroup of this daemon's instances, in every hierarchy. Default: `name`. */
    cgroupName: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .optional(),
    maxQueuedEvents: z.number().int().min(1).default(100_000),
    /**
     * Busy-poll up to this many µs for a warm instance's answer when it is the only one awaited and
     * its handler is quick (src/runtimes/reply-poller.ts); 0 (the default) never polls. A trade-off:
     * see BENCHMARKS.md (faster back-to-back streams, slower when calls interleave with other work).
     */
    replyPollUs: z.number().int().min(0).max(1000).default(0),
    /**
     * Many hosts: the NATS JetStream brokers to join (`--nats`), e.g. ["nats://10.0.0.5:4222"]. Unset:
     * one host, everything in the state directory (the embedded default). See docs/cluster.md.
     */
    nats: z
      .array(z.string().regex(/^(nats|tls):\/\/[^\s,]+$/, 'must be nats://HOST:PORT or tls://HOST:PORT'))
      .min(1)
      .optional(),
    /** This host's id in the cluster (`--host-id`); default the machine's host name. */
    hostId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 of A-Z a-z 0-9 _ -')
      .optional(),
    /** Replicas of the buckets Hearth creates (default 3 when the broker is clustered, else 1). */
    natsReplicas: z
      .number()
      .int()
      .refine((n) => n === 1 || n === 3 || n === 5, {
        message:
          'must be 1, 3 or 5: JetStream keeps at most 5 replicas and needs a majority of them, so 2 survives no more broker failures than 1, and 4 no more than 3',
      })
      .optional(),
    /** Use the frequency model (reaper + pre-warmer) instead of the fixed keep-alive. */
    policy: z.enum(['model', 'fixed']).default('model'),
    /**
     * Serve Prometheus metrics and the dashboard (read-only HTTP) on `HOST:PORT`; `PORT` or `:PORT`
     * alone binds to loopback (127.0.0.1). Unset: no listener and no metrics (docs/observability.md).
     */
    metricsListen: listenAddress().optional(),
  })
  .strict();

/** A listener's address in the config: `HOST:PORT` (see parseListenAddress) -> `{ host, port }`. */
function listenAddress() {
  return z.string().transform((s, ctx) => {
    const a = parseListenAddress(s);
    if (typeof a === 'string') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: a });
      return z.NEVER;
    }
    return a;
  });
}

/** `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (loopback) -> host and port; a string says what is wrong. */
export function parseListenAddress(s: string): { host: string; port: number } | string {
  const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) return `expected HOST:PORT (e.g. 127.0.0.1:9464), got '${s}'`;
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  return { host, port };
}

type Parsed = z.infer<typeof configSchema>;
/** The validated config: every derived name filled in. */
export type Config = Readonly<Omit<Parsed, 'name' | 'runDir' | 'cgroupName' | 'hostId'> & { name: string; runDir: string; cgroupName: string; hostId: string }>;

/**
 * The resource name of the daemon whose state lives in stateDir: `hearth-` and the first 8 hex
 * digits of sha256(the state dir's real path). A path that does not exist yet is resolved through
 * its longest existing ancestor, so the name is the same before and after the dir is created.
 */
export function daemonName(stateDir: string): string {
  const real = realPathOf(stateDir);
  return `hearth-${createHash('sha256').update(real).digest('hex').slice(0, 8)}`;
}

function realPathOf(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let dir = abs;
  for (;;) {
    try {
      return path.join(realpathSync(dir), ...rest.reverse());
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return abs;
      rest.push(path.basename(dir));
      dir = parent;
    }
  }
}

export function loadConfig(opts: { file?: string; overrides?: Record<string, unknown> }): Config {
  let fromFile: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new HearthError('CONFIG', `cannot read config file ${opts.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new HearthError('CONFIG', `config file ${opts.file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const merged = { ...fromFile, ...stripUndefined(opts.overrides ?? {}) };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HearthError('CONFIG', `config: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const data = parsed.data;
  const name = data.name ?? daemonName(data.stateDir);
  const hostId =
    data.hostId ??
    (os
      .hostname()
      .replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 64) ||
      'host');
  return Object.freeze({ ...data, name, hostId, runDir: data.runDir ?? path.join('/run', name), cgroupName: data.cgroupName ?? name });
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
