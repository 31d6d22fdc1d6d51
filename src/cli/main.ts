#!/usr/bin/env node
/**
 * The `hearth` command. Everything but `daemon` talks to a running daemon through the control API
 * only (socket from --socket or HEARTH_SOCKET, default /run/hearth/hearth.sock). Commands and
 * flags: commands.ts; what each does: actions.ts.
 *
 * Exit codes: 0 ok; 1 the command failed (API error, unreadable file, daemon unreachable, a
 * function error from `invoke`); 2 a usage mistake. Output cut short by a closed pipe
 * (`hearth ls | head -1`) ends the process quietly, like other Unix tools.
 */
import { ApiError, ControlClient } from '../control/client.js';
import { LocalFileError, runCommand, UsageError } from './actions.js';
import { commandHelp, findCommand, mainHelp, packageVersion, parseCommand, subcommands } from './commands.js';

const DEFAULT_SOCKET = '/run/hearth/hearth.sock';

/** A write to a closed pipe ends the CLI at once, silently (exit 0 as `head` expects; no stack trace). */
function exitQuietlyOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

/** Resolves `events ls` / `network create` style names; undefined for an unknown command. */
function resolve(argv: string[]): { name: string; rest: string[] } | { group: string } | undefined {
  const [cmd, sub, ...more] = argv;
  if (cmd === undefined) return undefined;
  if (findCommand(cmd)) return { name: cmd, rest: argv.slice(1) };
  if (subcommands(cmd).length > 0) {
    if (sub !== undefined && findCommand(`${cmd} ${sub}`)) return { name: `${cmd} ${sub}`, rest: more };
    return { group: cmd };
  }
  return undefined;
}

async function main(argv: string[]): Promise<number> {
  exitQuietlyOnEpipe(process.stdout);
  exitQuietlyOnEpipe(process.stderr);
  const first = argv[0];
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const topic = first === 'help' ? argv[1] : undefined;
    const text = topic ? commandHelp(topic) : mainHelp();
    if (text === undefined) return usageFail(`unknown command '${topic}'`);
    (first === undefined ? process.stderr : process.stdout).write(text);
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(packageVersion() + '\n');
    return 0;
  }
  const found = resolve(argv);
  if (found === undefined) return usageFail(`unknown command '${first}'`);
  if ('group' in found) {
    const wantsHelp = argv.includes('--help') || argv.includes('-h');
    if (wantsHelp) return (process.stdout.write(commandHelp(found.group)!), 0);
    const sub = argv[1];
    return usageFail(sub === undefined ? `${found.group}: a subcommand is required` : `${found.group}: unknown subcommand '${sub}'`, found.group);
  }
  const spec = findCommand(found.name)!;
  let parsed: ReturnType<typeof parseCommand>;
  try {
    parsed = parseCommand(spec, found.rest);
  } catch (err) {
    // parseArgs explains how to pass a positional that starts with '-': one sentence is enough.
    return usageFail(`${spec.name}: ${(err as Error).message.replace(/\. To specify a positional.*$/s, '')}`, spec.name);
  }
  if (parsed.values['help']) {
    process.stdout.write(commandHelp(spec.name)!);
    return 0;
  }
  if (spec.name === 'version') {
    process.stdout.write(packageVersion() + '\n');
    return 0;
  }
  if (spec.name === 'daemon') {
    const { runDaemon } = await import('../daemon/run.js');
    return runDaemon(found.rest);
  }
  if (spec.name === 'doctor') {
    const { runDoctor } = await import('../doctor/run.js');
    return runDoctor(found.rest);
  }
  const client = new ControlClient((parsed.values['socket'] as string | undefined) ?? process.env['HEARTH_SOCKET'] ?? DEFAULT_SOCKET);
  try {
    return await runCommand(client, spec.name, parsed.positionals, parsed.values);
  } catch (err) {
    if (err instanceof UsageError) return usageFail(`${spec.name}: ${err.message}`, spec.name);
    if (err instanceof ApiError) {
      process.stderr.write(`hearth: ${err.code}: ${err.message}\n`);
      return 1;
    }
    if (err instanceof LocalFileError) {
      process.stderr.write(`hearth: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException & { syscall?: string };
    if (e.syscall === 'connect' && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES')) {
      const hint = e.code === 'EACCES' ? 'run as root or as a member of the socket group' : 'is `hearth daemon` running?';
      process.stderr.write(`hearth: cannot reach the daemon at ${client.socketPath} (${e.code}); ${hint}\n`);
      return 1;
    }
    process.stderr.write(`hearth: ${e.message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

function usageFail(message: string, command?: string): number {
  process.stderr.write(`hearth: ${message}\n(see hearth ${command ? command.split(' ')[0] + ' ' : ''}--help)\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`hearth: ${err.message}\n`);
    process.exitCode = 1;
  },
);
