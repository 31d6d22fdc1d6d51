/**
 * The `hearth` commands and their flags: one table that both the argument parser (node:util
 * parseArgs) and the help text are made from, so the two cannot disagree. docs/api.md lists the
 * same commands and flags (test/unit/cli-help.test.ts keeps them in step).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface FlagSpec {
  type: 'string' | 'boolean';
  /** May be given more than once (values collected in order). */
  multiple?: boolean;
  /** The value's placeholder in the help (string flags). */
  arg?: string;
  help: string;
}

export interface CommandSpec {
  /** `deploy`, or `events ls` for a subcommand. */
  name: string;
  /** Positional arguments as the help shows them. */
  args: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** False for commands that do not talk to the daemon (no --socket). Default true. */
  usesSocket?: boolean;
}

const socket: FlagSpec = { type: 'string', arg: 'PATH', help: 'control socket (default $HEARTH_SOCKET or /run/hearth/hearth.sock)' };
const json: FlagSpec = { type: 'boolean', help: 'print the API answer as JSON' };

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'daemon',
    args: '',
    summary: 'run the daemon (root); stops on SIGTERM or SIGINT',
    usesSocket: false,
    flags: {
      socket: { type: 'string', arg: 'PATH', help: 'control socket to serve (default /run/hearth/hearth.sock)' },
      'state-dir': { type: 'string', arg: 'DIR', help: 'state directory (default /var/lib/hearth)' },
      config: { type: 'string', arg: 'FILE', help: 'JSON configuration file (flags override it)' },
      'log-level': { type: 'string', arg: 'L', help: 'trace|debug|info|warn|error (default info)' },
      'socket-group': { type: 'string', arg: 'G', help: 'group whose members may use the socket besides root' },
      'lambda-listen': { type: 'string', arg: 'HOST:PORT', help: 'serve the Lambda API (SigV4) over TCP here (see docs/lambda.md)' },
      'generic-node': { type: 'string', arg: 'N', help: 'base size of the generic Node pool' },
      'generic-python': { type: 'string', arg: 'N', help: 'base size of the generic Python pool' },
      'generic-provided': { type: 'string', arg: 'N', help: 'base size of the generic provided (custom runtime) pool' },
      policy: { type: 'string', arg: 'P', help: 'keep-alive policy: model|fixed' },
      'metrics-listen': { type: 'string', arg: 'HOST:PORT', help: 'serve /metrics and the dashboard here (read-only HTTP; PORT alone: loopback)' },
      nats: { type: 'string', arg: 'URL[,URL...]', help: 'join a cluster on these NATS JetStream brokers (docs/cluster.md)' },
      'host-id': { type: 'string', arg: 'ID', help: "this host's id in the cluster (default the host name)" },
      'uid-range': { type: 'string', arg: 'START:COUNT', help: 'host uids of functions (default 200000:65536; docs/sandbox.md)' },
    },
  },
  {
    name: 'deploy',
    args: 'DIR|ARCHIVE',
    summary: 'create or update a function from a directory (packed as tar.gz) or a zip/tar.gz',
    flags: {
      name: { type: 'string', arg: 'NAME', help: 'function name (required)' },
      runtime: { type: 'string', arg: 'node|python|provided', help: 'runtime (required)' },
      handler: { type: 'string', arg: 'FILE.FUNC', help: 'handler (required; for provided optional and free-form, its _HANDLER)' },
      memory: { type: 'string', arg: 'MB', help: 'memory limit' },
      timeout: { type: 'string', arg: 'S', help: 'timeout in seconds' },
      env: { type: 'string', multiple: true, arg: 'K=V', help: 'environment variable (repeatable)' },
      concurrency: { type: 'string', arg: 'N', help: 'most invocations at once' },
      retries: { type: 'string', arg: 'N', help: 'retries of a failed async event' },
      'max-event-age': { type: 'string', arg: 'S', help: 'oldest async event still started' },
      schedule: { type: 'string', multiple: true, arg: 'EXPR', help: 'rate(...) or cron(...) (repeatable)' },
      network: { type: 'string', arg: 'NAME', help: 'private network to join' },
      socket,
    },
  },
  {
    name: 'invoke',
    args: 'NAME',
    summary: 'invoke a function; result on stdout, start kind and timings on stderr',
    flags: {
      data: { type: 'string', arg: 'JSON|@FILE', help: 'the event (default {})' },
      async: { type: 'boolean', help: 'queue the event durably and print its id' },
      'idempotency-key': { type: 'string', arg: 'K', help: 'with --async: a repeat within 24 h returns the first id' },
      json,
      socket,
    },
  },
  { name: 'ls', args: '', summary: 'list functions', flags: { json, socket } },
  { name: 'show', args: 'NAME', summary: 'show a function', flags: { socket } },
  { name: 'rm', args: 'NAME', summary: 'remove a function', flags: { socket } },
  { name: 'pool', args: '', summary: 'list instances', flags: { json, socket } },
  { name: 'queue', args: '', summary: 'event queue depth and latency', flags: { json, socket } },
  { name: 'hosts', args: '', summary: "a cluster's hosts (--nats) with their load, from /v1/health", flags: { json, socket } },
  {
    name: 'invocations',
    args: 'NAME',
    summary: 'recent invocations of a function: start kind, init, duration, outcome, trigger',
    flags: { last: { type: 'string', arg: 'N', help: 'the last N (default 20, at most 1000)' }, json, socket },
  },
  {
    name: 'logs',
    args: 'NAME',
    summary: "a function's output (stdout and stderr), with time and invocation id",
    flags: {
      since: { type: 'string', arg: 'AGE|TIME', help: 'only invocations that ended within AGE (30s, 10m, 2h, 1d) or after an ISO time (default 1h)' },
      follow: { type: 'boolean', help: 'keep printing new output until interrupted' },
      json,
      socket,
    },
  },
  { name: 'model', args: 'NAME', summary: "a function's frequency model and pool decisions", flags: { json, socket } },
  {
    name: 'events ls',
    args: '',
    summary: 'list async events, newest first',
    flags: {
      function: { type: 'string', arg: 'F', help: 'only this function' },
      status: { type: 'string', arg: 'S', help: 'queued|running|succeeded|failed|dead' },
      limit: { type: 'string', arg: 'N', help: 'at most N events' },
      json,
      socket,
    },
  },
  { name: 'events show', args: 'ID', summary: 'an event: status, attempts, result or error', flags: { socket } },
  { name: 'events redrive', args: 'ID', summary: 'queue a dead event again', flags: { socket } },
  {
    name: 'network create',
    args: 'NAME',
    summary: 'create a private network (see docs/networks.md)',
    flags: {
      bridge: { type: 'string', arg: 'BR', help: 'existing bridge on the private network (required)' },
      netns: { type: 'string', arg: 'NS', help: "the bridge's namespace (default the host's)" },
      address: { type: 'string', arg: 'CIDR', help: "the gateway's address (required)" },
      route: { type: 'string', multiple: true, arg: 'CIDR', help: 'destination reachable through it (repeatable)' },
      allow: { type: 'string', multiple: true, arg: 'CIDR[:PORT]', help: 'allowed destination (repeatable; default all routes)' },
      gateway: { type: 'string', arg: 'IP', help: 'next hop for routes outside the address subnet' },
      'host-address': {
        type: 'string',
        multiple: true,
        arg: 'HOST=CIDR',
        help: "many hosts: host HOST's own gateway address, same subnet (repeatable; see docs/cluster.md)",
      },
      socket,
    },
  },
  { name: 'network ls', args: '', summary: 'list private networks', flags: { json, socket } },
  { name: 'network rm', args: 'NAME', summary: 'remove a private network', flags: { socket } },
  {
    name: 'keys create',
    args: 'NAME',
    summary: 'create a Lambda API access key; prints its id and secret once',
    flags: { json: { type: 'boolean', help: 'print {"accessKeyId", "secretAccessKey"} as JSON' }, socket },
  },
  { name: 'keys ls', args: '', summary: 'list Lambda API access keys (never their secrets)', flags: { json, socket } },
  { name: 'keys rm', args: 'ID', summary: 'remove a Lambda API access key; requests signed with it are refused at once', flags: { socket } },
  {
    name: 'doctor',
    args: '',
    summary: 'check the kernel features, cgroups, tools and permissions Hearth needs; say how to install what is missing',
    usesSocket: false,
    flags: {
      json: { type: 'boolean', help: 'print the checks as JSON' },
      'state-dir': { type: 'string', arg: 'DIR', help: 'state directory to check (default /var/lib/hearth)' },
    },
  },
  { name: 'version', args: '', summary: 'print the version', usesSocket: false, flags: {} },
];

/** The package version (package.json at the repository root, from src/cli or dist/src/cli). */
export function packageVersion(): string {
  for (const up of ['../..', '../../..']) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'hearth' && pkg.version) return pkg.version;
    } catch {
      // try the next level
    }
  }
  return 'unknown';
}

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Commands whose name starts with `group ` (`events`, `network`). */
export function subcommands(group: string): CommandSpec[] {
  return COMMANDS.filter((c) => c.name.startsWith(group + ' '));
}

/** The parseArgs options of a command (its flags plus --help). */
export function parseOptions(spec: CommandSpec): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [flag, f] of Object.entries(spec.flags)) options[flag] = f.multiple ? { type: f.type, multiple: true } : { type: f.type };
  return options;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** Parses a command's arguments strictly (an unknown flag or a missing value throws a TypeError naming it). */
export function parseCommand(spec: CommandSpec, args: string[]): { values: FlagValues; positionals: string[] } {
  const { values, positionals } = parseArgs({ args, options: parseOptions(spec), allowPositionals: true, strict: true });
  return { values: values as FlagValues, positionals };
}

/** One line per flag: `--name ARG  help`. */
function flagLines(spec: CommandSpec): string[] {
  const left = Object.entries(spec.flags).map(([flag, f]) => `--${flag}${f.arg ? ' ' + f.arg : ''}${f.multiple ? ' ...' : ''}`);
  const width = Math.max(0, ...left.map((l) => l.length));
  return Object.values(spec.flags).map((f, i) => `  ${left[i].padEnd(width)}  ${f.help}`);
}

function synopsis(spec: CommandSpec): string {
  return `hearth ${spec.name}${spec.args ? ' ' + spec.args : ''}`;
}

/** `hearth X --help`: synopsis, summary and every flag of X (or of each subcommand of group X). */
export function commandHelp(name: string): string | undefined {
  const spec = findCommand(name);
  const specs = spec ? [spec] : subcommands(name);
  if (specs.length === 0) return undefined;
  const blocks = specs.map((s) =>
    [`usage: ${synopsis(s)} [flags]`, `  ${s.summary}`, ...(Object.keys(s.flags).length ? ['', ...flagLines(s)] : [])].join('\n'),
  );
  return blocks.join('\n\n') + '\n';
}

/** `hearth --help`: every command with all its flags. */
export function mainHelp(): string {
  const lines = ['usage: hearth <command> [flags]     (hearth <command> --help for one command)', ''];
  for (const s of COMMANDS) {
    const flags = Object.entries(s.flags).map(([flag, f]) => `[--${flag}${f.arg ? ' ' + f.arg : ''}]${f.multiple ? '...' : ''}`);
    lines.push(`  ${synopsis(s)}${flags.length ? ' ' + flags.join(' ') : ''}`, `      ${s.summary}`);
  }
  lines.push('', 'hearth --version prints the version.');
  return lines.join('\n') + '\n';
}
