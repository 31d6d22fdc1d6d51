/**
 * The README's dashboard screenshot: starts a daemon (a child process, --metrics-listen on a free
 * loopback port), deploys a few functions, sends them traffic for a while (sync, async, some
 * failing), opens the dashboard in headless chromium and saves a PNG. Root only; everything it
 * starts is removed at the end, also on SIGINT/SIGTERM.
 *
 *   node dist/scripts/dashboard-screenshot.js [--out docs/img/dashboard.png] [--seconds 40]
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Cleanup, removeDir } from './bench/cleanup.js';
import { DaemonProcess, repoRoot } from './bench/daemon-process.js';
import { freePort } from './bench/free-port.js';
import { sleep } from './bench/stats.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

const CHROMIUM = '/usr/bin/chromium';

async function main(): Promise<number> {
  const usage = 'usage: node dist/scripts/dashboard-screenshot.js [--out FILE.png] [--seconds N]';
  const args = scriptArgs('dashboard-screenshot', usage, { out: VALUE, seconds: VALUE }, ({ values: v }) => ({
    out: v.out ?? join(repoRoot, 'docs', 'img', 'dashboard.png'),
    seconds: numberArg(v.seconds, '--seconds', 40, COUNT),
  }));
  if (process.getuid?.() !== 0) throw new Error('needs root (it starts a daemon)');
  if (!existsSync(CHROMIUM)) throw new Error(`needs ${CHROMIUM} (apt-get install chromium)`);
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const work = mkdtempSync(join(tmpdir(), 'hearth-shot-'));
  cleanup.add('work dir', () => removeDir(work));
  cleanup.created.dirs.push(work);
  try {
    const port = await freePort();
    const d = await DaemonProcess.start(
      work,
      { generic: { node: 2, python: 1 }, policy: 'model', memoryBudgetMb: 4096, metricsListen: `127.0.0.1:${port}` },
      cleanup,
    );
    const node = join(repoRoot, 'test/integration/fixtures/observe-node');
    const python = join(repoRoot, 'test/integration/fixtures/queue-python');
    await d.deploy('thumbnail', node, 'node', 'app.hello', { concurrency: 4 });
    await d.deploy('checkout', node, 'node', 'app.hello');
    await d.deploy('report', node, 'node', 'app.boom', { retries: 0 });
    await d.deploy('ingest', python, 'python', 'work.slow', { concurrency: 2 });
    await d.deploy('flaky-sync', python, 'python', 'work.flaky', { retries: 1 });

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    cleanup.add('browser', () => browser.close());
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`http://127.0.0.1:${port}/`);

    const end = Date.now() + args.seconds * 1000;
    let i = 0;
    while (Date.now() < end) {
      cleanup.check();
      i++;
      await d.client.call('POST', '/v1/functions/thumbnail/invoke', { n: i });
      if (i % 2 === 0) await d.client.call('POST', '/v1/functions/checkout/invoke', { n: i });
      if (i % 3 === 0) await d.client.call('POST', '/v1/functions/ingest/events', { i, sleep: 0.01 });
      if (i % 25 === 0) await d.client.call('POST', '/v1/functions/report/invoke', {});
      if (i % 40 === 0) await d.client.call('POST', '/v1/functions/flaky-sync/events', { i });
      await sleep(40 + 60 * Math.abs(Math.sin(i / 30)));
    }
    await sleep(2500);
    await page.screenshot({ path: args.out, fullPage: true });
    process.stderr.write(`saved ${args.out} after ${i} rounds of traffic\n`);
  } finally {
    await cleanup.runAll();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`dashboard-screenshot: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
