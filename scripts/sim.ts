/**
 * Trace simulator: replays an Azure Functions 2019-format trace through pool policies.
 *
 *   npm run sim -- --invocations F --durations F --memory F [--policy NAME]… [--json OUT]
 *                  [--plot OUT.svg] [--plot-p75 OUT.svg] [--markdown OUT.md] [--faascache-cap-mb N]
 *                  [--from-minute M --to-minute M] [--per-function OUT.csv] [--split tune|holdout]
 *
 * Policies: hearth, fixed-10m, fixed-20m, hybrid-histogram, faascache (all when none is named).
 * See docs/pool-policy.md for the replay rule and the policies.
 */
import { writeFileSync } from 'node:fs';
import { HearthPolicy, POLICY_NAMES, createPolicy, type PolicyName } from '../src/model/index.js';
import { formatMarkdown, formatTable, plotSvg, toJson } from './sim/report.js';
import { peakBusyMemoryMb, simulate, type SimResult } from './sim/simulator.js';
import { readTrace, sliceTrace, splitTrace } from './sim/trace.js';
import { numberArg, readArgs, scriptArgs, SWITCH, UsageError, VALUE, VALUES } from './cli-args.js';

interface Args {
  invocations?: string;
  durations?: string;
  memory?: string;
  policies: PolicyName[];
  json?: string;
  plot?: string;
  plotP75?: string;
  markdown?: string;
  perFunction?: string;
  faascacheCapMb?: number;
  fromMinute?: number;
  toMinute?: number;
  quiet: boolean;
  split?: 'tune' | 'holdout';
  hearth: Record<string, number>;
}

const USAGE = `usage: sim --invocations F [--durations F] [--memory F] [--policy NAME]... [--json OUT]
           [--plot OUT.svg] [--plot-p75 OUT.svg] [--markdown OUT.md] [--per-function OUT.csv] [--faascache-cap-mb N]
           [--from-minute M] [--to-minute M] [--hearth-option NAME=NUMBER]... [--split tune|holdout] [--quiet]
policies: ${POLICY_NAMES.join(', ')}`;

// prettier-ignore
const OPTIONS = {
  invocations: VALUE, durations: VALUE, memory: VALUE, policy: VALUES, quiet: SWITCH, 'hearth-option': VALUES,
  json: VALUE, plot: VALUE, 'plot-p75': VALUE, markdown: VALUE, 'per-function': VALUE,
  'faascache-cap-mb': VALUE, 'from-minute': VALUE, 'to-minute': VALUE, split: VALUE,
};

function toArgs({ values: v }: ReturnType<typeof readArgs<typeof OPTIONS>>): Args {
  const policies = (v.policy ?? []).map((p) => {
    if (!(POLICY_NAMES as readonly string[]).includes(p)) throw new UsageError(`unknown policy ${p}`);
    return p as PolicyName;
  });
  const hearth: Record<string, number> = {};
  for (const o of v['hearth-option'] ?? []) {
    const m = /^(\w+)=(.+)$/.exec(o);
    if (!m || !Number.isFinite(Number(m[2]))) throw new UsageError('--hearth-option needs NAME=NUMBER');
    hearth[m[1]] = Number(m[2]);
  }
  if (!v.invocations) throw new UsageError('--invocations is required');
  if (v.split !== undefined && v.split !== 'tune' && v.split !== 'holdout') throw new UsageError('--split is tune or holdout');
  const num = (flag: 'faascache-cap-mb' | 'from-minute' | 'to-minute'): number | undefined =>
    v[flag] === undefined ? undefined : numberArg(v[flag], `--${flag}`, NaN);
  return {
    invocations: v.invocations,
    durations: v.durations,
    memory: v.memory,
    policies: policies.length > 0 ? policies : [...POLICY_NAMES],
    json: v.json,
    plot: v.plot,
    plotP75: v['plot-p75'],
    markdown: v.markdown,
    perFunction: v['per-function'],
    faascacheCapMb: num('faascache-cap-mb'),
    fromMinute: num('from-minute'),
    toMinute: num('to-minute'),
    quiet: v.quiet ?? false,
    split: v.split,
    hearth,
  };
}

function main(): void {
  const args = scriptArgs('sim', USAGE, OPTIONS, toArgs);
  let trace = readTrace(args.invocations!, args.durations, args.memory);
  if (args.fromMinute !== undefined || args.toMinute !== undefined) {
    trace = sliceTrace(trace, args.fromMinute ?? 1, args.toMinute ?? trace.minutes + 1);
  }
  if (args.split) trace = splitTrace(trace, args.split);
  const busyPeak = peakBusyMemoryMb(trace);
  const faascacheCap = args.faascacheCapMb ?? 2 * busyPeak;
  const results: SimResult[] = [];
  for (const name of args.policies) {
    const policy = name === 'hearth' ? new HearthPolicy(args.hearth) : createPolicy(name);
    const started = process.hrtime.bigint();
    const r = simulate(trace, policy, name === 'faascache' ? { memoryCapMb: faascacheCap } : {});
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (!args.quiet) process.stderr.write(`sim: ${name} done in ${ms.toFixed(0)} ms\n`);
    results.push(r);
  }
  const defaulted = trace.functions.filter((f) => f.defaulted.duration || f.defaulted.memory).length;
  process.stdout.write(
    `trace: ${trace.functions.length} functions, ${trace.minutes} minutes, ${trace.invocations} invocations` +
      (defaulted > 0 ? `, ${defaulted} with default duration/memory` : '') +
      `; peak busy memory ${busyPeak.toFixed(0)} MB; faascache cap ${faascacheCap.toFixed(0)} MB\n\n`,
  );
  process.stdout.write(formatTable(results) + '\n');
  if (args.json) writeFileSync(args.json, JSON.stringify(toJson(results), null, 2) + '\n');
  if (args.markdown) writeFileSync(args.markdown, formatMarkdown(results) + '\n');
  if (args.plot) {
    writeFileSync(args.plot, plotSvg(results, `Cold starts vs wasted memory (${trace.functions.length} functions, ${trace.minutes} min)`));
  }
  if (args.plotP75) {
    writeFileSync(
      args.plotP75,
      plotSvg(results, `Per-function cold starts vs wasted memory (${trace.functions.length} functions, ${trace.minutes} min)`, 'p75FunctionColdStartRatio'),
    );
  }
  if (args.perFunction) {
    const lines = ['policy,function,invocations,coldStarts,wastedMemoryGBs'];
    for (const r of results) {
      for (const f of r.details.functions) lines.push(`${r.name},${f.id},${f.invocations},${f.coldStarts},${f.wastedMemoryGBs.toFixed(3)}`);
    }
    writeFileSync(args.perFunction, lines.join('\n') + '\n');
  }
}

main();
