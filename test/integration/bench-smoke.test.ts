/**
 * The performance suite, one tiny iteration (`npm run bench -- --smoke`), so its scripts cannot
 * rot: it must finish, write results.json of the expected shape (with every headline key) and the
 * report, and leave no daemon, cgroup or temporary directory behind. No timing is asserted.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Latency } from '../../scripts/bench/headline.js';
import type { LoopBlockSeries } from '../../scripts/bench/loop-block.js';
import type { ScalePoint } from '../../scripts/bench/scale.js';
import { IDLE_METHODS } from '../../scripts/bench/start-idle.js';
import type { StartSeries } from '../../scripts/bench/start-latency.js';
import type { ThroughputPoint } from '../../scripts/bench/throughput.js';

const isRoot = process.getuid?.() === 0;
const root = join(__dirname, '..', '..', '..');

if (!isRoot) test('bench smoke test needs root (the suite starts daemons and sandboxes)', (t) => t.pass());

/** Directories of cgroup `name` under any hierarchy. */
const cgroupDirs = (name: string): string[] => {
  const root = '/sys/fs/cgroup';
  return [root, ...readdirSync(root).map((d) => join(root, d))].map((d) => join(d, name)).filter((d) => existsSync(d));
};

(isRoot ? test.serial : test.skip)('npm run bench -- --smoke writes results of the expected shape and cleans up', async (t) => {
  t.timeout(600_000);
  const out = mkdtempSync(join(tmpdir(), 'hearth-bench-smoke-'));
  // The committed report and plots, to check that a smoke run leaves them alone.
  const committed = ['BENCHMARKS.md', 'docs/bench-start-python.svg', 'docs/bench-replay.svg'].map((f) => [f, readFileSync(join(root, f), 'utf8')]);
  try {
    const child = spawn(process.execPath, [join(root, 'dist/scripts/bench.js'), '--smoke', '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    t.is(code, 0, stderr.slice(-3000));

    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    t.is(r.mode, 'smoke');
    t.deepEqual(r.errors, {});
    t.true(typeof r.machine.cpu === 'string' && r.machine.cores > 0 && r.machine.memoryMb > 0);

    const s = r.suites;
    // 1. start latency: every method of every runtime/handler has its samples (or says why not).
    const methods = ['hearth-warm', 'hearth-generic', 'hearth-cold', 'fresh-sandbox', 'bwrap', 'crun'];
    for (const rt of ['python', 'node']) {
      for (const handler of ['hello', 'bigdep']) {
        for (const m of methods) {
          const x = s.start.series.find((q: StartSeries) => q.runtime === rt && q.handler === handler && q.method === m);
          t.truthy(x, `${rt}/${handler}/${m} missing`);
          t.true(x.summary.n + x.excluded === 2 || typeof x.error === 'string', `${rt}/${handler}/${m}: ${x.error ?? x.summary.n}`);
          if (x.summary.n > 0) t.true(x.summary.min <= x.summary.median && x.summary.median <= x.summary.max);
        }
      }
    }
    // after 0.5 s idle (hello only): a generic start and its floor, one hop and through a relay
    for (const rt of ['python', 'node']) {
      for (const m of IDLE_METHODS) {
        const x = s.start.series.find((q: StartSeries) => q.runtime === rt && q.handler === 'hello' && q.method === m);
        t.truthy(x, `${rt}/${m} missing`);
        t.true(x.summary.n + x.excluded === 2 || typeof x.error === 'string', `${rt}/${m}: ${x.error ?? x.summary.n}`);
      }
    }
    // the daemon's event-loop block while an instance is made: per runtime, cold and refill
    t.deepEqual(
      s.start.loopBlock.map((b: LoopBlockSeries) => `${b.runtime}/${b.kind}`),
      ['python/cold', 'python/refill', 'node/cold', 'node/refill'],
    );
    for (const b of s.start.loopBlock) t.true(b.summary.n + b.excluded === 2 || typeof b.error === 'string', JSON.stringify(b));
    // steps of a generic start, alone and with a refill spawn, per runtime
    t.is(s.steps.points.length, 4);
    for (const p of s.steps.points) t.true(p.steps.total.n === 2 && p.steps.specialized.n === 2, JSON.stringify(p));
    // 2. throughput and overhead
    // concurrency 1 and 8 per runtime on the default daemon, and concurrency 1 on the one with reply polling on
    t.is(s.throughput.throughput.filter((p: ThroughputPoint) => p.replyPoll !== true).length, 4);
    t.deepEqual(
      s.throughput.throughput.filter((p: ThroughputPoint) => p.replyPoll === true).map((p: ThroughputPoint) => [p.runtime, p.concurrency]),
      [
        ['python', 1],
        ['node', 1],
      ],
    );
    for (const p of s.throughput.throughput) t.true(p.invocations > 0 && p.perSecond > 0 && p.latency.n === p.invocations);
    for (const o of s.throughput.overhead) t.true(o.bare.n > 0 && o.hearth.n > 0 && o.httpEcho.n > 0 && o.hearthPoll.n > 0);
    // 3. density: generic and specialised instances of both runtimes were measured.
    t.is(s.density.points.length, 4);
    for (const p of s.density.points) t.true(p.instances > 0 && p.pssMb.median > 0 && p.fitIn4GB > 0, JSON.stringify(p));
    // 4. scale: one point per step on each axis.
    t.is(s.scale.points.filter((p: ScalePoint) => p.axis === 'functions').length, 2);
    t.is(s.scale.points.filter((p: ScalePoint) => p.axis === 'instances').length, 2);
    for (const p of s.scale.points) t.true(p.warm.n > 0);
    // 5. replay: live invocations all ran, next to the simulator's prediction for the same slice.
    t.true(s.replay.live.invocations > 0);
    t.is(s.replay.live.failed, 0, s.replay.errors.join('\n'));
    t.is(s.replay.live.invocations, s.replay.trace.invocations);
    t.true(s.replay.simulated.length >= 1 && s.replay.simulated[0].invocations === s.replay.trace.invocations);
    // The headline: every key, each figure a latency or a throughput, or null with its reason.
    const h = r.headline;
    const isLatency = (v: Latency): boolean => Number.isFinite(v.median) && Number.isFinite(v.p99) && v.median <= v.p99 && v.n > 0;
    const keys = [
      'generic_ms',
      'bwrap_ms',
      'crun_ms',
      'new_instance_ms',
      'generic_after_idle_ms',
      'warm_interleaved_ms',
      'warm_overhead_ms',
      'throughput_per_s',
    ];
    for (const key of keys) {
      for (const rt of ['python', 'node']) {
        const v = h[key][rt];
        if (v === null) t.is(typeof h.missing[`${key}.${rt}`], 'string', `${key}.${rt} is null without a reason`);
        else if (key === 'throughput_per_s') t.true(v > 0, `${key}.${rt}`);
        // An overhead is a difference of two series' percentiles: noise can make it negative, and
        // its p99 (hearth's p99 less the bare p99) need not exceed its median.
        else if (key === 'warm_overhead_ms') t.true(Number.isFinite(v.median) && Number.isFinite(v.p99) && v.n > 0, `${key}.${rt}: ${JSON.stringify(v)}`);
        else t.true(isLatency(v), `${key}.${rt}: ${JSON.stringify(v)}`);
      }
    }
    for (const [path, v] of [
      ['idle_floor_ms.one_hop', h.idle_floor_ms.one_hop],
      ['idle_floor_ms.relay', h.idle_floor_ms.relay],
      ['replay_warm_overhead_ms', h.replay_warm_overhead_ms],
      ['loop_block_ms.python', h.loop_block_ms.python],
      ['loop_block_ms.node', h.loop_block_ms.node],
    ]) {
      t.true(v === null ? typeof h.missing[path] === 'string' : isLatency(v), `${path}: ${JSON.stringify(v)}`);
    }
    t.true(h.loop_block_p99_ms === null ? typeof h.missing.loop_block_p99_ms === 'string' : h.loop_block_p99_ms >= 0);
    t.truthy(h.generic_ms.python && h.generic_ms.node, JSON.stringify(h.missing));
    // 6. report and plots, in the output directory (a smoke run never touches BENCHMARKS.md).
    const md = readFileSync(join(out, 'BENCHMARKS.md'), 'utf8');
    t.true(md.includes('## 1. Start latency'));
    t.true(md.includes('## Headline') && md.includes('| `generic_after_idle_ms` |'));
    for (const f of ['bench-start-python.svg', 'bench-start-node.svg', 'bench-start-ranges.svg', 'bench-replay.svg', 'bench-replay-memory.svg']) {
      t.true(readFileSync(join(out, f), 'utf8').startsWith('<svg'), f);
    }
    for (const [f, text] of committed) t.is(readFileSync(join(root, f), 'utf8'), text, `${f} was rewritten`);
    // Nothing it created is left behind: daemons' and sandboxes' cgroups, state and work directories.
    t.true(r.created.cgroups.length >= 4 && r.created.dirs.length >= 4);
    for (const cg of r.created.cgroups) t.deepEqual(cgroupDirs(cg), [], `cgroup ${cg} left`);
    for (const d of r.created.dirs) t.false(existsSync(d), `${d} left`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
