/**
 * The dashboard in a real headless browser (Debian's chromium through playwright-core) against a
 * real daemon: the page loads only from the daemon's listener, and its numbers change by
 * themselves as functions are deployed and invoked.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { fixture, isRoot, startHarness, type Harness } from './daemon-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const it = isRoot && existsSync(CHROMIUM) ? test.serial : test.skip;
if (!isRoot) test('dashboard tests need root (they start a daemon)', (t) => t.pass());
else if (!existsSync(CHROMIUM)) test(`dashboard tests need ${CHROMIUM} (Debian package chromium)`, (t) => t.pass());

let h: Harness;
let browser: Browser;
let page: Page;
let origin: string;
const requested: string[] = [];

test.before(async () => {
  if (!isRoot || !existsSync(CHROMIUM)) return;
  h = await startHarness({ generic: { node: 1, python: 0 }, metricsListen: '127.0.0.1:0' });
  origin = `http://127.0.0.1:${h.daemon.metricsAddress!.port}`;
  await h.deploy('hello', fixture('observe-node'), 'node', 'app.hello');
  await h.deploy('boom', fixture('observe-node'), 'node', 'app.boom');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage();
  page.on('request', (r) => void requested.push(r.url()));
});
test.after.always(async () => {
  await browser?.close();
  await h?.stop();
});

/** Text of the cell with class `cls` in the row of `fn`. */
const cell = (fn: string, cls: string): Promise<string> => page.locator(`tr[data-function="${fn}"] td.${cls}`).innerText();

/** Waits until the page itself (polling the daemon) shows `want` in that cell. */
async function pageShows(fn: string, cls: string, want: string): Promise<void> {
  await page.waitForFunction(([f, c, w]) => document.querySelector(`tr[data-function="${f}"] td.${c}`)?.textContent === w, [fn, cls, want] as const, {
    timeout: 30_000,
    polling: 100,
  });
}

it('the page loads, goes live, and draws its chart with assets from the daemon only', async (t) => {
  await page.goto(origin + '/');
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live', undefined, { timeout: 30_000 });
  await pageShows('hello', 'total', '0');
  t.is(await cell('boom', 'total'), '0');
  t.is(await page.locator('#chart canvas').count(), 1, 'uPlot drew its canvas');
  t.true(requested.length >= 5);
  t.deepEqual(
    requested.filter((u) => !u.startsWith(origin + '/')),
    [],
    'nothing is fetched from anywhere but the daemon',
  );
});

it('invocations change the numbers on the page without a reload', async (t) => {
  const updatedBefore = await page.evaluate(() => document.body.dataset['updated']);
  for (let n = 0; n < 5; n++) await h.invoke('hello', { n });
  await h.invoke('boom');
  await pageShows('hello', 'total', '5');
  await pageShows('boom', 'errors', '1');
  const starts = await Promise.all(['cold', 'generic', 'warm'].map((k) => cell('hello', k)));
  t.is(
    starts.reduce((a, b) => a + Number(b), 0),
    5,
  );
  t.is(await cell('hello', 'warm'), '4');
  t.is(await cell('hello', 'per-minute'), '5');
  t.not(await cell('hello', 'p50'), '–');
  t.is(await cell('hello', 'idle'), '1');
  t.regex(await page.locator('#failures tbody').innerText(), /boom[\s\S]*TypeError: boom/);
  t.regex(await page.locator('#rate').innerText(), /^6$/);
  t.not(await page.evaluate(() => document.body.dataset['updated']), updatedBefore);
});

it('a function deployed while the page is open appears; a deleted one goes', async (t) => {
  await h.deploy('late', fixture('observe-node'), 'node', 'app.hello');
  await pageShows('late', 'total', '0');
  await h.client.call('DELETE', '/v1/functions/boom');
  await page.waitForFunction(() => !document.querySelector('tr[data-function="boom"]'), undefined, { timeout: 30_000 });
  t.is(await page.locator('tr[data-function]').count(), 2);
});
