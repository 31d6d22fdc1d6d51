/**
 * Prometheus metrics: the series the issue names, with bounded labels, fine buckets, a deleted
 * function's series removed, and output that the real `promtool check metrics` accepts.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { Counter, Histogram, Registry } from 'prom-client';
import { DURATION_BUCKETS, HearthMetrics, START_BUCKETS } from '../../src/observe/metrics.js';
import { FakeState, instance, rec } from './observe-fixture.js';

const PROMTOOL = '/usr/bin/promtool';

function promtool(text: string): { status: number | null; out: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function setup() {
  const state = new FakeState();
  state.fns.set('f', 'node').set('g', 'python');
  state.insts = [
    instance({ id: 'a', function: 'f', state: 'busy' }),
    instance({ id: 'b', function: 'f', state: 'idle' }),
    instance({ id: 'c', runtime: 'python', state: 'generic' }),
    instance({ id: 'd', runtime: 'python', state: 'generic' }),
  ];
  state.queue.functions = { g: { queued: 3, running: 1, succeeded: 5, failed: 1, dead: 2, depth: 4 } };
  state.decisions.set('g', { policy: 'hearth', keepAliveMs: null, prewarmAt: Date.UTC(2026, 11, 2, 4, 0, 0), targetInstances: 2 });
  return { state, m: new HearthMetrics(state) };
}

/** The value of the one sample line that starts with `series`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  if (line === undefined) return undefined;
  const v = line.slice(series.length + 1);
  return v === '+Inf' ? Infinity : Number(v);
}

test('invocations, durations, starts and dead letters are counted with their labels', async (t) => {
  const { m } = setup();
  m.onInvocation(rec({ function: 'f', start: 'cold', initMs: 120, durationMs: 3 }));
  m.onInvocation(rec({ function: 'f', start: 'warm', durationMs: 0.2 }));
  m.onInvocation(rec({ function: 'f', start: 'warm', durationMs: 0.3 }));
  m.onInvocation(rec({ function: 'g', trigger: 'schedule', start: 'generic', initMs: 2, outcome: 'error' }));
  m.onInvocation(rec({ function: 'g', trigger: 'async', start: null, outcome: 'throttled' }));
  m.onDeadLetter({ function: 'g', eventId: 'e', trigger: 'async', error: { type: 'E', message: 'x' }, at: 0 });
  const text = await m.render();
  t.is(sample(text, 'hearth_invocations_total{function="f",start="warm",outcome="ok",trigger="sync"}'), 2);
  t.is(sample(text, 'hearth_invocations_total{function="f",start="cold",outcome="ok",trigger="sync"}'), 1);
  t.is(sample(text, 'hearth_invocations_total{function="g",start="generic",outcome="error",trigger="schedule"}'), 1);
  t.is(sample(text, 'hearth_invocations_total{function="g",start="none",outcome="throttled",trigger="async"}'), 1);
  // Warm calls of 0.2 and 0.3 ms land in different sub-millisecond buckets.
  t.is(sample(text, 'hearth_invocation_duration_seconds_bucket{le="0.00025",function="f"}'), 1);
  t.is(sample(text, 'hearth_invocation_duration_seconds_bucket{le="0.0005",function="f"}'), 2);
  t.is(sample(text, 'hearth_invocation_duration_seconds_count{function="f"}'), 3);
  t.is(sample(text, 'hearth_invocation_duration_seconds_count{function="g"}'), 1, 'a throttled invocation has no duration');
  t.is(sample(text, 'hearth_start_duration_seconds_count{kind="warm"}'), 2);
  t.is(sample(text, 'hearth_start_duration_seconds_bucket{le="0.25",kind="cold"}'), 1);
  t.is(sample(text, 'hearth_start_duration_seconds_bucket{le="0.1",kind="cold"}'), 0);
  t.is(sample(text, 'hearth_dead_letters_total{function="g"}'), 1);
});

test('gauges are read from the state at scrape time: instances, concurrency, queue, memory, the model', async (t) => {
  const { m, state } = setup();
  let text = await m.render();
  t.is(sample(text, 'hearth_pool_instances{function="f",runtime="node",state="busy"}'), 1);
  t.is(sample(text, 'hearth_pool_instances{function="f",runtime="node",state="idle"}'), 1);
  t.is(sample(text, 'hearth_pool_instances{function="",runtime="python",state="generic"}'), 2);
  t.is(sample(text, 'hearth_concurrent_executions{function="f"}'), 1);
  t.is(sample(text, 'hearth_concurrent_executions{function="g"}'), 0);
  t.is(sample(text, 'hearth_queue_events{function="g",status="queued"}'), 3);
  t.is(sample(text, 'hearth_queue_events{function="g",status="dead"}'), 2);
  t.is(sample(text, 'hearth_pool_memory_bytes'), 256 * 1024 * 1024);
  t.is(sample(text, 'hearth_functions'), 2);
  t.is(sample(text, 'hearth_model_keep_alive_seconds{function="f"}'), 600);
  t.is(sample(text, 'hearth_model_keep_alive_seconds{function="g"}'), Infinity);
  t.is(sample(text, 'hearth_model_prewarm_at_seconds{function="g"}'), Date.UTC(2026, 11, 2, 4, 0, 0) / 1000);
  t.is(sample(text, 'hearth_model_prewarm_at_seconds{function="f"}'), undefined, 'no pre-warm planned: no series');
  t.is(sample(text, 'hearth_model_target_instances{function="g"}'), 2);
  t.true(text.includes('process_cpu_seconds_total'), "Node's default process metrics are there");

  state.insts = [];
  text = await m.render();
  t.is(sample(text, 'hearth_pool_instances{function="f",runtime="node",state="busy"}'), undefined, 'an instance that ended leaves no series');
  t.is(sample(text, 'hearth_concurrent_executions{function="f"}'), 0);
});

test("a deleted function's series are removed at the next scrape; a new one with the name starts from zero", async (t) => {
  const { m, state } = setup();
  m.onInvocation(rec({ function: 'f' }));
  m.onDeadLetter({ function: 'f', eventId: 'e', trigger: 'async', error: { type: 'E', message: 'x' }, at: 0 });
  t.true((await m.render()).includes('function="f"'));
  state.fns.delete('f');
  state.insts = [];
  m.onInvocation(rec({ function: 'f' })); // a late record of the deleted function
  const text = await m.render();
  t.false(
    text.includes('function="f"'),
    text.split('\n').find((l) => l.includes('function="f"')),
  );
  t.true(text.includes('function="g"'));
  state.fns.set('f', 'node');
  m.onInvocation(rec({ function: 'f' }));
  t.is(sample(await m.render(), 'hearth_invocations_total{function="f",start="warm",outcome="ok",trigger="sync"}'), 1);
});

test('a scrape renders again only the series that changed since the last; the text stays whole', async (t) => {
  const { m, state } = setup();
  for (let i = 0; i < 20; i++) state.fns.set(`h${i}`, 'node');
  for (let i = 0; i < 20; i++) m.onInvocation(rec({ function: `h${i}` }));
  const ours = (text: string): string =>
    text
      .split('\n')
      .filter((l) => l.includes('hearth_'))
      .join('\n');
  const first = await m.render();
  t.true(m.lastRendered > 40);
  t.is(ours(await m.render()), ours(first), "nothing changed: the same text (Node's process metrics move by themselves)");
  t.is(m.lastRendered, 0);
  m.onInvocation(rec({ function: 'h3', durationMs: 0.2 }));
  const text = await m.render();
  t.is(m.lastRendered, 2, "h3's counter and histogram only");
  t.is(sample(text, 'hearth_invocations_total{function="h3",start="warm",outcome="ok",trigger="sync"}'), 2);
  t.is(sample(text, 'hearth_invocations_total{function="h4",start="warm",outcome="ok",trigger="sync"}'), 1);
  t.is(sample(text, 'hearth_invocation_duration_seconds_count{function="h3"}'), 2);
  // A gauge that moved is rendered again; one family's samples stay together with one HELP and TYPE.
  state.insts.push(instance({ id: 'z', function: 'h5', state: 'idle' }));
  const after = await m.render();
  t.is(m.lastRendered, 1);
  t.is(sample(after, 'hearth_pool_instances{function="h5",runtime="node",state="idle"}'), 1);
  const lines = after.split('\n');
  for (const family of ['hearth_invocations_total', 'hearth_pool_instances', 'hearth_invocation_duration_seconds']) {
    t.is(
      lines.filter((l) => l === `# TYPE ${family} ${family.endsWith('_total') ? 'counter' : family.endsWith('_seconds') ? 'histogram' : 'gauge'}`).length,
      1,
    );
    const at = lines.flatMap((l, i) => (l.startsWith(`${family}{`) || l.startsWith(`${family}_`) ? [i] : []));
    t.is(at[at.length - 1] - at[0] + 1, at.length, `${family}: its samples are contiguous`);
  }
  t.is(promtool(after).status, 0);
});

test('promtool check metrics accepts the output', async (t) => {
  const { m } = setup();
  for (const trigger of ['sync', 'async', 'schedule', 'lambda'] as const) m.onInvocation(rec({ function: 'g', trigger, start: 'cold', initMs: 80 }));
  m.onInvocation(rec({ function: 'f', outcome: 'timeout', error: { type: 'Timeout', message: 'x' } }));
  m.onDeadLetter({ function: 'g', eventId: 'e', trigger: 'schedule', error: { type: 'E', message: 'x' }, at: 0 });
  const r = promtool(await m.render());
  t.is(r.status, 0, r.out);
  t.is(r.out.trim(), '', 'no lint complaints');
  // And promtool does fail on bad text, so the check above can fail.
  t.not(promtool('# TYPE x counter\nx{a="1" 1\n').status, 0);
});

test('counts handed to prom-client in batches give the very lines prom-client gives when fed one invocation at a time', async (t) => {
  const { m } = setup();
  // The reference: prom-client metrics fed each record as it comes.
  const reg = new Registry();
  const counter = new Counter({ name: 'hearth_invocations_total', help: 'h', labelNames: ['function', 'start', 'outcome', 'trigger'], registers: [reg] });
  const duration = new Histogram({
    name: 'hearth_invocation_duration_seconds',
    help: 'h',
    labelNames: ['function'],
    buckets: DURATION_BUCKETS,
    registers: [reg],
  });
  const starts = new Histogram({ name: 'hearth_start_duration_seconds', help: 'h', labelNames: ['kind'], buckets: START_BUCKETS, registers: [reg] });
  const kinds = ['warm', 'warm', 'generic', 'cold', null] as const;
  const outcomes = ['ok', 'ok', 'ok', 'error', 'timeout'] as const;
  const triggers = ['sync', 'async', 'schedule'] as const;
  let text = '';
  // More than one batch (1,024) between two scrapes, and a scrape in the middle of a batch.
  for (let i = 0; i < 3000; i++) {
    const r = rec({
      function: i % 4 === 0 ? 'g' : 'f',
      start: kinds[i % 5],
      outcome: outcomes[(i * 7) % 5],
      trigger: triggers[i % 3],
      durationMs: ((i * 7919) % 2000) / 100,
      initMs: (i % 13) * 3.7,
    });
    m.onInvocation(r);
    counter.inc({ function: r.function, start: r.start ?? 'none', outcome: r.outcome, trigger: r.trigger });
    if (r.start !== null) {
      duration.observe({ function: r.function }, r.durationMs / 1000);
      starts.observe({ kind: r.start }, r.initMs / 1000);
    }
    if (i === 1500) text = await m.render();
  }
  t.true(text.includes('hearth_invocations_total{function="f"'));
  text = await m.render();
  const expected = (await reg.metrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.true(expected.length > 60);
  const lines = new Set(text.split('\n'));
  for (const l of expected) t.true(lines.has(l), l);
  t.is(
    text.split('\n').filter((l) => l.startsWith('hearth_invocations_total{')).length,
    expected.filter((l) => l.startsWith('hearth_invocations_total{')).length,
  );
});
