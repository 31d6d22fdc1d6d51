/**
 * Trace simulator: replays an Azure Functions 2019-format trace through pool policies.
 *
 *   npm run sim -- --invocations F --durations F --memory F [--policy NAME]… [--json OUT]
 *                  [--plot OUT.svg] [--plot-p75 OUT.svg] [--markdown OUT.md] [--faascache-cap-mb N]
 *                  [--from-minute M --to-minute M] [--per-function OUT.csv]
 *
 * Policies: hearth, fixed-10m, fixed-20m, hybrid-histogram, faascache (all when none is named).
 * See docs/pool-policy.md for the replay rule and the policies.
 */
import { writeFileSync } from 'node:fs';
import { HearthPolicy, POLICY_NAMES, createPolicy, type PolicyName } from '../src/model/index.js';
import { formatMarkdown, formatTable, plotSvg, toJson } from './sim/report.js';
import { peakBusyMemoryMb, simulate, type SimResult } from './sim/simulator.js';
import { readTrace, sliceTrace } from './sim/trace.js';

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
  hearth: Record<string, number>;
}

const USAGE = `usage: sim --invocations F [--durations F] [--memory F] [--policy NAME]... [--json OUT]
           [--plot OUT.svg] [--plot-p75 OUT.svg] [--markdown OUT.md] [--per-function OUT.csv] [--faascache-cap-mb N]
           [--from-minute M] [--to-minute M] [--hearth-option NAME=NUMBER]... [--quiet]
policies: ${POLICY_NAMES.join(', ')}`;

function parseArgs(argv: string[]): Args {
  const a: Args = { policies: [], quiet: false, hearth: {} };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    const num = (): number => {
      const x = Number(v());
      if (!Number.isFinite(x)) throw new Error(`${k} needs a number`);
      return x;
    };
    switch (k) {
      case '--invocations': a.invocations = v(); break;
      case '--durations': a.durations = v(); break;
      case '--memory': a.memory = v(); break;
      case '--policy': {
        const p = v();
        if (!(POLICY_NAMES as readonly string[]).includes(p)) throw new Error(`unknown policy ${p}`);
        a.policies.push(p as PolicyName);
        break;
      }
      case '--json': a.json = v(); break;
      case '--plot': a.plot = v(); break;
      case '--plot-p75': a.plotP75 = v(); break;
      case '--markdown': a.markdown = v(); break;
      case '--per-function': a.perFunction = v(); break;
      case '--faascache-cap-mb': a.faascacheCapMb = num(); break;
      case '--from-minute': a.fromMinute = num(); break;
      case '--to-minute': a.toMinute = num(); break;
      case '--quiet': a.quiet = true; break;
      case '--hearth-option': {
        const m = /^(\w+)=(.+)$/.exec(v());
        if (!m || !Number.isFinite(Number(m[2]))) throw new Error('--hearth-option needs NAME=NUMBER');
        a.hearth[m[1]!] = Number(m[2]);
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${k}`);
    }
  }
  if (!a.invocations) throw new Error('--invocations is required');
  if (a.policies.length === 0) a.policies = [...POLICY_NAMES];
  return a;
}

function main(): void {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`sim: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  let trace = readTrace(args.invocations!, args.durations, args.memory);
  if (args.fromMinute !== undefined || args.toMinute !== undefined) {
    trace = sliceTrace(trace, args.fromMinute ?? 1, args.toMinute ?? trace.minutes + 1);
  }
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
