/** scripts/bench/options.ts: which runs may rewrite the committed BENCHMARKS.md and plots. */
import test from 'ava';
import { OPTIONS, toArgs } from '../../scripts/bench/options.js';
import { readArgs, UsageError } from '../../scripts/cli-args.js';

const args = (...argv: string[]) => toArgs(readArgs(argv, OPTIONS));

test('a quick run (the default) writes only its output folder; --docs asks for BENCHMARKS.md', (t) => {
  t.like(args(), { mode: 'quick', docs: false });
  t.like(args('--quick'), { mode: 'quick', docs: false });
  t.like(args('--quick', '--docs'), { mode: 'quick', docs: true });
});

test('a full run of every suite rewrites them unless --no-docs', (t) => {
  t.like(args('--full'), { mode: 'full', docs: true });
  t.like(args('--full', '--no-docs'), { mode: 'full', docs: false });
  t.like(args('--full', '--only', 'start,steps'), { mode: 'full', docs: false });
  t.like(args('--smoke'), { mode: 'smoke', docs: false });
});

test('--docs where a page cannot be written whole, or with --no-docs, is a usage error', (t) => {
  t.throws(() => args('--smoke', '--docs'), { instanceOf: UsageError, message: /--docs needs/ });
  t.throws(() => args('--quick', '--only', 'start', '--docs'), { instanceOf: UsageError, message: /--docs needs/ });
  t.throws(() => args('--docs', '--no-docs'), { instanceOf: UsageError, message: /contradict/ });
  t.throws(() => args('--only', 'nope'), { instanceOf: UsageError, message: /unknown suite nope/ });
});

test('the last of --smoke, --quick and --full wins', (t) => {
  t.is(args('--full', '--smoke').mode, 'smoke');
  t.is(args('--smoke', '--full').mode, 'full');
});
