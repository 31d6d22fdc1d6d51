/**
 * How often a first invocation finds no generic instance, in the simulator, with Hearth and the
 * daemon's generic-pool sizing (scripts/sim/generic.ts): both training files.
 *
 *   npx tsc -p tsconfig.json && flock /tmp/hearth-bench.lock node dist/scripts/sim-generic.js [--data DIR] [--base 1] [--refill-ms 50]
 */
import { join } from 'node:path';
import { HearthPolicy } from '../src/model/index.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';
import { genericMisses } from './sim/generic.js';
import { simulate } from './sim/simulator.js';
import { readTrace } from './sim/trace.js';

const USAGE = 'usage: node dist/scripts/sim-generic.js [--data DIR] [--base N] [--refill-ms MS]';
const O = scriptArgs('sim-generic', USAGE, { data: VALUE, base: VALUE, 'refill-ms': VALUE }, ({ values: v }) => ({
  data: v.data ?? '/work/shared/data/azure2019',
  base: numberArg(v.base, '--base', 1, { integer: true, min: 0 }),
  refillMs: numberArg(v['refill-ms'], '--refill-ms', 50, COUNT),
}));

const lines = [
  `generic base ${O.base}, refill ${O.refillMs} ms, sizing every 5 s`,
  '',
  '| file | first invocations | found no generic instance | share | pre-warms | pre-warms without one |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
];
for (const file of ['sample100', 'train350']) {
  const trace = readTrace(join(O.data, `${file}_inv.csv`), join(O.data, `${file}_run.csv`), join(O.data, `${file}_mem.csv`));
  const policy = new HearthPolicy();
  const creations: { t: number; prewarm: boolean }[] = [];
  const rates: number[] = [];
  simulate(trace, policy, {
    onCreate: (t, prewarm) => creations.push({ t, prewarm }),
    onMinute: (t) => {
      let sum = 0;
      for (const f of trace.functions) sum += policy.expectedColdRatePerHour(f.id, t);
      rates.push(sum);
    },
  });
  const r = genericMisses(creations, (t) => rates[Math.min(rates.length - 1, Math.floor(t / 60_000))] ?? 0, {
    base: O.base,
    refillMs: O.refillMs,
    periodMs: 5000,
  });
  lines.push(
    `| ${file} | ${r.firstInvocations} | ${r.misses} | ${((100 * r.misses) / Math.max(1, r.firstInvocations)).toFixed(1)} % | ${r.prewarms} | ${r.prewarmMisses} |`,
  );
}
process.stdout.write(lines.join('\n') + '\n');
