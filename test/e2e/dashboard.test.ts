// The dashboard in a real browser (Debian's Chromium, driven by playwright-core): a gateway with
// an admin token and a worker, real calls through the gateway, and the page read and clicked as
// an operator would. Takes a screenshot: into a temporary directory, or over the one the README
// shows (docs/dashboard.png) when SWITCHYARD_UPDATE_SCREENSHOT=1 — `npm test` changes no tracked file.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { closeClients, send } from '../../client';
import { killAll, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';
import { expectCleanRedis, failureOf } from '../helpers/check-state';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const README_SCREENSHOT = path.join(__dirname, '..', '..', 'docs', 'dashboard.png');
let scratch: string | undefined;
/** Where this run's screenshot goes: docs/ only when asked. */
function screenshotPath(): string {
  if (process.env.SWITCHYARD_UPDATE_SCREENSHOT === '1') return README_SCREENSHOT;
  scratch = mkdtempSync(path.join(tmpdir(), 'sy-dashboard-'));
  return path.join(scratch, 'dashboard.png');
}
const TOKEN = 'dashboard-s3cret';
const available = existsSync(CHROMIUM);
/** An address of this machine that is not loopback: a browser connecting to it is a peer from elsewhere. */
const remote = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
let prefix: string;

let redis: TestRedis;
let browser: Browser;
let page: Page;
let gateway: SwitchyardProcess;
let address: string;

beforeAll(async () => {
  if (!available) return;
  redis = await startRedis();
  prefix = uniquePrefix('dash');
  const env = { RECORD_URL: redis.url, RECORD_KEY: `${prefix}:runs` };
  gateway = await startSwitchyard(
    'gateway',
    ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1', '--admin-token', TOKEN],
    env,
  );
  await startSwitchyard('worker', ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--concurrency', '4', '--keep-done', '1h'], env);
  address = `127.0.0.1:${gateway.ready.port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
}, 60_000);

afterAll(async () => {
  closeClients();
  await browser?.close();
  await killAll();
  const problems = redis ? await failureOf(expectCleanRedis(redis.url)) : null;
  await redis?.close();
  if (problems) throw problems;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const cellText = (selector: string): Promise<string> => page.locator(selector).innerText();
/** Polls the page until `check` holds on `read()`; fails with the last value read. */
async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<void> {
  let last: T | undefined;
  const ok = await waitFor(async () => check((last = await read())), timeoutMs, 100);
  if (!ok) throw new Error(`still ${JSON.stringify(last)} after ${timeoutMs} ms`);
}
const l2Row = 'table#queues tbody tr:nth-child(2)';

(available ? test : test.skip)(
  `an operator watches the queues, looks a job up, requeues a dead job, pauses and resumes level 2${available ? '' : ` — SKIPPED: no Chromium at ${CHROMIUM} (.ci/run installs it)`}`,
  async () => {
    await page.goto(`http://127.0.0.1:${gateway.ready.admin}/`);
    await page.locator('#mode').filter({ hasText: 'admin token' }).waitFor();
    // Nothing comes from the internet: every request of the page went to the admin port.
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(`http://127.0.0.1:${gateway.ready.admin}/`)) foreign.push(r.url());
    });

    // Pause level 2 with the token, then queue level-2 work: its backlog grows on the page.
    await page.fill('#token', TOKEN);
    await page.dispatchEvent('#token', 'change');
    await page.click('#toggle-level-2');
    await page.locator(`${l2Row} .badge`).filter({ hasText: 'paused' }).waitFor();
    for (let i = 0; i < 12; i++) expect((await send('/record', { address, level: 2, content: { i } })).status).toBe(201);
    await until(
      () => cellText(`${l2Row} td:nth-child(5)`),
      (v) => v === '12',
    );

    // Level 1 runs meanwhile: the done rate moves.
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(((await send('/record', { address, level: 1, content: { i, sleep: 100 } })).data as { id: string }).id);
    await until(
      async () => Number(await cellText('#rates tr[data-rate="done"] td:nth-child(2)')),
      (v) => v > 0,
    );

    // Look one up.
    await page.fill('#job-id', ids[0]);
    await page.click('#lookup button');
    await until(
      () => cellText('#job'),
      (v) => /"state": "(running|done)"/.test(v),
    );

    // A dead job (4xx: dead at once), requeued from the page: refused without the token, done with it.
    const rejected = ((await send('/reject', { address, level: 1 })).data as { id: string }).id;
    const requeue = page.locator(`#dead button[data-job="${rejected}"]`);
    await requeue.waitFor({ timeout: 10_000 });
    await page.fill('#token', '');
    await page.dispatchEvent('#token', 'change');
    // Without the token the page shows the actions disabled, saying why; the API refuses them anyway.
    await page.locator(`#dead button[data-job="${rejected}"][title="type the admin token"]:disabled`).waitFor();
    expect(await page.isDisabled('#purge')).toBe(true);
    const refused = await page.evaluate(async (id) => {
      const r = await fetch(`api/dead/${encodeURIComponent(id)}/requeue`, { method: 'POST' });
      return { status: r.status, body: (await r.json()) as unknown };
    }, rejected);
    expect(refused).toEqual({ status: 401, body: { error: 'the admin token is missing or wrong' } });
    await page.fill('#token', TOKEN);
    await page.dispatchEvent('#token', 'change');
    await page.locator(`#dead button[data-job="${rejected}"]:enabled`).click();
    await until(
      () => cellText('#message'),
      (v) => v === `job ${rejected}: requeued`,
    );

    // Resume level 2: its backlog drains.
    await page.click('#toggle-level-2');
    await until(
      () => cellText(`${l2Row} td:nth-child(5)`),
      (v) => v === '0',
      15_000,
    );
    await waitFor(async () => Number(await cellText('#rates tr[data-rate="done"] td:nth-child(2)')) > 0, 5000);
    const screenshot = screenshotPath();
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    expect(foreign).toEqual([]);
    // The page holds no secret of the process.
    expect(await page.content()).not.toContain(TOKEN);
  },
  90_000,
);

(available ? test : test.skip)(
  'before the first data the page says it is loading and every action is disabled; once it knows the token allows them they are enabled; one dead job deleted from the page',
  async () => {
    // Hold the data back for real: the gateway's Redis stopped (SIGSTOP), so the API cannot answer.
    const info = new Redis(redis.url);
    const pid = Number(/^process_id:(\d+)/m.exec(await info.info('server'))?.[1]);
    info.disconnect();
    expect(pid).toBeGreaterThan(0);
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    process.kill(pid, 'SIGSTOP');
    try {
      await fresh.goto(`http://127.0.0.1:${gateway.ready.admin}/`);
      // The page asked for the data and got none yet (the first answer waits on the stopped Redis).
      await fresh.waitForRequest((r) => r.url().endsWith('/api/overview'));
      expect(await fresh.locator('#loading').isVisible()).toBe(true);
      expect(await fresh.innerText('#loading')).toBe('Loading the deployment…');
      expect(await fresh.getAttribute('body', 'class')).toBe('loading');
      expect(await fresh.innerText('#mode')).toBe('loading…');
      for (const id of ['#requeue-all', '#purge']) {
        expect(await fresh.isDisabled(id)).toBe(true);
        expect(await fresh.getAttribute(id, 'title')).toBe('loading…');
      }
      // No pause/resume or per-entry button exists yet that could be pressed.
      expect(await fresh.locator('button[data-action]:enabled').count()).toBe(0);
      await fresh.screenshot({ path: path.join((scratch ??= mkdtempSync(path.join(tmpdir(), 'sy-dashboard-'))), 'loading.png') });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Redis answers again: the data arrives, the loading line goes. Without the token the actions stay disabled.
    await fresh.locator('#loading').waitFor({ state: 'hidden', timeout: 15_000 });
    await fresh.locator('#mode').filter({ hasText: 'actions need the admin token' }).waitFor();
    await fresh.locator('#toggle-level-1').waitFor();
    expect(await fresh.isDisabled('#toggle-level-1')).toBe(true);
    expect(await fresh.isDisabled('#requeue-all')).toBe(true);
    expect(await fresh.getAttribute('#requeue-all', 'title')).toBe('type the admin token');
    await fresh.fill('#token', 'not-the-token');
    await fresh.dispatchEvent('#token', 'change');
    await fresh.locator('#requeue-all[title="the admin token is wrong"]').waitFor();
    await fresh.fill('#token', TOKEN);
    await fresh.dispatchEvent('#token', 'change');
    await fresh.locator('#mode').filter({ hasText: 'admin token accepted' }).waitFor();
    for (const id of ['#requeue-all', '#purge', '#toggle-level-1', '#toggle-level-2']) expect(await fresh.isEnabled(id)).toBe(true);

    // Two dead jobs; one deleted from its row: the other stays.
    const dead = await Promise.all([0, 1].map(async () => ((await send('/reject', { address, level: 1 })).data as { id: string }).id));
    for (const id of dead) await fresh.locator(`#dead button[data-delete="${id}"]:enabled`).waitFor({ timeout: 10_000 });
    await fresh.click(`#dead button[data-delete="${dead[0]}"]`);
    await until(
      () => fresh.locator('#message').innerText(),
      (v) => v === `job ${dead[0]}: deleted`,
    );
    await fresh.locator(`#dead button[data-delete="${dead[0]}"]`).waitFor({ state: 'detached' });
    expect(await fresh.locator(`#dead button[data-delete="${dead[1]}"]`).count()).toBe(1);
    await fresh.close();
  },
  60_000,
);

(available && remote ? test : test.skip)(
  `from another machine the page shows job details redacted until the admin token is typed${
    available && remote ? '' : ` — SKIPPED: ${available ? 'this machine has no non-loopback IPv4 address' : `no Chromium at ${CHROMIUM}`}`
  }`,
  async () => {
    // A gateway whose admin port listens only on the non-loopback address: the browser's requests come from it.
    const env = { RECORD_URL: redis.url, RECORD_KEY: `${prefix}:runs` };
    const outside = await startSwitchyard(
      'gateway',
      ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', '0', '--host', remote!, '--admin-token', TOKEN],
      env,
    );
    const secret = 'api_key=page-s3cret';
    const id = ((await send(`/reject?${secret}`, { address, level: 1 })).data as { id: string }).id;
    const far = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    await far.goto(`http://${remote}:${outside.ready.admin}/`);
    const row = far.locator(`#dead tr:has(button[data-job="${id}"])`);
    await row.waitFor({ timeout: 10_000 });
    await far.locator('#details').filter({ hasText: 'job details redacted: type the admin token' }).waitFor();
    expect(await row.innerText()).toContain('/reject?redacted: send the admin token');
    expect(await far.content()).not.toContain(secret);

    await far.fill('#token', TOKEN);
    await far.dispatchEvent('#token', 'change');
    await far.locator('#details').waitFor({ state: 'hidden' });
    const full = await waitFor(async () => (await row.innerText()).includes(`/reject?${secret}`), 10_000, 100);
    expect(full).toBe(true);
    await far.close();
  },
  60_000,
);
