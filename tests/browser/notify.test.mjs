// Real-browser test of the notification demo (issue 22.5): one user signed in on two pages, one on
// web1 → hub1 and one on web2 → hub2 (two origins, so two separate storages: the same name must give
// the same user id on both), then the server API publishes to that user's personal room through
// hub1's API with the README's curl lines (run with bash as written, but for the room and the
// API's address). Both pages show it in that room, exactly once; a page
// of another user on hub2 does not get it (a marker to its own personal room, sent after, arrives
// first on its page, and then the notification must not be in it).
// Run it through tests/browser/run.sh (`make test` does), which builds the binaries and starts Redis.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { composeNamespaces, demoBrowser, signedIn as signIn } from './demo.mjs';
import { freePort, startStack, testEnv } from './stack.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const { binDir: BIN_DIR, redisUrl: REDIS_URL, logDir: LOG_DIR } = testEnv('notify');
const WAIT_MS = 20_000;
const STEP_TIMEOUT_MS = 60_000;
const log = (msg) => console.log(`  [browser/notify] ${msg}`);

describe('notifications: the server API publishes to a user, every page of that user shows it, on both hubs', () => {
  let stack;
  let browser;
  let closeBrowser;
  let api1;
  const apiKey = randomBytes(24).toString('base64url');
  let pageErrors;
  const run = randomBytes(3).toString('hex');
  const name = `Ana ${run}`;

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    const secret = randomBytes(32).toString('base64url');
    let api2;
    [api1, api2] = await Promise.all([freePort(), freePort()]);
    stack = await startStack({
      binDir: BIN_DIR,
      redisUrl: REDIS_URL,
      logDir: LOG_DIR,
      logPrefix: 'notify-',
      hubEnv: {
        HUB_AUTH_MODE: 'jwt',
        HUB_JWT_SECRETS: secret,
        HUB_API_KEYS: apiKey,
        HUB_REDIS_PREFIX: 'rthub-notify:',
        // The compose stack's namespaces, read from docker-compose.yml: the demo runs with them.
        HUB_NAMESPACES: composeNamespaces(),
        // Their moderated:… namespace needs a publish proxy; this test never writes there
        // (moderation.test.mjs does), so it points at a port where nothing listens (fails closed).
        HUB_HOOK_SECRET: randomBytes(32).toString('base64url'),
        HUB_PROXY_PUBLISH_URL: 'http://127.0.0.1:9/hooks/publish',
      },
      hubEnvs: { hub1: { HUB_API_LISTEN: `127.0.0.1:${api1}` }, hub2: { HUB_API_LISTEN: `127.0.0.1:${api2}` } },
      webEnv: { WEB_JWT_SECRET: secret },
    });
    log(`hub1 :${stack.ports.hub1Port} (api :${api1})  hub2 :${stack.ports.hub2Port}  web1 ${stack.page1Url}  web2 ${stack.page2Url}`);
    ({ context: browser, close: closeBrowser, pageErrors } = await demoBrowser());
  });

  after(async () => {
    try {
      await closeBrowser?.();
    } finally {
      await stack?.stop();
    }
  });

  const signedIn = (url, who) => signIn(browser, url, who, WAIT_MS);

  /** The page's personal room, once it is in its room list. */
  async function personalRoom(page) {
    const li = page.locator('[data-testid=rooms] li[data-room^="user:"]');
    await li.waitFor({ timeout: WAIT_MS });
    return li.getAttribute('data-room');
  }

  async function publish(room, content) {
    const res = await fetch(`http://127.0.0.1:${api1}/api/publish`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ room, content, user: { id: 'backend', name: 'backend' } }),
    });
    const body = await res.text();
    assert.equal(res.status, 200, `POST /api/publish to ${room}: ${res.status} ${body}`);
    return JSON.parse(body);
  }

  /**
   * Runs the README's notification lines (the sh block of "Use it from your app") with bash, in a
   * directory holding the .secrets/api.env they read the key from; returns the API's answer.
   */
  function readmeCurl(room) {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Use it from your app\n'));
    const sh = section.match(/```sh\n([\s\S]*?)```/)?.[1];
    assert.ok(sh, 'no sh block under "## Use it from your app" in README.md');
    const placeholder = 'ROOM=user:name-0123456789abcdef';
    assert.ok(sh.includes(placeholder) && sh.includes('http://127.0.0.1:8090/'), `the README's lines changed:\n${sh}`);
    const script = sh.replace(placeholder, `ROOM=${room}`).replaceAll('http://127.0.0.1:8090/', `http://127.0.0.1:${api1}/`);
    const cwd = mkdtempSync(join(tmpdir(), 'rthub-notify-'));
    try {
      mkdirSync(join(cwd, '.secrets'));
      writeFileSync(join(cwd, '.secrets/api.env'), `HUB_API_KEYS=${apiKey}\n`, { mode: 0o600 });
      const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8', timeout: WAIT_MS });
      assert.equal(r.status, 0, `README curl lines: ${r.error ?? ''} ${r.stderr}`);
      log(`README curl printed ${r.stdout.trim()}`);
      return JSON.parse(r.stdout);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }

  /** The contents shown in `room`'s feed on `page` (the room made active first). */
  async function shownIn(page, room) {
    await page.locator(`[data-testid=rooms] li[data-room="${room}"]`).click();
    await page.locator(`[data-testid=rooms] li[data-room="${room}"][data-active]`).waitFor({ timeout: WAIT_MS });
    return page.$$eval(
      `[data-testid=feed] [data-testid=feed-item][data-room="${room}"] .content`,
      (items) => items.map((i) => i.textContent),
    );
  }

  it('one user on two origins and two hubs, a notification through hub1\'s API shows once on both pages', { timeout: STEP_TIMEOUT_MS }, async () => {
    const [page1, page2, other] = await Promise.all([
      signedIn(stack.page1Url, name),
      signedIn(stack.page2Url, name),
      signedIn(stack.page2Url, `Bo ${run}`),
    ]);
    const hubs = await Promise.all([page1, page2].map((p) => p.locator('[data-testid=status]').getAttribute('data-hub')));
    assert.deepEqual(hubs, ['hub1', 'hub2']);
    const [room1, room2, otherRoom] = await Promise.all([page1, page2, other].map(personalRoom));
    log(`personal rooms: ${room1} (web1), ${room2} (web2), ${otherRoom} (another user)`);
    assert.equal(room1, room2, 'the same name is the same user on both web servers');
    assert.notEqual(room1, otherRoom);

    // The README's curl line, as written but for the room and the API's address.
    const text = 'Your order has shipped';
    const ack = readmeCurl(room1);
    assert.ok(ack.id, JSON.stringify(ack));
    for (const [page, label] of [[page1, 'web1/hub1'], [page2, 'web2/hub2']]) {
      // Arrived while another room was open: counted unread on the personal room.
      await page.locator(`[data-testid=rooms] li[data-room="${room1}"][data-unread="1"]`).waitFor({ timeout: WAIT_MS });
      const shown = await shownIn(page, room1);
      assert.deepEqual(shown.filter((c) => c === text), [text], `${label} shows the notification once: ${JSON.stringify(shown)}`);
      const from = await page.locator(`[data-testid=feed-item][data-id="${ack.id}"]`).getAttribute('data-name');
      assert.equal(from, 'shop', `${label}: sender`);
    }

    // The other user: a marker to their own room, published after, arrives; the notification does not.
    const marker = `marker ${run}`;
    await publish(otherRoom, marker);
    await other.locator(`[data-testid=rooms] li[data-room="${otherRoom}"]`).click();
    await other.waitForFunction(
      (m) => [...document.querySelectorAll('[data-testid=feed-item] .content')].some((c) => c.textContent === m),
      marker,
      { timeout: WAIT_MS },
    );
    const otherShown = await other.$$eval('[data-testid=feed-item] .content', (items) => items.map((i) => i.textContent));
    assert.ok(!otherShown.includes(text), `another user got the notification: ${JSON.stringify(otherShown)}`);
    assert.deepEqual(pageErrors, []);
  });
});
