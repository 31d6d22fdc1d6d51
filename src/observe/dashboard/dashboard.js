// The dashboard: polls /api/dashboard every second and draws the numbers, the table and a uPlot
// chart. Everything it loads is served by the daemon; no network access beyond it.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const fmt = (x) => (x === null || x === undefined ? '–' : x >= 100 ? String(Math.round(x)) : String(Math.round(x * 100) / 100));
  let chart = null;

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function keepAlive(s) {
    if (s === null) return 'until memory is needed';
    if (s >= 3600) return `${fmt(s / 3600)} h`;
    if (s >= 60) return `${fmt(s / 60)} min`;
    return `${s} s`;
  }

  function drawChart(series) {
    const data = [series.t, series.cold, series.generic, series.warm, series.errors];
    if (!chart) {
      const width = Math.max(300, $('chart').clientWidth - 16);
      chart = new uPlot(
        {
          width,
          height: 220,
          series: [
            {},
            { label: 'cold', stroke: '#1f77b4', width: 1.5 },
            { label: 'generic', stroke: '#ff7f0e', width: 1.5 },
            { label: 'warm', stroke: '#2ca02c', width: 1.5 },
            { label: 'errors', stroke: '#b3261e', width: 1.5 },
          ],
          axes: [{}, { label: 'per second' }],
        },
        data,
        $('chart'),
      );
    } else chart.setData(data);
  }

  function render(d) {
    let perMin = 0;
    const split = { cold: 0, generic: 0, warm: 0 };
    let errors = 0;
    const tbody = $('functions').querySelector('tbody');
    tbody.textContent = '';
    for (const f of d.functions) {
      perMin += f.perMinute;
      split.cold += f.starts.cold;
      split.generic += f.starts.generic;
      split.warm += f.starts.warm;
      errors += f.errors;
      const tr = document.createElement('tr');
      tr.dataset.function = f.name;
      cell(tr, f.name);
      cell(tr, f.runtime);
      cell(tr, String(f.perMinute), 'num per-minute');
      cell(tr, String(f.total), 'num total');
      cell(tr, String(f.starts.cold), 'num cold');
      cell(tr, String(f.starts.generic), 'num generic');
      cell(tr, String(f.starts.warm), 'num warm');
      cell(tr, fmt(f.p50Ms), 'num p50');
      cell(tr, fmt(f.p99Ms), 'num p99');
      cell(tr, String(f.errors), 'num errors');
      cell(tr, String(f.instances.idle), 'num idle');
      cell(tr, String(f.instances.busy), 'num busy');
      cell(tr, keepAlive(f.decision.keepAliveS));
      cell(tr, f.decision.prewarmAt ? new Date(f.decision.prewarmAt).toLocaleTimeString() : '–');
      cell(tr, String(f.decision.targetInstances), 'num');
      cell(tr, String(f.queue.depth), 'num');
      tbody.appendChild(tr);
    }
    $('rate').textContent = String(perMin);
    $('split').textContent = `${split.cold} · ${split.generic} · ${split.warm}`;
    $('errors').textContent = String(errors);
    $('queue').textContent = `${d.queue.depth} · ${d.queue.running} · ${d.queue.dead}`;
    $('memory').textContent = `${d.memory.inUseMb} / ${d.memory.budgetMb} MB`;
    $('generic').textContent = d.generic.length ? d.generic.map((g) => `${g.runtime}${g.network ? '@' + g.network : ''} ${g.count}`).join(', ') : '0';
    $('policy').textContent = d.policy ? `(policy: ${d.policy})` : '';
    $('summary').textContent = `${d.functions.length} functions · ${new Date(d.now).toLocaleTimeString()}`;

    const fb = $('failures').querySelector('tbody');
    fb.textContent = '';
    for (const x of d.failures) {
      const tr = document.createElement('tr');
      cell(tr, new Date(x.at).toLocaleTimeString());
      cell(tr, x.function);
      cell(tr, x.trigger);
      cell(tr, x.outcome);
      cell(tr, x.id);
      cell(tr, x.error, 'err');
      fb.appendChild(tr);
    }
    drawChart(d.series);
  }

  async function poll() {
    try {
      const res = await fetch('/api/dashboard', { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      render(await res.json());
      $('status').textContent = 'live';
      document.body.dataset.updated = String(Date.now());
    } catch (err) {
      $('status').textContent = `daemon unreachable (${err.message}); retrying`;
    }
    setTimeout(poll, 1000);
  }
  void poll();
})();
