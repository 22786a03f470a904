// Real-browser test of the chat page as a chat app (issue 16), against real processes: two hubs in jwt
// mode bridged by the redis-server run.sh started (REDIS_URL), keeping 1000 messages per room, hub 1 with
// its server API on (the test publishes through it), web1 → hub1 and web2 → hub2 signing tokens.
// Headless Debian Chromium at desk width (1000 px) and phone width (390 px): one view per room with
// unread counts and mentions, the active room across a reload and a reconnect, leaving a room, writing
// (multi-line, pending → sent, retry), day separators and relative times, axe-core, keyboard only,
// 5,000 messages in a minute while typing, the strict CSP.
// Run it through tests/browser/run.sh (`make test` does), which builds the binaries and starts Redis.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium } from './browser.mjs';
import { ChatSession } from './scenario.mjs';
import { freePort, startStack, testEnv } from './stack.mjs';
import { stepTests } from './steps.mjs';

const { root: ROOT, binDir: BIN_DIR, redisUrl: REDIS_URL, screenshotDir: SCREENSHOT_DIR, logDir: LOG_DIR } =
  testEnv('page');
const AXE_PATH = join(ROOT, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js');
const STEP_TIMEOUT_MS = 60_000;
const DESK = { width: 1000, height: 760 };
const PHONE = { width: 390, height: 760 };
// The page's bounds (static/chat.js): FEED_MAX items per room view at the newest, OLDER_PAGE more per load.
const FEED_MAX = 200;
const OLDER_PAGE = 100;
const TIME_TICK_MS = 10_000;
// Issue 16: 5,000 messages arriving within one minute, input latency under 100 ms.
const BURST = 5000;
const BURST_PER_SEC = 100;
const LATENCY_LIMIT_MS = 100;

const log = (msg) => console.log(`  [browser/page] ${msg}`);

describe('the chat page people expect: a view per room, unread counts, accessible, pleasant on a phone', () => {
  let stack;
  let s; // the ChatSession, for its page helpers
  let api; // hub 1's server API: { url, key }
  let ana; // desk, web1 → hub1
  let bo; // phone, web2 → hub2
  let roomA;
  const consoleErrors = [];
  let shot = 0;

  async function screenshot(label, pages) {
    shot += 1;
    for (const page of pages) {
      if (page.isClosed()) continue;
      const file = join(SCREENSHOT_DIR, `${String(shot).padStart(2, '0')}-${label}-${page.rtName}.png`);
      await page.screenshot({ path: file }).catch((e) => log(`screenshot ${file}: ${e.message}`));
    }
  }

  async function publish(room, content, user = { id: 'api-bot', name: 'Bot' }) {
    const res = await fetch(`${api.url}/api/publish`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${api.key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ room, content, user }),
    });
    if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
    return res.json();
  }

  /** What a page shows of its rooms and its open view. */
  function shownState(page) {
    return page.evaluate(() => {
      const feed = document.querySelector('[data-testid=feed]');
      return {
        feedRoom: feed?.dataset.room,
        feedRooms: [...document.querySelectorAll('[data-testid=feed]')].map((f) => f.dataset.room),
        items: [...(feed?.querySelectorAll('[data-testid=feed-item]') ?? [])].map((m) => ({
          room: m.dataset.room,
          text: m.querySelector('.content')?.textContent,
        })),
        title: document.querySelector('[data-testid=room-title]')?.textContent,
        members: document.querySelector('[data-testid=members-title]')?.textContent,
        rooms: [...document.querySelectorAll('[data-testid=rooms] li')].map((li) => ({
          room: li.dataset.room,
          active: li.hasAttribute('data-active'),
          current: li.querySelector('button')?.getAttribute('aria-current'),
          unread: li.dataset.unread,
          mention: li.dataset.mention,
          badge: li.querySelector('[data-testid=unread]')?.checkVisibility() ? li.querySelector('[data-testid=unread] .n').textContent : '',
          label: li.querySelector('button')?.textContent, // its accessible name, signs in words
        })),
      };
    });
  }

  const roomOf = (state, room) => state.rooms.find((r) => r.room === room);

  async function openRoom(page, room) {
    await page.locator(`[data-testid=rooms] li[data-room="${room}"] button`).click();
    await s.waitFor(page, `#${room} open`, (r) => document.querySelector('[data-testid=feed]')?.dataset.room === r &&
      document.querySelector(`[data-testid=rooms] li[data-room="${r}"] button`)?.getAttribute('aria-current') === 'true', room);
  }

  async function waitTopText(page, text, timeout) {
    await s.waitFor(page, `"${text}" on top of the open feed`,
      (t) => document.querySelector('[data-testid=feed] [data-testid=feed-item] .content')?.textContent === t, text, timeout);
  }

  /** Presses Tab until the focused element matches `selector`: keyboard reach, bounded. */
  async function tabTo(page, selector, { shift = false, max = 40 } = {}) {
    for (let i = 0; i < max; i += 1) {
      if (await page.evaluate((sel) => !!document.activeElement?.matches(sel), selector)) return;
      await page.keyboard.press(shift ? 'Shift+Tab' : 'Tab');
    }
    throw new Error(`${page.rtName}: ${selector} not reached with ${shift ? 'Shift+' : ''}Tab in ${max} presses`);
  }

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    const secret = randomBytes(32).toString('base64url');
    api = { key: randomBytes(24).toString('base64url'), port: await freePort() };
    api.url = `http://127.0.0.1:${api.port}`;
    stack = await startStack({
      binDir: BIN_DIR,
      redisUrl: REDIS_URL,
      logDir: LOG_DIR,
      logPrefix: 'page-',
      hubEnv: {
        HUB_AUTH_MODE: 'jwt',
        HUB_JWT_SECRETS: secret,
        HUB_HISTORY_SIZE: '1000', // more than a room view keeps: older ones are loaded on scroll
        HUB_PRESENCE_LEAVE_DELAY: '1s',
        HUB_REDIS_PREFIX: 'rthub-page:',
      },
      hubEnvs: { hub1: { HUB_API_LISTEN: `127.0.0.1:${api.port}`, HUB_API_KEYS: api.key } },
      webEnv: { WEB_JWT_SECRET: secret, WEB_RECONNECT_MAX: '2s' },
    });
    log(`hub1 :${stack.ports.hub1Port} (API :${api.port})  hub2 :${stack.ports.hub2Port}  ` +
      `web1 ${stack.page1Url}  web2 ${stack.page2Url}`);
    s = new ChatSession({ page1Url: stack.page1Url, page2Url: stack.page2Url, autoSignIn: false, log });
    s.browser = await launchChromium();
    const track = (page) => page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${page.rtName}: ${m.text()}`);
    });
    ana = await s.newPage('ana', stack.page1Url, DESK);
    bo = await s.newPage('bo', stack.page2Url, PHONE);
    track(ana);
    track(bo);
    s.names.ana = `Ana ${s.run}`;
    s.names.bo = `Bo ${s.run}`;
    roomA = `room-a-${s.run}`;
  });

  after(async () => {
    try {
      await s?.close();
      await s?.axeBrowser?.close();
    } finally {
      await stack?.stop();
    }
  });

  const steps = [
    ['two pages sign in, one at desk width and one at phone width', async () => {
      await s.signIn(ana, s.names.ana);
      await s.signIn(bo, s.names.bo);
    }],

    ['one view per room: its messages and members only; other rooms count unread, a mention marks the count; opening clears it',
      async () => {
        await s.joinRoom(ana, roomA);
        await s.joinRoom(bo, roomA);
        const inA = `in ${roomA} (${s.run})`;
        await s.send(bo, inA);
        await s.expectTop(ana, inA, { room: roomA, hub: s.hub2 ?? (await s.hubOf(bo)), name: s.names.bo });
        let st = await shownState(ana);
        assert.equal(st.feedRoom, roomA);
        assert.ok(st.items.every((m) => m.room === roomA), `ana's #${roomA} view shows ${JSON.stringify(st.items)}`);
        assert.equal(st.title, `#${roomA}`);
        assert.equal(st.members, `In #${roomA}`);
        assert.deepEqual(st.feedRooms, [roomA], 'one feed in the page: the open room\'s');
        assert.equal(roomOf(st, roomA).current, 'true');
        assert.equal(roomOf(st, 'general').current, null);
        // Bo writes in general: a plain message, then one that mentions Ana.
        await openRoom(bo, 'general');
        const plain = `plain in general (${s.run})`;
        const mention = `@${s.names.ana} look at this (${s.run})`;
        await s.send(bo, plain);
        await s.send(bo, mention);
        await s.waitFor(ana, 'general counted 2 unread, marked as a mention', () => {
          const li = document.querySelector('[data-testid=rooms] li[data-room="general"]');
          const badge = li?.querySelector('[data-testid=unread]');
          return li?.dataset.unread === '2' && li.dataset.mention === 'true' && badge?.checkVisibility() &&
            badge.querySelector('.at').checkVisibility() && badge.textContent === '@2 unread, you are mentioned';
        });
        st = await shownState(ana);
        assert.match(roomOf(st, 'general').label, /^#general@2 unread, you are mentioned\d+ people here$/);
        assert.equal(st.feedRoom, roomA, 'the open view stays');
        assert.ok(!st.items.some((m) => m.text === plain || m.text === mention), 'general\'s messages are not in #room-a\'s view');
        assert.equal(roomOf(st, roomA).unread, '0');
        await screenshot('unread-mention', [ana, bo]);
        // Opening general clears its count and shows its messages, the mention marked in words.
        await openRoom(ana, 'general');
        st = await shownState(ana);
        assert.equal(roomOf(st, 'general').unread, '0');
        assert.equal(roomOf(st, 'general').badge, '');
        assert.equal(roomOf(st, roomA).current, null);
        assert.deepEqual(st.items.slice(0, 2).map((m) => m.text), [mention, plain]);
        assert.ok(st.items.every((m) => m.room === 'general'));
        await s.waitFor(ana, 'members of general', () => document.querySelector('[data-testid=members-title]')?.textContent === 'In #general');
        const mark = await ana.locator('[data-testid=feed-item][data-mention=true] .mention-mark').first().textContent();
        assert.equal(mark, '@ mentions you');
        // A message without a mention in the room left behind: counted, no "@".
        const second = `second in ${roomA} (${s.run})`;
        await openRoom(bo, roomA);
        await s.send(bo, second);
        await s.waitFor(ana, `#${roomA} counted 1 unread, no mention`, (r) => {
          const li = document.querySelector(`[data-testid=rooms] li[data-room="${r}"]`);
          return li?.dataset.unread === '1' && li.dataset.mention === 'false' &&
            li.querySelector('[data-testid=unread]')?.checkVisibility() &&
            li.querySelector('[data-testid=unread]')?.textContent === '@1 unread' &&
            !li.querySelector('[data-testid=unread] .at')?.checkVisibility();
        }, roomA);
        await screenshot('general-open', [ana, bo]);
      }],

    ['the active room survives a reload (with its history) and a reconnect; leaving a room removes its view', async () => {
      await openRoom(ana, roomA);
      const sockets = ana.rtSockets.length;
      await ana.reload();
      await s.waitState(ana, 'connected');
      await s.waitFor(ana, `#${roomA} open after the reload, with its messages`, (r) => {
        const feed = document.querySelector('[data-testid=feed]');
        const texts = [...(feed?.querySelectorAll('[data-testid=feed-item] .content') ?? [])].map((c) => c.textContent);
        return feed?.dataset.room === r && texts.some((t) => t.startsWith('second in')) && texts.some((t) => t.startsWith('in room-a')) &&
          document.querySelector(`[data-testid=rooms] li[data-room="${r}"] button`)?.getAttribute('aria-current') === 'true';
      }, roomA);
      assert.equal(ana.rtSockets.length, sockets + 1);
      // A reconnect (the network drops and comes back) keeps it too.
      await ana.context().setOffline(true);
      await s.waitFor(ana, 'offline', () => document.querySelector('[data-testid=status]')?.dataset.state === 'reconnecting');
      await ana.context().setOffline(false);
      await s.waitState(ana, 'connected', 45_000);
      await s.waitState(bo, 'connected', 45_000);
      let st = await shownState(ana);
      assert.equal(st.feedRoom, roomA);
      assert.equal(roomOf(st, roomA).current, 'true');
      // Leaving: its view goes; general opens.
      await s.leaveRoom(ana, roomA);
      await s.waitFor(ana, 'general open', () => document.querySelector('[data-testid=feed]')?.dataset.room === 'general');
      st = await shownState(ana);
      assert.deepEqual(st.feedRooms, ['general']);
      assert.ok(!st.rooms.some((r) => r.room === roomA));
      assert.ok(!st.items.some((m) => m.room === roomA));
      // Reloaded, the page does not bring it back.
      await ana.reload();
      await s.waitState(ana, 'connected');
      st = await shownState(ana);
      assert.ok(!st.rooms.some((r) => r.room === roomA), `after a reload ana is in ${JSON.stringify(st.rooms.map((r) => r.room))}`);
    }],

    ['writing: Shift+Enter makes a new line, Enter sends; pending then sent; a failed message is retried and sent', async () => {
      await s.watchOwnStates(ana);
      await openRoom(bo, 'general');
      const input = ana.locator('[data-testid=message-input]');
      await input.click();
      await ana.keyboard.type(`first line (${s.run})`);
      await ana.keyboard.press('Shift+Enter');
      await ana.keyboard.type('second line');
      assert.equal(await input.inputValue(), `first line (${s.run})\nsecond line`, 'Shift+Enter did not add a line');
      await ana.keyboard.press('Enter');
      const text = `first line (${s.run})\nsecond line`;
      await waitTopText(ana, text);
      assert.equal(await input.inputValue(), '');
      await waitTopText(bo, text);
      // Shown on two lines, not one.
      const lines = await bo.$eval('[data-testid=feed] [data-testid=feed-item] .content', (c) =>
        Math.round(c.getBoundingClientRect().height / parseFloat(getComputedStyle(c).lineHeight)));
      assert.equal(lines, 2, `bo shows the two-line message on ${lines} line(s)`);
      await s.waitFor(ana, 'sent', (t) => [...document.querySelectorAll('[data-testid=feed-item][data-own=true]')]
        .find((li) => li.querySelector('.content')?.textContent === t)?.dataset.state === 'sent', text);
      assert.deepEqual(await s.ownStates(ana, text), ['pending: … sending', 'sent: ✓ sent']);
      // A message that never reached the hub: failed, with a Retry button; retried from the keyboard, sent.
      const lost = `retry me (${s.run})`;
      await s.dropOnNextMessage(ana, false);
      await input.fill(lost);
      await input.press('Enter');
      await s.waitFor(ana, 'the failed message with Retry', (t) => {
        const li = [...document.querySelectorAll('[data-testid=feed-item][data-own=true]')].find((l) => l.querySelector('.content')?.textContent === t);
        return li?.dataset.state === 'failed' && li.querySelector('[data-testid=retry]')?.checkVisibility();
      }, lost);
      await s.waitState(ana, 'connected', 45_000);
      await screenshot('failed-retry', [ana]);
      const retry = ana.locator('[data-testid=feed-item][data-state=failed] [data-testid=retry]');
      assert.match(await retry.getAttribute('aria-label'), /^Retry sending "retry me/);
      await retry.focus();
      await ana.keyboard.press('Enter');
      await s.waitFor(ana, `"${lost}" sent once`, (t) => {
        const items = [...document.querySelectorAll('[data-testid=feed-item][data-own=true]')].filter((l) => l.querySelector('.content')?.textContent === t);
        return items.length === 1 && items[0].dataset.state === 'sent';
      }, lost);
      const states = await s.ownStates(ana, lost);
      assert.deepEqual(states.slice(-2), ['pending: … sending', 'sent: ✓ sent'], `retried message showed ${JSON.stringify(states)}`);
      await waitTopText(bo, lost);
      const copies = (await s.feedTexts(bo)).filter((t) => t === lost).length;
      assert.equal(copies, 1, `bo shows the retried message ${copies} times`);
    }],

    ['axe-core finds no serious or critical violation on the signed-in page, at desk and at phone width (and in dark mode)', async () => {
      // A browser of its own whose context bypasses the CSP, only so that axe can be injected as a script
      // tag; every other step runs under the page's own strict CSP.
      s.axeBrowser = await launchChromium({ bypassCSP: true });
      const page = await s.newPage('axe', stack.page1Url, DESK, s.axeBrowser.context);
      await s.signIn(page, `Dee ${s.run}`);
      const side = `axe-${s.run}`;
      await s.joinRoom(page, side);
      // States worth checking: a message of its own sent, one failed (Retry), an unread count with a mention.
      await s.send(page, `hello from the axe page (${s.run})`);
      await s.dropOnNextMessage(page, false);
      await page.locator('[data-testid=message-input]').fill(`this one fails (${s.run})`);
      await page.locator('[data-testid=message-input]').press('Enter');
      await s.waitState(page, 'connected', 45_000);
      await s.waitFor(page, 'a failed message', () => !!document.querySelector('[data-testid=feed-item][data-state=failed] [data-testid=retry]'));
      await publish('general', `@Dee ${s.run} have a look (${s.run})`);
      await s.waitFor(page, 'general unread', () => document.querySelector('[data-testid=rooms] li[data-room="general"]')?.dataset.mention === 'true');
      await page.addScriptTag({ content: readFileSync(AXE_PATH, 'utf8') });
      // Both widths, and the desk once more in the dark colour scheme (its colours are the page's too).
      for (const [label, viewport, colorScheme] of [['desk', DESK, 'light'], ['phone', PHONE, 'light'], ['desk-dark', DESK, 'dark']]) {
        await page.setViewportSize(viewport);
        await page.emulateMedia({ colorScheme });
        const result = await page.evaluate(async () => {
          // eslint-disable-next-line no-undef
          const r = await axe.run(document, { resultTypes: ['violations'] });
          return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
        });
        const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
        log(`axe at ${label} width (${viewport.width} px): ${result.length} violation(s)` +
          `${result.length ? `: ${result.map((v) => `${v.id} (${v.impact})`).join(', ')}` : ''}`);
        await screenshot(`axe-${label}`, [page]);
        assert.deepEqual(bad, [], `axe at ${label} width: ${JSON.stringify(bad, null, 1)}`);
      }
      await page.close();
    }],

    ['keyboard alone: sign in, join a room, switch rooms, write, reach the feed, leave, sign out', async () => {
      // Another origin for web 1 (localhost, not 127.0.0.1): no name remembered there yet.
      const page = await s.newPage('keys', stack.page1Url.replace('127.0.0.1', 'localhost'), DESK);
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(`keys: ${m.text()}`);
      });
      const name = `Eve ${s.run}`;
      // The name field has the focus when the sign-in step shows.
      await s.waitFor(page, 'the sign-in name focused', () => document.activeElement?.matches('[data-testid=signin-name]'));
      await page.keyboard.type(name);
      await page.keyboard.press('Enter');
      await s.waitState(page, 'connected');
      const room = `keys-${s.run}`;
      await tabTo(page, '[data-testid=room-input]');
      await page.keyboard.type(room);
      await page.keyboard.press('Enter');
      await s.waitFor(page, `#${room} open`, (r) => document.querySelector('[data-testid=feed]')?.dataset.room === r, room);
      // Alt+↑/↓ move between rooms.
      await page.keyboard.press('Alt+ArrowUp');
      await s.waitFor(page, 'general open (Alt+↑)', () => document.querySelector('[data-testid=feed]')?.dataset.room === 'general');
      await page.keyboard.press('Alt+ArrowDown');
      await s.waitFor(page, `#${room} open (Alt+↓)`, (r) => document.querySelector('[data-testid=feed]')?.dataset.room === r, room);
      // Tab to the room buttons: Enter opens general and puts the focus in the message box.
      await tabTo(page, '[data-testid=rooms] li[data-room="general"] button');
      await page.keyboard.press('Enter');
      await s.waitFor(page, 'general open, message box focused', () =>
        document.querySelector('[data-testid=feed]')?.dataset.room === 'general' && document.activeElement?.matches('[data-testid=message-input]'));
      await page.keyboard.type(`typed, never clicked (${s.run})`);
      await page.keyboard.press('Enter');
      await waitTopText(page, `typed, never clicked (${s.run})`);
      // The feed itself takes the focus (to scroll it with the keys), and the button at its end loads more.
      await tabTo(page, '[data-testid=feed]');
      // Leave the side room: its name in the room field, then the Leave button.
      await tabTo(page, '[data-testid=room-input]', { shift: true });
      await page.keyboard.press('Control+a');
      await page.keyboard.type(room);
      await tabTo(page, '[data-testid=leave]');
      await page.keyboard.press('Enter');
      await s.waitFor(page, `#${room} left`, (r) => !document.querySelector(`[data-testid=rooms] li[data-room="${r}"]`), room);
      await tabTo(page, '[data-testid=signout]', { shift: true });
      await page.keyboard.press('Enter');
      await s.waitFor(page, 'the sign-in step', () => document.querySelector('[data-testid=signin-name]')?.checkVisibility());
      await page.close();
    }],

    [`${BURST} messages arrive within a minute while the user types: input latency under ${LATENCY_LIMIT_MS} ms, the view bounded, older ones loaded again on scroll`,
      async () => {
        const room = `busy-${s.run}`;
        // The tab being typed in is the one in front (Chromium runs the frames of a tab behind others at
        // 1 per second, as it would for a user).
        await ana.bringToFront();
        await s.joinRoom(ana, room);
        const sock = ana.rtSockets.at(-1);
        const receivedBefore = sock.received.length;
        // Event Timing: every key event's time from the key press to the next paint after its handlers.
        await ana.evaluate(() => {
          window.rtEvents = [];
          new PerformanceObserver((list) => {
            for (const e of list.getEntries()) {
              if (['keydown', 'keypress', 'keyup', 'input', 'beforeinput'].includes(e.name)) {
                window.rtEvents.push({ name: e.name, duration: e.duration, interaction: e.interactionId });
              }
            }
          }).observe({ type: 'event', durationThreshold: 16, buffered: false });
          // And from each key press to the start of the next frame (the one that paints it).
          window.rtFrames = [];
          window.rtGaps = [];
          let last = performance.now();
          const frame = (t) => { window.rtGaps.push(t - last); last = t; requestAnimationFrame(frame); };
          requestAnimationFrame(frame);
          window.rtVis = [];
          document.addEventListener('visibilitychange', () => window.rtVis.push(document.visibilityState));
          addEventListener('keydown', (ev) => {
            const t0 = ev.timeStamp;
            requestAnimationFrame(() => window.rtFrames.push(performance.now() - t0));
          }, true);
        });
        const input = ana.locator('[data-testid=message-input]');
        await input.click();
        let publishing = true;
        const sendAll = (async () => {
          const t0 = Date.now();
          const batch = BURST_PER_SEC / 10;
          for (let i = 0; i < BURST; i += batch) {
            const due = t0 + (i / BURST_PER_SEC) * 1000;
            if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
            // One at a time: the room's order is the order sent.
            for (let k = 0; k < Math.min(batch, BURST - i); k += 1) {
              await publish(room, `busy ${String(i + k + 1).padStart(4, '0')} (${s.run})`);
            }
          }
          publishing = false;
          return Date.now() - t0;
        })();
        // Meanwhile: a key every 150 ms (a letter, then Backspace), each timed until the box shows it.
        const typed = [];
        let keys = 0;
        while (publishing) {
          const key = keys % 2 ? 'Backspace' : 'k';
          const want = keys % 2 ? '' : 'k';
          const t = Date.now();
          await ana.keyboard.press(key);
          await s.waitFor(ana, 'the key in the message box', (w) => document.querySelector('[data-testid=message-input]').value === w, want);
          typed.push(Date.now() - t);
          keys += 1;
          await new Promise((r) => setTimeout(r, 150));
        }
        const sendMs = await sendAll;
        const last = `busy ${String(BURST).padStart(4, '0')} (${s.run})`;
        await waitTopText(ana, last, 60_000);
        const frames = sock.received.slice(receivedBefore).filter((t) => t === 'message').length;
        const events = await ana.evaluate(() => window.rtEvents);
        // Per key press (its keydown and keyup are one interaction): the slowest of its events; a press
        // with none reported took under 16 ms.
        const perPress = new Map();
        for (const e of events) if (e.interaction) perPress.set(e.interaction, Math.max(perPress.get(e.interaction) ?? 0, e.duration));
        const pressLat = [...perPress.values(), ...Array(Math.max(0, keys - perPress.size)).fill(0)].sort((a, b) => a - b);
        const pct = (list, q) => list[Math.min(list.length - 1, Math.floor(q * list.length))];
        const frameLat = (await ana.evaluate(() => window.rtFrames)).sort((a, b) => a - b);
        const gaps = (await ana.evaluate(() => window.rtGaps)).sort((a, b) => a - b);
        log(`frames during the burst: ${gaps.length}, interval median ${gaps[gaps.length >> 1]?.toFixed(1)} ms, p95 ${gaps[Math.floor(gaps.length * 0.95)]?.toFixed(1)} ms, max ${gaps.at(-1)?.toFixed(1)} ms; visibility ${JSON.stringify(await ana.evaluate(() => [document.visibilityState, document.hasFocus(), window.rtVis]))}`);
        const sorted = [...typed].sort((a, b) => a - b);
        const p = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
        const slowEvents = events.filter((e) => e.duration >= LATENCY_LIMIT_MS);
        log(`${BURST} messages published in ${(sendMs / 1000).toFixed(1)} s; the page received ${frames} message frames on one socket`);
        log(`${keys} key presses while they arrived: Event Timing (press → next paint) per press: median ${pct(pressLat, 0.5)} ms, ` +
          `p95 ${pct(pressLat, 0.95)} ms, max ${pressLat.at(-1)} ms; ${pressLat.filter((d) => d >= LATENCY_LIMIT_MS).length} press(es) ≥ ` +
          `${LATENCY_LIMIT_MS} ms (${slowEvents.length} of ${events.length} events ≥ 16 ms); load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
        log(`key press → next frame, in the page: ${frameLat.length} presses, median ${frameLat[frameLat.length >> 1]?.toFixed(1)} ms, ` +
          `p95 ${frameLat[Math.floor(frameLat.length * 0.95)]?.toFixed(1)} ms, max ${frameLat.at(-1)?.toFixed(1)} ms`);
        log(`key press → value seen by the test (round trips through DevTools included): median ${p(0.5)} ms, p95 ${p(0.95)} ms, max ${sorted.at(-1)} ms`);
        assert.ok(sendMs < 60_000, `publishing took ${sendMs} ms`);
        assert.ok(frames >= BURST, `the page received ${frames} of ${BURST} messages`);
        assert.equal(ana.rtSockets.at(-1), sock, 'the page lost its socket during the burst');
        assert.ok(keys >= 100, `only ${keys} keys pressed`);
        // The 95th percentile, not the maximum: this box's 2 cores are shared with builds and other tests,
        // and a renderer starved of CPU for a moment is not the page's doing. A fault of the page moves most
        // presses, not one in twenty: the typed tab left behind another one (frames at 1 per second) gave a
        // median of 263 ms and fails here.
        assert.ok(pct(pressLat, 0.95) < LATENCY_LIMIT_MS, `key press → paint p95 ${pct(pressLat, 0.95)} ms (Event Timing)`);
        assert.ok(pct(pressLat, 0.5) < LATENCY_LIMIT_MS / 2, `key press → paint median ${pct(pressLat, 0.5)} ms (Event Timing)`);
        assert.equal(frameLat.length, keys, 'a key press without its frame');
        assert.ok(pct(frameLat, 0.95) < LATENCY_LIMIT_MS, `key press → next frame p95 ${pct(frameLat, 0.95)} ms`);
        // Bounded: the open view holds FEED_MAX messages, the newest, in order.
        const shownItems = () => ana.$$eval('[data-testid=feed] [data-testid=feed-item]', (items) =>
          items.map((m) => ({ offset: Number(m.dataset.offset), text: m.querySelector('.content').textContent, replayed: m.dataset.replayed ?? '' })));
        let items = await shownItems();
        assert.equal(items.length, FEED_MAX, `the view holds ${items.length} messages`);
        const domSize = await ana.evaluate(() => document.getElementsByTagName('*').length);
        log(`after the burst: ${items.length} messages in the view, ${domSize} elements in the page`);
        await screenshot('after-burst', [ana]);
        // Scrolled to the oldest shown (from the keyboard: the feed focused, End): the next OLDER_PAGE come
        // back from the hub's history, in order.
        const oldest = items.at(-1).offset;
        await ana.locator('[data-testid=feed]').focus();
        await ana.keyboard.press('End');
        await s.waitFor(ana, `${OLDER_PAGE} older messages loaded`, (n) =>
          document.querySelectorAll('[data-testid=feed] [data-testid=feed-item]').length >= n &&
          document.querySelector('[data-testid=load-older]').getAttribute('aria-busy') === 'false', FEED_MAX + OLDER_PAGE, 30_000);
        items = await shownItems();
        const offsets = items.map((m) => m.offset);
        const breaks = offsets.map((o, i) => [i, o]).filter(([i, o]) => i > 0 && o !== offsets[i - 1] - 1);
        assert.deepEqual(breaks, [], `the view is one run of offsets, newest first, no gap, no copy: ${offsets.length} shown, ` +
          `${offsets[0]}…${offsets.at(-1)}`);
        assert.ok(items.at(-1).offset < oldest - OLDER_PAGE + 1, `oldest shown ${items.at(-1).offset}, was ${oldest}`);
        assert.ok(items.slice(FEED_MAX).every((m) => m.replayed === 'history'), 'loaded messages are marked earlier');
        await screenshot('older-loaded', [ana]);
        // Back at the newest: the next message trims the view to its bound again.
        await ana.$eval('[data-testid=feed-scroll]', (el) => { el.scrollTop = 0; });
        await ana.waitForTimeout(200);
        const next = `after the burst (${s.run})`;
        await publish(room, next);
        await waitTopText(ana, next);
        items = await shownItems();
        assert.equal(items.length, FEED_MAX, `back at the newest the view holds ${items.length}`);
      }],

    ['day separators ("Today", "Yesterday", a date) and relative times stay right while the page stays open', async () => {
      const page = ana;
      await openRoom(page, 'general');
      // Something said just now; and after each jump of the page's clock one more message, so that the
      // page has heard from its hub since (its silence check compares times too).
      await publish('general', `now (${s.run})`);
      await waitTopText(page, `now (${s.run})`);
      const sep = () => page.$$eval('[data-testid=feed] [data-testid=day-separator]', (d) => d.map((x) => x.textContent));
      const times = () => page.$$eval('[data-testid=feed] [data-testid=feed-item] .time', (t) => t.map((x) => x.textContent));
      await s.waitFor(page, 'a "Today" separator on top', () =>
        document.querySelector('[data-testid=feed] > *')?.textContent === 'Today');
      assert.equal((await sep())[0], 'Today');
      assert.equal((await times())[0], 'just now');
      const real = Date.now();
      const tick = TIME_TICK_MS + 8000;
      // The page's clock moves on (Date only; its timers keep running): 5 minutes…
      await page.clock.setFixedTime(real + 5 * 60_000);
      await publish('general', `after 5 min (${s.run})`);
      await s.waitFor(page, '"5 min ago"', () =>
        document.querySelector('[data-testid=feed] [data-testid=feed-item] .time')?.textContent === '5 min ago', undefined, tick);
      // …a day: yesterday's messages, times of day.
      await page.clock.setFixedTime(real + 24 * 3600_000);
      await publish('general', `after a day (${s.run})`);
      await s.waitFor(page, 'a "Yesterday" separator on top', () =>
        document.querySelector('[data-testid=feed] [data-testid=day-separator]')?.textContent === 'Yesterday', undefined, tick);
      assert.ok(!(await sep()).includes('Today'), `separators ${JSON.stringify(await sep())}`);
      const clock = (await times())[0];
      assert.match(clock, /\d{1,2}[:.]\d{2}/, `a message of yesterday shows "${clock}"`);
      await screenshot('yesterday', [page]);
      // …three days: the date.
      await page.clock.setFixedTime(real + 3 * 24 * 3600_000);
      await publish('general', `after three days (${s.run})`);
      const locale = await page.evaluate(() => navigator.language);
      const date = new Date(real).toLocaleDateString(locale, { weekday: 'long', day: 'numeric', month: 'long' });
      await s.waitFor(page, `a "${date}" separator`, (d) =>
        document.querySelector('[data-testid=feed] [data-testid=day-separator]')?.textContent === d, date, tick);
      await screenshot('date', [page]);
    }],

    ['no build step, nothing from the network, no inline script: the CSP stays strict and nothing breaks it', async () => {
      const res = await fetch(stack.page1Url);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'(;|$)/, `CSP: ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `CSP: ${csp}`);
      const html = await res.text();
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
      assert.ok(scripts.length >= 1);
      for (const [, attrs, body] of scripts) {
        assert.match(attrs, /\bsrc="\/static\//, `a script without src: ${attrs}`);
        assert.equal(body.trim(), '', 'an inline script');
      }
      assert.doesNotMatch(html, /\son[a-z]+=/i, 'an inline event handler');
      assert.doesNotMatch(html, /\sstyle=/i, 'an inline style');
      // Served as written in static/: no bundler, no transpiler in between.
      for (const file of ['chat.js', 'chat.css']) {
        const served = Buffer.from(await (await fetch(`${stack.page1Url}static/${file}`)).arrayBuffer());
        assert.ok(served.equals(readFileSync(join(ROOT, 'static', file))), `/static/${file} is not static/${file} as written`);
      }
      const csps = consoleErrors.filter((e) => /Content Security Policy/i.test(e));
      assert.deepEqual(csps, [], 'the page broke its own CSP');
      assert.deepEqual(s.pageErrors, [], 'script errors or foreign fetches');
    }],
  ];

  const chosen = steps.filter(([n], i) => !process.env.PAGE_STEPS || i === 0 || n.includes(process.env.PAGE_STEPS));
  stepTests(chosen, {
    run: (step) => step(),
    timeoutMs: STEP_TIMEOUT_MS * 3,
    tag: 'browser/page',
    screenshot: () => screenshot('FAILED', [ana, bo]),
    tails: () => stack.tails(),
    firstFailed: 'the pages never signed in',
  });
});
