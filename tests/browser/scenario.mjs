// The cross-hub chat scenario, shared by the local browser test (tests/browser/local.test.mjs, real
// processes on free ports) and the compose test (the Docker stack on localhost:9081 / :9082).
//
// Page 1 is served by web 1 and talks to hub 1; page 2 by web 2 and talks to hub 2; page 3 (web 2 → hub 2)
// sits in another room. Everything is asserted on what a user sees in the page, through its test hooks:
//   [data-testid=status]         data-state = disconnected | connecting | connected | reconnecting,
//                                data-hub = hub name from the welcome frame
//   [data-testid=connect]        Connect / Disconnect toggle
//   [data-testid=room-input], [data-testid=join], [data-testid=leave]
//   [data-testid=rooms] li[data-room]          rooms this page is in (the active one has data-active)
//   [data-testid=message-input]                Enter sends to the active room
//   [data-testid=feed] [data-testid=feed-item] newest first; data-room, data-hub, data-from,
//                                data-own ("true" for this page's own messages), .content
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium } from './browser.mjs';

const STEP_TIMEOUT_MS = 15_000;
// A restarted hub is reached after its start-up plus at most one capped reconnect delay (10 s default).
const RECONNECT_TIMEOUT_MS = 45_000;
const XSS = '<img src=x onerror=alert(1)>';

/** One browser with three pages; each step throws on a failed expectation. */
export class ChatSession {
  constructor({ page1Url, page2Url, stopHub1, startHub1, screenshotDir, log = () => {} }) {
    Object.assign(this, { page1Url, page2Url, stopHub1, startHub1, screenshotDir, log });
    this.run = Math.random().toString(36).slice(2, 8);
    this.dialogs = [];
    this.pageErrors = [];
    this.shot = 0;
  }

  async open() {
    if (this.screenshotDir) mkdirSync(this.screenshotDir, { recursive: true });
    this.browser = await launchChromium();
    this.page1 = await this.newPage('page1', this.page1Url, { width: 1000, height: 760 });
    // Page 2 at phone width: the page must be usable there.
    this.page2 = await this.newPage('page2', this.page2Url, { width: 390, height: 760 });
    this.page3 = await this.newPage('page3', this.page2Url, { width: 800, height: 600 });
  }

  async close() {
    if (this.browser) await this.browser.close();
    this.browser = undefined;
  }

  async newPage(name, url, viewport) {
    const page = await this.browser.context.newPage();
    page.rtName = name;
    await page.setViewportSize(viewport);
    // Any dialog means chat text ran as script: record it (the XSS step fails on it) and dismiss it.
    page.on('dialog', async (d) => {
      this.dialogs.push(`${name}: ${d.type()} ${d.message()}`);
      await d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => this.pageErrors.push(`${name}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') this.log(`${name} console error: ${m.text()}`);
    });
    // Every request must go to the page's own web server or to the hub: the page works offline.
    const origin = new URL(url).origin;
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol.startsWith('http') && u.origin !== origin && u.protocol !== 'data:') {
        this.pageErrors.push(`${name}: fetched a foreign URL ${r.url()}`);
      }
    });
    const res = await page.goto(url);
    if (!res || res.status() !== 200) {
      throw new Error(`${name}: GET ${url} answered ${res ? res.status() : 'nothing'}`);
    }
    return page;
  }

  async screenshot(label) {
    if (!this.screenshotDir) return;
    this.shot += 1;
    const n = String(this.shot).padStart(2, '0');
    for (const page of [this.page1, this.page2, this.page3]) {
      if (!page) continue;
      const file = join(this.screenshotDir, `${n}-${label}-${page.rtName}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch((e) => this.log(`screenshot ${file}: ${e.message}`));
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  async waitFor(page, what, fn, arg, timeout = STEP_TIMEOUT_MS) {
    try {
      await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    } catch (e) {
      const state = await describePage(page).catch(() => '(page unreadable)');
      throw new Error(`${page.rtName}: timed out waiting for ${what}\n  page now: ${state}`, { cause: e });
    }
  }

  async waitState(page, state, timeout = STEP_TIMEOUT_MS) {
    await this.waitFor(
      page,
      `status "${state}"`,
      (s) => document.querySelector('[data-testid=status]')?.dataset.state === s,
      state,
      timeout,
    );
  }

  /** Types text into the message box, presses Enter and waits for it on top of the own feed, marked own. */
  async send(page, text) {
    const input = page.locator('[data-testid=message-input]');
    await input.fill(text);
    await input.press('Enter');
    await this.waitFor(
      page,
      `own message "${text}" on top`,
      (t) => {
        const top = document.querySelector('[data-testid=feed] [data-testid=feed-item]');
        return top && top.dataset.own === 'true' && top.querySelector('.content')?.textContent === t;
      },
      text,
    );
    const cleared = await input.inputValue();
    if (cleared !== '') throw new Error(`${page.rtName}: message input not cleared after Enter`);
  }

  /** Waits until the newest feed item is `text`, received from another client, with its metadata. */
  async expectTop(page, text, { room, hub }) {
    await this.waitFor(
      page,
      `"${text}" on top of the feed (room ${room}, hub ${hub})`,
      ({ t, room, hub }) => {
        const top = document.querySelector('[data-testid=feed] [data-testid=feed-item]');
        return (
          top &&
          top.querySelector('.content')?.textContent === t &&
          top.dataset.own === 'false' &&
          top.dataset.room === room &&
          top.dataset.hub === hub &&
          top.dataset.from !== '' &&
          (top.querySelector('.time')?.textContent ?? '') !== ''
        );
      },
      { t: text, room, hub },
    );
  }

  async feedTexts(page) {
    return page.$$eval('[data-testid=feed] [data-testid=feed-item] .content', (els) =>
      els.map((e) => e.textContent),
    );
  }

  async hubOf(page) {
    return page.$eval('[data-testid=status]', (s) => s.dataset.hub);
  }

  async joinRoom(page, room) {
    await page.locator('[data-testid=room-input]').fill(room);
    await page.locator('[data-testid=join]').click();
    await this.waitFor(
      page,
      `room "${room}" joined and active`,
      (r) => {
        const li = document.querySelector(`[data-testid=rooms] li[data-room="${r}"]`);
        return li && li.hasAttribute('data-active');
      },
      room,
    );
  }

  async leaveRoom(page, room) {
    await page.locator('[data-testid=room-input]').fill(room);
    await page.locator('[data-testid=leave]').click();
    await this.waitFor(
      page,
      `room "${room}" left`,
      (r) => !document.querySelector(`[data-testid=rooms] li[data-room="${r}"]`),
      room,
    );
  }

  // ---- steps ---------------------------------------------------------------------------------

  async connectBoth() {
    await Promise.all([this.page1, this.page2, this.page3].map((p) => this.waitState(p, 'connected')));
    this.hub1 = await this.hubOf(this.page1);
    this.hub2 = await this.hubOf(this.page2);
    if (!this.hub1 || !this.hub2) throw new Error('status does not name the connected hub');
    this.log(`page1 on hub "${this.hub1}", page2 on hub "${this.hub2}"`);
    for (const page of [this.page1, this.page2, this.page3]) {
      const text = await page.locator('[data-testid=status]').textContent();
      if (!/connected/i.test(text)) throw new Error(`${page.rtName}: status text "${text}" does not say connected`);
    }
    await this.screenshot('connected');
  }

  async chatBothWays() {
    const a = `hello from page 1 (${this.run})`;
    await this.send(this.page1, a);
    await this.expectTop(this.page2, a, { room: 'general', hub: this.hub1 });
    const b = `hello back from page 2 (${this.run})`;
    await this.send(this.page2, b);
    await this.expectTop(this.page1, b, { room: 'general', hub: this.hub2 });
    this.first = a;
  }

  async newestOnTop() {
    const second = `second message from page 1 (${this.run})`;
    await this.send(this.page1, second);
    await this.expectTop(this.page2, second, { room: 'general', hub: this.hub1 });
    const texts = await this.feedTexts(this.page2);
    const iSecond = texts.indexOf(second);
    const iFirst = texts.indexOf(this.first);
    if (!(iSecond === 0 && iFirst > iSecond)) {
      throw new Error(`page2 feed order wrong, expected the second message above the first: ${JSON.stringify(texts)}`);
    }
    // Page 1 sees its own messages in the same order, marked as its own.
    const own = await this.page1.$$eval('[data-testid=feed-item][data-own=true] .content', (els) =>
      els.map((e) => e.textContent),
    );
    if (own.indexOf(second) !== 0 || own.indexOf(this.first) < 1) {
      throw new Error(`page1 own messages wrong: ${JSON.stringify(own)}`);
    }
    const label = await this.page1.locator('[data-testid=feed-item][data-own=true] .from').first().textContent();
    if (!/you/i.test(label)) throw new Error(`page1 own message sender shows "${label}", expected "you"`);
    await this.screenshot('chat');
  }

  async fitsPhoneWidth() {
    // A long word must wrap, not widen the page; every control must be on screen at 390 px.
    const long = `${'x'.repeat(300)} (${this.run})`;
    await this.send(this.page1, long);
    await this.expectTop(this.page2, long, { room: 'general', hub: this.hub1 });
    const problems = await this.page2.evaluate(() => {
      const out = [];
      const width = document.documentElement.clientWidth;
      if (document.documentElement.scrollWidth > width) {
        out.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
      }
      for (const id of ['status', 'connect', 'room-input', 'join', 'leave', 'message-input', 'send']) {
        const r = document.querySelector(`[data-testid=${id}]`)?.getBoundingClientRect();
        if (!r || r.width === 0) out.push(`${id} not visible`);
        else if (r.left < 0 || r.right > width) out.push(`${id} off screen (${r.left}..${r.right} of ${width})`);
      }
      return out;
    });
    if (problems.length) throw new Error(`page2 at phone width: ${problems.join('; ')}`);
  }

  async htmlIsText() {
    await this.send(this.page1, XSS);
    await this.expectTop(this.page2, XSS, { room: 'general', hub: this.hub1 });
    // Give a would-be onerror handler time to fire before looking for its dialog.
    await this.page2.waitForTimeout(500);
    for (const page of [this.page1, this.page2]) {
      const imgs = await page.$$eval('[data-testid=feed] img', (els) => els.length);
      if (imgs !== 0) throw new Error(`${page.rtName}: chat text became ${imgs} <img> element(s) in the feed`);
    }
    if (this.dialogs.length) throw new Error(`chat text ran as script, dialogs: ${this.dialogs.join('; ')}`);
    await this.screenshot('html-as-text');
  }

  async otherRoomSeesNothing() {
    const side = `side-${this.run}`;
    await this.leaveRoom(this.page3, 'general');
    await this.joinRoom(this.page3, side);
    const before = await this.feedTexts(this.page3);
    const forGeneral = `for general only (${this.run})`;
    await this.send(this.page1, forGeneral);
    await this.expectTop(this.page2, forGeneral, { room: 'general', hub: this.hub1 });
    // Page 2 has it, so it crossed the hubs; give page 3 the same time again to (wrongly) get it.
    await this.page3.waitForTimeout(1000);
    const after = await this.feedTexts(this.page3);
    if (after.length !== before.length) {
      throw new Error(`page3 in room ${side} received general traffic: ${JSON.stringify(after)}`);
    }
    // The side room itself works across hubs, so the silence above is not a dead page.
    await this.joinRoom(this.page1, side);
    const forSide = `for ${side} only (${this.run})`;
    await this.send(this.page1, forSide);
    await this.expectTop(this.page3, forSide, { room: side, hub: this.hub1 });
    await this.page2.waitForTimeout(500);
    if ((await this.feedTexts(this.page2)).includes(forSide)) {
      throw new Error(`page2 (general only) received a message for ${side}`);
    }
    await this.screenshot('other-room');
    await this.leaveRoom(this.page1, side);
    await this.waitFor(
      this.page1,
      'general active again',
      () => !!document.querySelector('[data-testid=rooms] li[data-room="general"][data-active]'),
    );
  }

  async disconnectButton() {
    const button = this.page2.locator('[data-testid=connect]');
    await button.click();
    await this.waitState(this.page2, 'disconnected');
    // A user's Disconnect is final: no automatic reconnect.
    await this.page2.waitForTimeout(1500);
    const state = await this.page2.$eval('[data-testid=status]', (s) => s.dataset.state);
    if (state !== 'disconnected') throw new Error(`page2 went "${state}" after Disconnect`);
    await button.click();
    await this.waitState(this.page2, 'connected');
  }

  async reconnectAfterHubRestart() {
    if (!this.stopHub1 || !this.startHub1) throw new Error('stopHub1/startHub1 callbacks are required');
    this.log('stopping hub 1');
    await this.stopHub1();
    await this.waitFor(
      this.page1,
      'status "reconnecting in N s"',
      () => {
        const s = document.querySelector('[data-testid=status]');
        return s && s.dataset.state === 'reconnecting' && /reconnecting/i.test(s.textContent);
      },
      undefined,
    );
    await this.screenshot('hub1-down');
    this.log('starting hub 1');
    await this.startHub1();
    await this.waitState(this.page1, 'connected', RECONNECT_TIMEOUT_MS);
    this.log('page1 reconnected');
    const a = `page 1 is back (${this.run})`;
    await this.send(this.page1, a);
    await this.expectTop(this.page2, a, { room: 'general', hub: this.hub1 });
    const b = `page 2 sees you again (${this.run})`;
    await this.send(this.page2, b);
    await this.expectTop(this.page1, b, { room: 'general', hub: this.hub2 });
    await this.screenshot('reconnected');
  }

  noPageErrors() {
    if (this.pageErrors.length) throw new Error(`page errors: ${this.pageErrors.join('; ')}`);
  }
}

/** The steps in order, named for test reports; each takes the open session. */
export const STEPS = [
  ['pages on both web servers connect to their hubs', (s) => s.connectBoth()],
  ['a message crosses the hubs both ways', (s) => s.chatBothWays()],
  ['the newest message is on top', (s) => s.newestOnTop()],
  ['the page fits a phone screen (390 px), long words wrap', (s) => s.fitsPhoneWidth()],
  ['chat text is shown as text and never runs', (s) => s.htmlIsText()],
  ['a page in another room sees nothing', (s) => s.otherRoomSeesNothing()],
  ['Disconnect stays disconnected, Connect reconnects', (s) => s.disconnectButton()],
  ['hub 1 restart: page 1 shows reconnecting, then chats again without a reload', (s) =>
    s.reconnectAfterHubRestart()],
  ['no script errors and no foreign fetches in any page', (s) => s.noPageErrors()],
];

/**
 * Runs the whole scenario; throws on the first failed expectation, always closes the browser.
 * stopHub1/startHub1 are async callbacks that stop and start hub 1 on its same port.
 */
export async function crossHubChat({ page1Url, page2Url, stopHub1, startHub1, screenshotDir, log = console.log }) {
  const session = new ChatSession({ page1Url, page2Url, stopHub1, startHub1, screenshotDir, log });
  try {
    await session.open();
    for (const [name, step] of STEPS) {
      log(`step: ${name}`);
      await step(session);
    }
  } finally {
    await session.close();
  }
}

async function describePage(page) {
  return page.evaluate(() => {
    const s = document.querySelector('[data-testid=status]');
    const items = [...document.querySelectorAll('[data-testid=feed] [data-testid=feed-item]')].slice(0, 3);
    return JSON.stringify({
      status: s ? { state: s.dataset.state, hub: s.dataset.hub, text: s.textContent } : null,
      rooms: [...document.querySelectorAll('[data-testid=rooms] li')].map((l) => l.dataset.room),
      top: items.map((i) => ({ ...i.dataset, content: i.querySelector('.content')?.textContent })),
    });
  });
}
