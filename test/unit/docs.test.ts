/**
 * The documentation stays true to the tree: every relative link in README.md and docs/*.md names a
 * file that exists (inside the repository), and docs/api.md lists exactly the commands and flags
 * of the CLI's table (which `hearth … --help` prints, daemon included).
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { COMMANDS } from '../../src/cli/commands.js';

const ROOT = resolve(__dirname, '../../..');
const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Markdown link targets `[text](target)` outside code blocks and spans. */
function links(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]);
}

test('every relative link in README.md and docs/*.md resolves to a file in the repository', (t) => {
  let checked = 0;
  for (const page of pages) {
    for (const target of links(readFileSync(join(ROOT, page), 'utf8'))) {
      if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
      const path = resolve(dirname(join(ROOT, page)), decodeURIComponent(target.split('#')[0]));
      t.false(relative(ROOT, path).startsWith('..'), `${page} links outside the repository: ${target}`);
      t.true(existsSync(path), `${page}: broken link ${target}`);
      checked++;
    }
  }
  t.true(checked > 10);
});

test('the README links docs/architecture.md and no path outside the repository', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.true(links(readme).includes('docs/architecture.md'));
  t.notRegex(readme, /\.\.\/shared\//);
});

/** docs/api.md's CLI block: for each command of the table, the flags its line (and continuation lines) show. */
function documentedFlags(): Map<string, Set<string>> {
  const api = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
  const block = /## CLI\n\n```\n([\s\S]*?)```/.exec(api);
  if (!block) throw new Error('docs/api.md has no CLI block');
  const names = COMMANDS.map((c) => c.name).sort((a, b) => b.length - a.length);
  const docs = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of block[1].split('\n')) {
    if (line.startsWith('hearth ')) {
      const name = names.find((n) => line === `hearth ${n}` || line.startsWith(`hearth ${n} `));
      if (!name) throw new Error(`docs/api.md documents an unknown command: ${line}`);
      docs.set(name, (current = new Set()));
    }
    for (const m of line.matchAll(/--([a-z][a-z-]*)/g)) current?.add(m[1]);
  }
  return docs;
}

test('docs/api.md lists every command with exactly the flags of `hearth COMMAND --help`, the daemon included', (t) => {
  const docs = documentedFlags();
  for (const spec of COMMANDS) {
    const documented = docs.get(spec.name);
    if (!documented) {
      t.fail(`docs/api.md does not document hearth ${spec.name}`);
      continue;
    }
    // --socket is documented once for all client commands.
    const flags = Object.keys(spec.flags).filter((f) => spec.name === 'daemon' || f !== 'socket');
    t.deepEqual([...documented].sort(), flags.sort(), `hearth ${spec.name}`);
  }
  t.regex(readFileSync(join(ROOT, 'docs/api.md'), 'utf8'), /takes `--socket PATH`/);
});
