/**
 * The scripts' command lines: the shared reader's errors, and what a user of `npm run sim` sees
 * for a bad flag, a missing value and --help.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { numberArg, readArgs, UsageError } from '../../scripts/cli-args.js';

const OPTIONS = { out: { type: 'string' }, quick: { type: 'boolean' }, policy: { type: 'string', multiple: true } } as const;

const errors: Array<{ argv: string[]; message: RegExp }> = [
  { argv: ['--bogus'], message: /^unknown option --bogus$/ },
  { argv: ['--out'], message: /^--out needs a value$/ },
  { argv: ['--out', '--quick'], message: /^--out needs a value$/ },
  { argv: ['--quick=yes'], message: /^--quick takes no value$/ },
  { argv: ['stray'], message: /^unexpected argument stray$/ },
];

for (const { argv, message } of errors) {
  test(`readArgs refuses ${argv.join(' ')}`, (t) => {
    t.throws(() => readArgs(argv, OPTIONS), { instanceOf: UsageError, message });
  });
}

test('readArgs keeps values, repeats and the order of flags', (t) => {
  const r = readArgs(['--policy', 'a', '--out', 'd', '--policy', 'b', '--quick'], OPTIONS);
  t.deepEqual({ ...r.values }, { policy: ['a', 'b'], out: 'd', quick: true });
  t.deepEqual(
    r.tokens.flatMap((k) => (k.kind === 'option' ? [k.name] : [])),
    ['policy', 'out', 'policy', 'quick'],
  );
});

test('numberArg: default when absent, refuses what is not a number of the right kind', (t) => {
  t.is(numberArg(undefined, '--runs', 5), 5);
  t.is(numberArg('7', '--runs', 5, { integer: true, min: 1 }), 7);
  t.throws(() => numberArg('x', '--runs', 5), { instanceOf: UsageError, message: /--runs needs a number, got "x"/ });
  t.throws(() => numberArg('', '--runs', 5), { instanceOf: UsageError });
  t.throws(() => numberArg('1.5', '--runs', 5, { integer: true }), { message: /whole number/ });
  t.throws(() => numberArg('0', '--runs', 5, { min: 1 }), { message: /at least 1/ });
});

const sim = (...args: string[]) => spawnSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'sim.js'), ...args], { encoding: 'utf8' });

test('npm run sim: an unknown flag exits 2 naming it, with the usage on stderr', (t) => {
  const r = sim('--invocations', 'x', '--polcy', 'hearth');
  t.is(r.status, 2);
  t.regex(r.stderr, /^sim: unknown option --polcy\nusage: sim --invocations F/);
  t.is(r.stdout, '');
});

test('npm run sim: a flag without its value and a bad number exit 2', (t) => {
  t.regex(sim('--invocations').stderr, /^sim: --invocations needs a value/);
  t.is(sim('--invocations', 'x', '--to-minute', 'ten').status, 2);
  t.regex(sim('--invocations', 'x', '--to-minute', 'ten').stderr, /--to-minute needs a number/);
  t.regex(sim('--durations', 'd').stderr, /--invocations is required/);
});

test('npm run sim -- --help prints the usage and exits 0', (t) => {
  const r = sim('--help');
  t.is(r.status, 0);
  t.regex(r.stdout, /^usage: sim --invocations F/);
  t.regex(r.stdout, /policies: hearth, fixed-10m, fixed-20m, hybrid-histogram, faascache/);
});
