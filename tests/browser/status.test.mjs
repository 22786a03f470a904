// Real-browser test of the cluster status page (/status): two hubs with their server API on, each
// paired with a web server that reads both APIs (WEB_API_URLS, WEB_API_KEY) and derives the hub's
// WebSocket address from the address the page was loaded from (no HUB_URL, WEB_HUB_PORT only).
// Headless Chromium opens the status page from the chat page's link; the page must show both hubs,
// its figures must move while two chat pages talk across the hubs, and hub2 killed must turn red.
// Run through tests/browser/run.sh (REDIS_URL, BIN_DIR, SCREENSHOT_DIR, LOG_DIR).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium } from './browser.mjs';
import { freePort, startStack, testEnv } from './stack.mjs';

const { binDir: BIN_DIR, redisUrl: REDIS_URL, screenshotDir: SCREENSHOT_DIR, logDir: LOG_DIR } =
  testEnv();
const STEP_TIMEOUT_MS = 90_000;
// Generous deadlines: conditions are polled, so a fast machine passes fast and a busy one still passes.
const WAIT_MS = 30_000;
const API_KEY = `status-test-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}-key-0123456789`;
const PREFIX = `rthub-status-${Math.random().toString(36).slice(2, 8)}:`;

const log = (msg) => console.log(`  [status] ${msg}`);

async function waitFor(what, check, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

describe('status page: both hubs, live figures, a killed hub shown down', () => {
  let stack;
  let ports;
  let browser;
  let closeBrowser;
  let status;
  let chat1;
  let chat2;
  const pageErrors = [];
  const foreign = [];
  let shot = 0;

  const screenshot = async (page, name) => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    shot += 1;
    const file = join(SCREENSHOT_DIR, `status-${String(shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    log(`screenshot ${file}`);
  };
  const card = (name) => status.locator(`[data-testid=hub][data-hub="${name}"]`);
  const figure = async (name, testid) => (await card(name).locator(`[data-testid=${testid}]`).textContent()).trim();
  const number = async (name, testid) => Number.parseFloat(await figure(name, testid));

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    const [api1, api2] = await Promise.all([freePort(), freePort()]);
    stack = await startStack({
      binDir: BIN_DIR,
      redisUrl: REDIS_URL,
      logDir: LOG_DIR,
      logPrefix: 'status-',
      hubEnv: { HUB_API_KEYS: API_KEY, HUB_REDIS_PREFIX: PREFIX },
      hubEnvs: { hub1: { HUB_API_LISTEN: `127.0.0.1:${api1}` }, hub2: { HUB_API_LISTEN: `127.0.0.1:${api2}` } },
      // No HUB_URL: the page connects to ws://<the host it was loaded from>:WEB_HUB_PORT/ws.
      webEnv: { HUB_URL: '', WEB_API_URLS: `http://127.0.0.1:${api1},http://127.0.0.1:${api2}`, WEB_API_KEY: API_KEY },
    });
    const { hub1Port: hub1, hub2Port: hub2, web1Port: web1, web2Port: web2 } = stack.ports;
    ports = { hub1, hub2, api1, api2, web1, web2 };
    log(`hub1 :${hub1} (api :${api1})  hub2 :${hub2} (api :${api2})  web1 :${web1}  web2 :${web2}`);
    ({ context: browser, close: closeBrowser } = await launchChromium());
    browser.on('page', (page) => {
      page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(`${page.url()}: console: ${m.text()}`);
      });
      page.on('request', (r) => {
        const u = new URL(r.url());
        const own = [ports.web1, ports.web2, ports.hub1, ports.hub2].map(String).includes(u.port) &&
          ['127.0.0.1', 'localhost'].includes(u.hostname);
        if (!own && !r.url().startsWith('data:')) foreign.push(r.url());
      });
    });
  });

  after(async () => {
    try {
      await closeBrowser?.();
    } finally {
      await stack?.stop();
    }
  });

  it('chat pages reach their hub at the host they were loaded from (no HUB_URL)', { timeout: STEP_TIMEOUT_MS }, async () => {
    chat1 = await browser.newPage();
    await chat1.goto(`http://127.0.0.1:${ports.web1}/`);
    chat2 = await browser.newPage();
    // Loaded by another name: the hub address follows it.
    await chat2.goto(`http://localhost:${ports.web2}/`);
    assert.equal(await chat1.locator('body').getAttribute('data-hub-url'), `ws://127.0.0.1:${ports.hub1}/ws`);
    assert.equal(await chat2.locator('body').getAttribute('data-hub-url'), `ws://localhost:${ports.hub2}/ws`);
    for (const page of [chat1, chat2]) {
      await page.locator('[data-testid=status][data-state=connected]').waitFor({ timeout: WAIT_MS });
    }
  });

  it('the chat page links to the status page, which lists both hubs up', { timeout: STEP_TIMEOUT_MS }, async () => {
    status = await browser.newPage();
    await status.setViewportSize({ width: 1200, height: 900 });
    await status.goto(`http://127.0.0.1:${ports.web1}/`);
    await status.locator('[data-testid=status-link]').click();
    await status.waitForURL(`http://127.0.0.1:${ports.web1}/status`);
    for (const hub of ['hub1', 'hub2']) {
      await card(hub).and(status.locator('[data-state=up]')).waitFor({ timeout: WAIT_MS });
    }
    assert.equal(await status.locator('[data-testid=hub]').count(), 2);
    // The two chat pages, one on each hub (the status tab's own chat page left when it followed the link).
    await waitFor('one connection on each hub', async () =>
      (await number('hub1', 'connections')) === 1 && (await number('hub2', 'connections')) === 1);
    for (const hub of ['hub1', 'hub2']) {
      assert.equal(await figure(hub, 'bridge'), 'up');
      assert.equal(await figure(hub, 'redis'), 'up');
    }
    const html = await status.content();
    assert.ok(!html.includes(API_KEY), 'the API key reached the page');
    const res = await fetch(`http://127.0.0.1:${ports.web1}/status`);
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    const data = await (await fetch(`http://127.0.0.1:${ports.web1}/status/data`)).text();
    assert.ok(!data.includes(API_KEY), 'the API key is in /status/data');
    await screenshot(status, 'both-hubs-up');
  });

  it('the figures move while the pages chat across the hubs', { timeout: STEP_TIMEOUT_MS }, async () => {
    // First quiet: what the joins delivered has left the windows (deliveries over 2 s, lag over 10 s),
    // so what moves next is the chat's doing.
    await waitFor('hub2 quiet: 0 deliveries/s and no lag figure', async () =>
      (await number('hub2', 'deliveries')) === 0 && (await figure('hub2', 'lag')) === '—');
    const quietMax = Number(await status.locator('[data-testid=chart-deliveries]').getAttribute('data-max'));
    const sent = { n: 0 };
    // Page 1 chats until the checks below are done (each bounded by its own deadline), at most
    // as long as the step may take.
    const chatting = (async () => {
      const deadline = Date.now() + STEP_TIMEOUT_MS - 10_000;
      while (Date.now() < deadline && !sent.stop) {
        const input = chat1.locator('[data-testid=message-input]');
        await input.fill(`status ping ${sent.n}`, { timeout: WAIT_MS });
        await input.press('Enter');
        sent.n += 1;
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    try {
      // hub2 delivers page1's messages to page2: its deliveries per second rise above 0.
      // ~6 messages a second from page1, each delivered by hub2 to page2.
      await waitFor('hub2 deliveries/s at 2 or more', async () => (await number('hub2', 'deliveries')) >= 2);
      // hub2 measures the lag of what crosses to it (a histogram on its /metrics), and the page
      // shows its p99 as a figure: page 1 keeps talking until it does, or the deadline fails us.
      const metrics = await (await fetch(`http://127.0.0.1:${ports.api2}/metrics`)).text();
      assert.match(metrics, /^realtime_hub_cross_hub_lag_seconds_bucket\{/m, 'hub2 exposes no cross-hub lag histogram');
      await waitFor('hub2 lag p99 shown', async () => /^\d+(\.\d+)? ms$/.test(await figure('hub2', 'lag')));
      // The chart has a line for the deliveries.
      // The chart follows: its scale grew past the quiet one, and it has lines.
      await waitFor('the deliveries chart rises', async () =>
        Number(await status.locator('[data-testid=chart-deliveries]').getAttribute('data-max')) > quietMax &&
        (await status.locator('[data-testid=chart-deliveries] polyline').count()) > 0);
      log(`hub2: ${await figure('hub2', 'deliveries')} deliveries/s, lag p99 ${await figure('hub2', 'lag')} after ${sent.n} messages`);
      await screenshot(status, 'chatting');
    } catch (e) {
      const state = await chat1.locator('[data-testid=status]').getAttribute('data-state');
      throw new Error(`${e.message} (${sent.n} sent; page 1 ${state})`);
    } finally {
      sent.stop = true;
      await chatting;
    }
    // Page 2 saw them: the figures came from real traffic.
    await chat2.getByText(`status ping ${sent.n - 1}`).waitFor({ timeout: WAIT_MS });
  });

  it('a killed hub turns red within seconds, the other stays up', { timeout: STEP_TIMEOUT_MS }, async () => {
    const killedAt = Date.now();
    await stack.hub2.stop('SIGKILL');
    await card('hub2').and(status.locator('[data-state=down]')).waitFor({ timeout: WAIT_MS });
    log(`hub2 shown down ${Date.now() - killedAt} ms after the kill`);
    assert.equal(await card('hub1').getAttribute('data-state'), 'up');
    assert.equal(await figure('hub2', 'hub-state'), 'down');
    assert.match(await figure('hub2', 'hub-reason'), /does not answer|gone/);
    await screenshot(status, 'hub2-down');
  });

  it('no page error, no request to another origin', () => {
    assert.deepEqual(pageErrors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)), []);
    assert.deepEqual(foreign, []);
  });
});
