/**
 * The scripts' one way to read their command line: `node:util` parseArgs, strict (an unknown flag
 * or a stray argument is an error), plus what every script wants around it: `--help`/`-h` prints
 * the usage and exits 0; a bad command line prints `<script>: <what is wrong>` and the usage to
 * stderr and exits 2; numbers are checked.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Option kinds, for the scripts' option tables: a flag with a value, one that may repeat, a switch. */
export const VALUE = { type: 'string' } as const;
export const VALUES = { type: 'string', multiple: true } as const;
export const SWITCH = { type: 'boolean' } as const;
/** numberArg's rule for counts: a whole number, at least 1. */
export const COUNT = { integer: true, min: 1 } as const;

/** A command line the script cannot take; the message names the flag. */
export class UsageError extends Error {}

/**
 * Parses `argv` (without node and the script) against `options`. Throws UsageError on an unknown
 * flag, a missing value, a value given to a boolean flag or a positional argument. `tokens` keeps
 * the order of the flags, for scripts where the last of several flags wins.
 */
export function readArgs<const O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const flag = /'(-[^' ]*)/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${flag ?? e.message}`);
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw new UsageError(`unexpected argument ${/'([^']*)'/.exec(e.message)?.[1] ?? ''}`.trim());
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
      const wantsValue = options[flag.replace(/^-+/, '')]?.type === 'string';
      throw new UsageError(wantsValue ? `${flag} needs a value` : `${flag} takes no value`);
    }
    throw new UsageError(e.message);
  }
}

/**
 * `readArgs` for a script's main: `--help` or `-h` anywhere prints `usage` and exits 0; a
 * UsageError (from parsing, or from `check` on the parsed values) prints `<name>: <message>` and
 * the usage to stderr and exits 2.
 */
export function scriptArgs<const O extends Options, R>(
  name: string,
  usage: string,
  options: O,
  check: (parsed: ReturnType<typeof readArgs<O>>) => R,
  argv: string[] = process.argv.slice(2),
): R {
  const end = argv.indexOf('--');
  const head = end < 0 ? argv : argv.slice(0, end);
  if (head.includes('--help') || head.includes('-h')) {
    process.stdout.write(usage + '\n');
    process.exit(0);
  }
  try {
    return check(readArgs(argv, options));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${name}: ${err.message}\n${usage}\n`);
    process.exit(2);
  }
}

/**
 * The number a flag's value spells, or `fallback` when the flag is absent. Throws UsageError when
 * it is not a finite number, not an integer where `integer` is set, or below `min`.
 */
export function numberArg(value: string | undefined, flag: string, fallback: number, rule: { integer?: boolean; min?: number } = {}): number {
  if (value === undefined) return fallback;
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`${flag} needs a number, got ${JSON.stringify(value)}`);
  if (rule.integer && !Number.isInteger(n)) throw new UsageError(`${flag} needs a whole number, got ${value}`);
  if (rule.min !== undefined && n < rule.min) throw new UsageError(`${flag} must be at least ${rule.min}, got ${value}`);
  return n;
}
