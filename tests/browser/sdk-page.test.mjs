// The chat page is built on the JS SDK (DESIGN 15, issue 21.6): static/chat.js speaks no protocol
// itself — it opens no WebSocket and writes no protocol frame — and in a real browser the page
// loads the SDK's modules from its own server (/sdk/) and chats through them. Run it through
// tests/browser/run.sh (`make test` does): real hubs, real web servers, headless Chromium.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { launchChromium } from './browser.mjs';
import { startStack, testEnv } from './stack.mjs';

const { binDir: BIN_DIR, redisUrl: REDIS_URL, logDir: LOG_DIR } = testEnv();
const CHAT_JS = new URL('../../static/chat.js', import.meta.url);
const WAIT_MS = 30_000;

describe('the chat page on the SDK', () => {
  let stack;
  let browser;

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    stack = await startStack({ binDir: BIN_DIR, redisUrl: REDIS_URL, logDir: LOG_DIR, logPrefix: 'sdk-page-' });
    browser = await launchChromium();
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await stack?.stop();
    }
  });

  it('static/chat.js opens no socket and writes no protocol frame: the SDK does', () => {
    const code = readFileSync(CHAT_JS, 'utf8');
    const speaks = [
      /new WebSocket\b/,
      /\.send\(JSON\.stringify/,
      /type: '(?:join|leave|auth|ping|presence|message)'/,
      /\{ ?type: ?'/,
    ].filter((re) => re.test(code));
    assert.deepEqual(speaks.map(String), [], 'chat.js builds protocol frames itself');
    assert.match(code, /import\('\/sdk\/index\.js'\)/, 'chat.js loads the SDK from /sdk/');
  });

  it('the page loads the SDK from its own server and chats across the hubs through it', async () => {
    const pages = [];
    const sdkLoads = [];
    const errors = [];
    for (const url of [stack.page1Url, stack.page2Url]) {
      const page = await browser.context.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname.startsWith('/sdk/')) sdkLoads.push(`${u.origin === new URL(url).origin ? 'own' : 'foreign'} ${u.pathname}`);
      });
      await page.goto(url);
      await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.dataset.state === 'connected', undefined, { timeout: WAIT_MS });
      pages.push(page);
    }
    for (const path of ['/sdk/index.js', '/sdk/client.js', '/sdk/room-session.js']) {
      assert.ok(sdkLoads.includes(`own ${path}`), `the page did not load ${path} from its own server: ${JSON.stringify(sdkLoads)}`);
    }
    assert.ok(!sdkLoads.some((l) => l.startsWith('foreign')), JSON.stringify(sdkLoads));
    const text = `through the SDK ${Date.now()}`;
    await pages[0].locator('[data-testid=message-input]').fill(text);
    await pages[0].locator('[data-testid=message-input]').press('Enter');
    await pages[1].waitForFunction(
      (t) => document.querySelector('[data-testid=feed] [data-testid=feed-item] .content')?.textContent === t,
      text,
      { timeout: WAIT_MS },
    );
    await pages[0].waitForFunction(
      (t) => [...document.querySelectorAll('[data-testid=feed-item][data-own=true]')].some(
        (li) => li.querySelector('.content')?.textContent === t && li.dataset.state === 'sent'),
      text,
      { timeout: WAIT_MS },
    );
    assert.deepEqual(errors, []);
  });
});
