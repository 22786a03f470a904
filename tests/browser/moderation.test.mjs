// Real-browser test of the demo backend (issue 23.6): hub-client-web as the backend the hubs call,
// set up as the compose stack sets it (its namespaces, read from docker-compose.yml, moderated:… with
// the publish proxy on), with the hubs' HUB_PROXY_PUBLISH_URL and HUB_WEBHOOK_URL pointing at a
// hub-client-web started here with the shared hook secret. Two signed-in pages, web1 → hub1 and
// web2 → hub2, join one moderated:… room: its status page lists their member_added and the room's
// room_occupied; a message with a listed word shows as refused on the sender's page and reaches no
// other page (a clean message sent after it, the marker, arrives on hub2's page with nothing before
// it); the clean message shows as sent. Run it through tests/browser/run.sh (`make test` does).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { composeNamespaces, demoBrowser, signedIn as signIn } from './demo.mjs';
import { freePort, startStack, testEnv } from './stack.mjs';

const { binDir: BIN_DIR, redisUrl: REDIS_URL, logDir: LOG_DIR, screenshotDir: SHOTS } = testEnv('moderation');
const WAIT_MS = 20_000;
const STEP_TIMEOUT_MS = 90_000;
const log = (msg) => console.log(`  [browser/moderation] ${msg}`);

/** The demo backend: a hub-client-web with the hook secret, its log in LOG_DIR. */
async function startBackend(port, env) {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, 'moderation-backend.log');
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(join(BIN_DIR, 'hub-client-web'), [], {
    env: { ...process.env, ...env, WEB_LISTEN: `127.0.0.1:${port}`, NO_COLOR: '1', RUST_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise((r) => child.on('close', r));
  process.on('exit', () => child.kill('SIGKILL'));
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`the backend exited during start-up (see ${logFile})`);
    if (Date.now() > deadline) throw new Error(`the backend did not answer /health (see ${logFile})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    logFile,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('demo backend: moderated rooms refuse listed words, the status page lists webhook events', () => {
  let stack;
  let backend;
  let backendUrl;
  let browser;
  let closeBrowser;
  const pages = [];
  let pageErrors;
  const run = randomBytes(3).toString('hex');
  const room = `moderated:lobby-${run}`;
  const ana = `Ana ${run}`;
  const bo = `Bo ${run}`;

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    const jwtSecret = randomBytes(32).toString('base64url');
    const hookSecret = randomBytes(32).toString('base64url');
    const port = await freePort();
    backendUrl = `http://127.0.0.1:${port}`;
    backend = await startBackend(port, { WEB_HOOK_SECRET: hookSecret, WEB_TITLE: 'demo backend' });
    stack = await startStack({
      binDir: BIN_DIR,
      redisUrl: REDIS_URL,
      logDir: LOG_DIR,
      logPrefix: 'moderation-',
      hubEnv: {
        HUB_AUTH_MODE: 'jwt',
        HUB_JWT_SECRETS: jwtSecret,
        // Its own prefix: the webhook queue in Redis is this cluster's alone.
        HUB_REDIS_PREFIX: `rthub-moderation-${run}:`,
        HUB_NAMESPACES: composeNamespaces(),
        HUB_HOOK_SECRET: hookSecret,
        HUB_PROXY_PUBLISH_URL: `${backendUrl}/hooks/publish`,
        HUB_WEBHOOK_URL: `${backendUrl}/hooks/webhooks`,
      },
      webEnv: { WEB_JWT_SECRET: jwtSecret },
    });
    log(`hub1 :${stack.ports.hub1Port}  hub2 :${stack.ports.hub2Port}  web1 ${stack.page1Url}  web2 ${stack.page2Url}  backend ${backendUrl}`);
    ({ context: browser, close: closeBrowser, pageErrors } = await demoBrowser());
  });

  after(async () => {
    try {
      await closeBrowser?.();
    } finally {
      await stack?.stop();
      await backend?.stop();
    }
  });

  async function signedIn(url, who) {
    const page = await signIn(browser, url, who, WAIT_MS);
    pages.push(page);
    return page;
  }

  async function joinRoom(page) {
    await page.locator('[data-testid=room-input]').fill(room);
    await page.locator('[data-testid=join]').click();
    await page.locator(`[data-testid=rooms] li[data-room="${room}"][data-active]`).waitFor({ timeout: WAIT_MS });
  }

  async function send(page, text) {
    const input = page.locator('[data-testid=message-input]');
    await input.fill(text);
    await input.press('Enter');
  }

  /** The own item of `text` on `page`, once it is in the state wanted; its state line. */
  async function ownState(page, text, state) {
    const item = page.locator(`[data-testid=feed-item][data-own=true][data-state=${state}]`, { hasText: text });
    await item.waitFor({ timeout: WAIT_MS });
    return item.locator('.state').textContent();
  }

  const shots = async (tag) => {
    mkdirSync(SHOTS, { recursive: true });
    await Promise.all(pages.map((p, i) => p.screenshot({ path: join(SHOTS, `${tag}-${i + 1}.png`) }).catch(() => {})));
  };

  it('a message with a listed word shows refused on the sender\'s page and reaches no one; a clean one reaches hub2\'s page; the status page lists the webhook events', { timeout: STEP_TIMEOUT_MS }, async () => {
    try {
      const [page1, page2] = await Promise.all([signedIn(stack.page1Url, ana), signedIn(stack.page2Url, bo)]);
      const hubs = await Promise.all([page1, page2].map((p) => p.locator('[data-testid=status]').getAttribute('data-hub')));
      assert.deepEqual(hubs, ['hub1', 'hub2']);
      await joinRoom(page1);
      await joinRoom(page2);

      // The hubs' webhooks, once for the cluster, on the backend's status page: both joins landed.
      const status = await browser.newPage();
      pages.push(status);
      await status.goto(`${backendUrl}/status`);
      const row = (name, user) => {
        const sel = `[data-testid=webhooks] tr[data-testid=webhook][data-name=${name}][data-room="${room}"]`;
        return user ? status.locator(sel, { hasText: user }) : status.locator(sel);
      };
      await row('member_added', ana).waitFor({ timeout: WAIT_MS });
      await row('member_added', bo).waitFor({ timeout: WAIT_MS });
      await row('room_occupied').waitFor({ timeout: WAIT_MS });
      assert.equal(await row('room_occupied').count(), 1, 'room_occupied once for the cluster');
      assert.equal(await row('member_added', ana).count(), 1, 'member_added once for the cluster');
      log(`status page: ${await status.locator('[data-testid=webhooks-note]').textContent()}`);

      // Refused: shown so on the sender's page, with the backend's reason.
      const banned = `cheap casino chips ${run}`;
      await send(page1, banned);
      const refused = await ownState(page1, banned, 'refused');
      assert.match(refused, /refused by moderation: .*casino/, refused);
      assert.equal(await page1.locator('[data-testid=feed-item][data-state=refused] [data-testid=retry]').count(), 0,
        'no Retry: it would be refused again');

      // The marker, a clean message sent after it: it reaches hub2's page, and the refused one never did.
      const clean = `hello from hub1 ${run}`;
      await send(page1, clean);
      assert.match(await ownState(page1, clean, 'sent'), /sent/);
      const received = page2.locator(`[data-testid=feed-item][data-own=false][data-room="${room}"]`, { hasText: clean });
      await received.waitFor({ timeout: WAIT_MS });
      assert.equal(await received.getAttribute('data-hub'), 'hub1', 'sent through hub1, delivered by hub2');
      const shown2 = await page2.$$eval('[data-testid=feed-item] .content', (els) => els.map((e) => e.textContent));
      assert.ok(!shown2.includes(banned), `hub2's page got the refused message: ${JSON.stringify(shown2)}`);
      // A page opened later on the sender's own hub (a second tab of the same user: the origin's
      // storage signs it in) fills the room from its history: the marker is there, the refused one not.
      const page3 = await browser.newPage();
      pages.push(page3);
      await page3.goto(stack.page1Url);
      await page3.locator('[data-testid=status][data-state=connected]').waitFor({ timeout: WAIT_MS });
      await joinRoom(page3);
      await page3.locator('[data-testid=feed-item]', { hasText: clean }).waitFor({ timeout: WAIT_MS });
      const shown3 = await page3.$$eval('[data-testid=feed-item] .content', (els) => els.map((e) => e.textContent));
      assert.ok(!shown3.includes(banned), `the room's history has the refused message: ${JSON.stringify(shown3)}`);
      await shots('done');
      assert.deepEqual(pageErrors, []);
    } catch (e) {
      await shots('FAILED');
      console.error(`  [browser/moderation] failed\n${stack?.tails()}\n(backend log: ${backend?.logFile})`);
      throw e;
    }
  });
});
