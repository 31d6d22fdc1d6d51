/**
 * Daemon configuration: validated once, defaults filled in one place, then frozen.
 * Sources, later ones win: embedded defaults < config file (JSON) < command-line flags.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { HearthError } from './errors.js';

const poolSchema = z
  .object({
    /** Generic (function-less) instances kept ready per runtime. */
    node: z.number().int().min(0).max(500).default(2),
    python: z.number().int().min(0).max(500).default(4),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    socket: z.string().min(1).default('/run/hearth/hearth.sock'),
    stateDir: z.string().min(1).default('/var/lib/hearth'),
    /** Runtime files: gateway network namespaces are pinned under <runDir>/netns. */
    runDir: z.string().min(1).default('/run/hearth'),
    /** Generic instances kept ready per runtime on each private network that has functions of it. */
    genericPerNetwork: z.number().int().min(0).max(100).default(1),
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
    sandboxUid: z.number().int().min(1).default(65534),
    sandboxGid: z.number().int().min(1).default(65534),
    cgroupName: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('hearth'),
    maxQueuedEvents: z.number().int().min(1).default(100_000),
    /**
     * Busy-poll up to this many µs for a warm instance's answer when it is the only one awaited and
     * its handler is quick (src/runtimes/reply-poller.ts); 0 (the default) never polls. A trade-off:
     * see BENCHMARKS.md (faster back-to-back streams, slower when calls interleave with other work).
     */
    replyPollUs: z.number().int().min(0).max(1000).default(0),
    /** Use the frequency model (reaper + pre-warmer) instead of the fixed keep-alive. */
    policy: z.enum(['model', 'fixed']).default('model'),
  })
  .strict();

export type Config = Readonly<z.infer<typeof configSchema>>;

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
    const issue = parsed.error.issues[0]!;
    throw new HearthError('CONFIG', `config: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return Object.freeze(parsed.data);
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
