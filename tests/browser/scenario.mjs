// The cross-hub chat scenario, shared by the local browser test (tests/browser/local.test.mjs, real
// processes on free ports) and the compose test (the Docker stack on localhost:9081 / :9082).
//
// Page 1 is served by web 1 and talks to hub 1; page 2 by web 2 and talks to hub 2; page 3 (web 2 → hub 2
// unless page3Url says otherwise) sits in another room. When the web servers sign tokens (the page's
// body has data-auth="jwt"), each page first signs in with its own name, and every received message must
// show its sender's name. AUTH_STEPS is the sign-in scenario of the local test (hubs in jwt mode).
// Everything is asserted on what a user sees in the page, through its test hooks:
//   [data-testid=status]         data-state = disconnected | connecting | connected | reconnecting,
//                                data-hub = hub name from the welcome frame
//   [data-testid=connect]        Connect / Disconnect toggle
//   [data-testid=signin-name], [data-testid=signin]   the sign-in step (jwt mode); [data-testid=signin-error]
//   [data-testid=me]             "signed in as <name>";  [data-testid=signout]
//   [data-testid=notice]         errors and refusals (a close's reason text)
//   [data-testid=room-input], [data-testid=join], [data-testid=leave]
//   [data-testid=rooms] li[data-room]          rooms this page is in (the active one has data-active)
//   [data-testid=message-input]                Enter sends to the active room
//   [data-testid=feed] [data-testid=feed-item] newest first; data-room, data-hub, data-from,
//                                data-user, data-name, data-own ("true" for this page's own messages),
//                                data-id, .content, .from (the sender's name, or a short id when anonymous);
//                                data-replayed = history | since (.replayed-mark "earlier" / "missed
//                                while away"); own ones data-state = pending | sent | failed (.state)
//   [data-testid=feed] [data-testid=feed-gap]  "some messages may be missing here"
//   [data-testid=notice] data-kind = error | recovered | gap
//   [data-testid=members] > li   who is in the active room, one per user (name, or a short id when
//                                anonymous; this page's user first, "… (you)", data-you="true"), with
//                                [data-testid=members-title] "In #room" and [data-testid=members-note];
//   [data-testid=rooms] li [data-testid=room-count]   each room's member count
//
// HISTORY_STEPS (local test, hubs with history) add page 4, in a browser of its own so that browser's
// offline mode takes page 4 alone offline, and page 5, a page opened late. PRESENCE_STEPS (after AUTH_STEPS,
// hubs with a short presence_leave_delay) add page 6, signed in on web 2, and close it.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium } from './browser.mjs';

const STEP_TIMEOUT_MS = 15_000;
// Messages page 1 sends while page 4 is offline (the issue asks for 30).
const OFFLINE_MESSAGES = 30;
// A restarted hub is reached after its start-up plus at most one capped reconnect delay (10 s default).
const RECONNECT_TIMEOUT_MS = 45_000;
const XSS = '<img src=x onerror=alert(1)>';

/**
 * One browser with three pages; each step throws on a failed expectation.
 * Options beyond the URLs and hub callbacks: page3Url (default page2Url); autoSignIn (default true: a
 * page that asks for a name gets one at open(); false leaves the sign-in to the steps); tokenTtlMs
 * (the web servers' WEB_TOKEN_TTL, for the renewal step); appendUnseen (async (room, contents): stores
 * messages in a room's history that no hub delivers live); forgetRoomHistory (async (room): deletes the
 * room's history in Redis, for the step where recovery cannot be complete).
 */
export class ChatSession {
  constructor({
    page1Url,
    page2Url,
    page3Url = page2Url,
    stopHub1,
    startHub1,
    screenshotDir,
    autoSignIn = true,
    tokenTtlMs = 0,
    forgetRoomHistory,
    appendUnseen,
    log = () => {},
  }) {
    Object.assign(this, {
      page1Url,
      page2Url,
      page3Url,
      stopHub1,
      startHub1,
      screenshotDir,
      autoSignIn,
      tokenTtlMs,
      forgetRoomHistory,
      appendUnseen,
      log,
    });
    this.run = Math.random().toString(36).slice(2, 8);
    // Names with the run id, so a stale page of an earlier run can never satisfy an expectation.
    this.names = {
      page1: `Ana ${this.run}`,
      page2: `Bo ${this.run}`,
      page3: `Cy ${this.run}`,
      page4: `Dee ${this.run}`,
      page5: `Eli ${this.run}`,
      page6: `Fay ${this.run}`,
    };
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
    this.page3 = await this.newPage('page3', this.page3Url, { width: 800, height: 600 });
    // All three are loaded before any signs in: pages of one origin share the remembered identity,
    // and each page here is meant to be its own user.
    if (this.autoSignIn) {
      for (const page of [this.page1, this.page2, this.page3]) {
        if (await this.asksForName(page)) await this.signIn(page);
      }
    }
  }

  async close() {
    try {
      if (this.offlineBrowser) await this.offlineBrowser.close();
    } finally {
      this.offlineBrowser = undefined;
      if (this.browser) await this.browser.close();
      this.browser = undefined;
    }
  }

  async newPage(name, url, viewport, context = this.browser.context) {
    const page = await context.newPage();
    page.rtName = name;
    // Every WebSocket the page opens, with the types of the frames it sent and received: the renewal
    // and refusal steps check that a page keeps its socket, and does not loop on a refused token.
    page.rtSockets = [];
    page.on('websocket', (ws) => {
      const sock = { ws, openedAt: Date.now(), sent: [], received: [] };
      const type = (payload) => {
        try {
          return JSON.parse(String(payload)).type ?? '?';
        } catch {
          return '?';
        }
      };
      ws.on('framesent', (f) => sock.sent.push(type(f.payload)));
      ws.on('framereceived', (f) => sock.received.push(type(f.payload)));
      page.rtSockets.push(sock);
    });
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
    for (const page of [this.page1, this.page2, this.page3, this.page4, this.page6]) {
      if (!page || page.isClosed()) continue;
      const file = join(this.screenshotDir, `${n}-${label}-${page.rtName}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch((e) => this.log(`screenshot ${file}: ${e.message}`));
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  nameOf(page) {
    return page.rtUserName;
  }

  async asksForName(page) {
    return page.$eval('body', (b) => b.dataset.auth === 'jwt');
  }

  /** The sign-in step: the name box is shown and the chat is not; returns once the page is connected. */
  async signIn(page, name = this.names[page.rtName]) {
    await this.waitFor(page, 'the sign-in step', () => {
      const input = document.querySelector('[data-testid=signin-name]');
      const feed = document.querySelector('[data-testid=feed]');
      return input && input.checkVisibility() && feed && !feed.checkVisibility();
    });
    await page.locator('[data-testid=signin-name]').fill(name);
    await page.locator('[data-testid=signin]').click();
    await this.waitState(page, 'connected');
    await this.waitFor(
      page,
      `"signed in as ${name}"`,
      (n) => (document.querySelector('[data-testid=me]')?.textContent ?? '').includes(n),
      name,
    );
    page.rtUserName = name;
  }

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

  /**
   * Waits until the newest feed item is `text`, received from another client, with its metadata; with
   * `name`, the sender shown must be that name (signed-in pages).
   */
  async expectTop(page, text, { room, hub, name }) {
    await this.waitFor(
      page,
      `"${text}" on top of the feed (room ${room}, hub ${hub}${name ? `, from "${name}"` : ''})`,
      ({ t, room, hub, name }) => {
        const top = document.querySelector('[data-testid=feed] [data-testid=feed-item]');
        return (
          top &&
          top.querySelector('.content')?.textContent === t &&
          top.dataset.own === 'false' &&
          top.dataset.room === room &&
          top.dataset.hub === hub &&
          top.dataset.from !== '' &&
          (top.querySelector('.from')?.textContent ?? '') !== '' &&
          (!name || top.querySelector('.from')?.textContent === name) &&
          (top.querySelector('.time')?.textContent ?? '') !== ''
        );
      },
      { t: text, room, hub, name: name ?? '' },
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

  /**
   * Waits until `page` shows `room` as its active room's member list with exactly `want` (item texts,
   * in order: this user first, "… (you)") and the room list counts `want.length` for it.
   */
  async waitMembers(page, room, want) {
    await this.waitFor(
      page,
      `the members of #${room}: ${JSON.stringify(want)}, counted ${want.length} in the room list`,
      ({ room, want }) => {
        const list = document.querySelector('[data-testid=members]');
        const title = document.querySelector('[data-testid=members-title]');
        const count = document.querySelector(`[data-testid=rooms] li[data-room="${room}"] [data-testid=room-count]`);
        if (!list || !list.checkVisibility() || title?.textContent !== `In #${room}`) return false;
        if (!count || !count.checkVisibility() || count.textContent !== String(want.length)) return false;
        const items = [...list.children].map((li) => li.textContent);
        return JSON.stringify(items) === JSON.stringify(want);
      },
      { room, want },
    );
  }

  /** What `page` shows: its member list (texts) and each room's count. */
  async presenceShown(page) {
    return page.evaluate(() => ({
      title: document.querySelector('[data-testid=members-title]')?.textContent,
      members: [...document.querySelectorAll('[data-testid=members] > li')].map((li) => li.textContent),
      note: document.querySelector('[data-testid=members-note]')?.textContent,
      counts: Object.fromEntries(
        [...document.querySelectorAll('[data-testid=rooms] li')].map((li) => [
          li.dataset.room,
          li.querySelector('[data-testid=room-count]')?.textContent,
        ]),
      ),
    }));
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
    // Signed-in pages: the other page shows the sender's chosen name (undefined when anonymous).
    const a = `hello from page 1 (${this.run})`;
    await this.send(this.page1, a);
    await this.expectTop(this.page2, a, { room: 'general', hub: this.hub1, name: this.nameOf(this.page1) });
    const b = `hello back from page 2 (${this.run})`;
    await this.send(this.page2, b);
    await this.expectTop(this.page1, b, { room: 'general', hub: this.hub2, name: this.nameOf(this.page2) });
    this.first = a;
    this.back = b;
    if (this.nameOf(this.page1)) this.log(`names across the hubs: "${this.nameOf(this.page1)}" ⇄ "${this.nameOf(this.page2)}"`);
  }

  /**
   * Each page lists who is in general across the hubs: itself first as "<name or short id> (you)",
   * the other page by its name (anonymous: its short id), and the room list counts what is listed.
   * Other pages may be in general too (page 3 here): the list must hold these two, counted right.
   */
  async membersListed() {
    const user1 = await this.page1.$eval('[data-testid=feed-item][data-own=true]', (li) => li.dataset.user);
    const user2 = await this.page1.$$eval(
      '[data-testid=feed-item][data-own=false]',
      (items, t) => items.find((li) => li.querySelector('.content')?.textContent === t)?.dataset.user,
      this.back,
    );
    if (!user1 || !user2 || user1 === user2) throw new Error(`pages' user ids ${user1} / ${user2}`);
    const label = (page, user) => this.nameOf(page) || user.slice(0, 8);
    const pages = [
      [this.page1, `${label(this.page1, user1)} (you)`, label(this.page2, user2)],
      [this.page2, `${label(this.page2, user2)} (you)`, label(this.page1, user1)],
    ];
    for (const [page, self, other] of pages) {
      await this.waitFor(
        page,
        `"${self}" first and "${other}" in the members of #general, counted in the room list`,
        ({ self, other }) => {
          const list = document.querySelector('[data-testid=members]');
          const count = document.querySelector('[data-testid=rooms] li[data-room="general"] [data-testid=room-count]');
          if (!list?.checkVisibility() || !count?.checkVisibility()) return false;
          const items = [...list.children].map((li) => li.textContent);
          return items[0] === self && items.includes(other) && items.filter((t) => /\(you\)/.test(t)).length === 1 &&
            count.textContent === String(items.length);
        },
        { self, other },
      );
    }
    this.log(`page1 lists ${JSON.stringify((await this.presenceShown(this.page1)).members)}`);
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

  // ---- history and recovery steps (hubs keeping history: HUB_HISTORY_SIZE > 0, the default) -------

  /** Signs `page` in when its server asks for a name, then waits until it is connected. */
  async ready(page) {
    if (this.autoSignIn && (await this.asksForName(page))) await this.signIn(page);
    await this.waitState(page, 'connected');
  }

  /** The feed as a user reads it, top (newest) first. */
  async feedItems(page) {
    return page.$$eval('[data-testid=feed] [data-testid=feed-item]', (items) =>
      items.map((li) => {
        const mark = li.querySelector('.replayed-mark');
        const state = li.querySelector('.state');
        return {
          text: li.querySelector('.content')?.textContent ?? '',
          id: li.dataset.id,
          own: li.dataset.own,
          replayed: li.dataset.replayed ?? '',
          mark: mark && mark.checkVisibility() ? mark.textContent : '',
          state: li.dataset.state ?? '',
          stateText: state && state.checkVisibility() ? state.textContent : '',
        };
      }),
    );
  }

  /** Waits for the notice of `kind` with text matching `re` to be visible; returns its text. */
  async waitNotice(page, kind, re) {
    await this.waitFor(
      page,
      `a ${kind} notice matching ${re}`,
      ({ kind, source, flags }) => {
        const n = document.querySelector('[data-testid=notice]');
        return n && n.checkVisibility() && n.dataset.kind === kind && new RegExp(source, flags).test(n.textContent);
      },
      { kind, source: re.source, flags: re.flags },
    );
    return page.locator('[data-testid=notice]').textContent();
  }

  /**
   * Records, in the page, every state each own message shows (data-state and its visible text), in
   * order: what a user watching the message would have seen.
   */
  async watchOwnStates(page) {
    await page.evaluate(() => {
      const seen = new Map();
      window.rtOwnStates = seen;
      const note = (li) => {
        if (!li.matches || !li.matches('[data-testid=feed-item][data-own=true]')) return;
        const text = li.querySelector('.content')?.textContent ?? '';
        const list = seen.get(text) ?? [];
        const now = `${li.dataset.state}: ${li.querySelector('.state')?.textContent ?? ''}`;
        if (list.at(-1) !== now) list.push(now);
        seen.set(text, list);
      };
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.type === 'childList') r.addedNodes.forEach(note);
          else note(r.target);
        }
      }).observe(document.querySelector('[data-testid=feed]'), {
        childList: true,
        subtree: true,
        attributes: true,
        attributeFilter: ['data-state'],
      });
    });
  }

  async ownStates(page, text) {
    return page.evaluate((t) => window.rtOwnStates?.get(t) ?? [], text);
  }

  /** Page 4 (web 2 → hub 2) in a browser of its own, whose offline mode affects page 4 alone. */
  async openOfflinePage() {
    this.offlineBrowser = await launchChromium();
    this.page4 = await this.newPage('page4', this.page2Url, { width: 800, height: 900 }, this.offlineBrowser.context);
    await this.ready(this.page4);
    // Page 4 is live in general once a message sent now reaches it.
    const hello = `page 4 is here (${this.run})`;
    await this.send(this.page1, hello);
    await this.expectTop(this.page4, hello, { room: 'general', hub: this.hub1 });
  }

  async goOffline(page, context) {
    await context.setOffline(true);
    await this.waitFor(page, 'status "Offline — reconnecting…"', () => {
      const s = document.querySelector('[data-testid=status]');
      return s && s.dataset.state === 'reconnecting' && /offline/i.test(s.textContent);
    });
    // The chat cannot be used while offline.
    if (!(await page.locator('[data-testid=message-input]').isDisabled())) {
      throw new Error(`${page.rtName}: the message box is usable while offline`);
    }
  }

  async offlineRecovery() {
    await this.openOfflinePage();
    const page4 = this.page4;
    const before = (await this.feedItems(page4)).length;
    await this.watchOwnStates(this.page1);
    this.log('page4 goes offline');
    await this.goOffline(page4, this.offlineBrowser.context);
    await this.screenshot('page4-offline');
    const texts = Array.from({ length: OFFLINE_MESSAGES }, (_, i) => `missed ${String(i + 1).padStart(2, '0')} (${this.run})`);
    for (const text of texts) await this.send(this.page1, text);
    this.missed = texts;
    // They did cross the hubs meanwhile: page 2, on hub 2 like page 4, has the last one.
    await this.expectTop(this.page2, texts.at(-1), { room: 'general', hub: this.hub1 });
    if ((await this.feedItems(page4)).length !== before) throw new Error('page4 got messages while offline');
    this.log('page4 comes back online');
    await this.offlineBrowser.context.setOffline(false);
    await this.waitState(page4, 'connected', RECONNECT_TIMEOUT_MS);
    const said = await this.waitNotice(page4, 'recovered', new RegExp(`recovered ${OFFLINE_MESSAGES} missed messages`, 'i'));
    this.log(`page4 shows: ${said}`);
    await this.expectTop(page4, texts.at(-1), { room: 'general', hub: this.hub1 });
    const feed = await this.feedItems(page4);
    // Every one exactly once, newest on top, right above what page 4 had before it went offline.
    const got = feed.filter((m) => texts.includes(m.text));
    const want = [...texts].reverse();
    if (JSON.stringify(got.map((m) => m.text)) !== JSON.stringify(want)) {
      throw new Error(`page4 shows the missed messages as ${JSON.stringify(got.map((m) => m.text))}`);
    }
    if (JSON.stringify(feed.slice(0, texts.length).map((m) => m.text)) !== JSON.stringify(want)) {
      throw new Error(`page4's feed does not start with the ${texts.length} missed messages`);
    }
    if (feed[texts.length]?.text !== `page 4 is here (${this.run})`) {
      throw new Error(`below the missed messages page4 shows "${feed[texts.length]?.text}"`);
    }
    const unmarked = got.filter((m) => m.replayed !== 'since' || m.mark !== 'missed while away' || m.own !== 'false');
    if (unmarked.length) throw new Error(`recovered messages not marked as missed: ${JSON.stringify(unmarked)}`);
    assertUniqueIds(page4, feed);
    await this.screenshot('page4-recovered');
    // Page 1 saw each of its messages go from "sending" to "sent".
    for (const text of texts) {
      const states = await this.ownStates(this.page1, text);
      if (states.length !== 2 || !/^pending: … sending$/.test(states[0]) || !/^sent: ✓ sent$/.test(states[1])) {
        throw new Error(`page1's "${text}" showed ${JSON.stringify(states)}, expected sending then sent`);
      }
    }
  }

  async lateJoinerSeesHistory() {
    if (!this.missed) throw new Error('run offlineRecovery first');
    const page5 = await this.newPage('page5', this.page1Url, { width: 390, height: 900 });
    try {
      await this.ready(page5);
      await this.waitFor(
        page5,
        `the last message of general ("${this.missed.at(-1)}") on top`,
        (t) => document.querySelector('[data-testid=feed] [data-testid=feed-item] .content')?.textContent === t,
        this.missed.at(-1),
      );
      const feed = await this.feedItems(page5);
      const top = feed.slice(0, this.missed.length);
      if (JSON.stringify(top.map((m) => m.text)) !== JSON.stringify([...this.missed].reverse())) {
        throw new Error(`page5's feed starts with ${JSON.stringify(top.map((m) => m.text))}`);
      }
      const unmarked = feed.filter((m) => m.replayed !== 'history' || m.mark !== 'earlier' || m.own !== 'false');
      if (unmarked.length) throw new Error(`page5 shows messages not marked earlier: ${JSON.stringify(unmarked.slice(0, 3))}`);
      if (feed.length > 50) throw new Error(`page5 shows ${feed.length} earlier messages, asked for 50`);
      assertUniqueIds(page5, feed);
      this.log(`page5 (opened now) shows ${feed.length} earlier messages of general`);
      this.shot += 1;
      if (this.screenshotDir) {
        await page5.screenshot({ path: join(this.screenshotDir, `${String(this.shot).padStart(2, '0')}-late-joiner-page5.png`), fullPage: true });
      }
    } finally {
      await page5.close();
    }
  }

  async reloadRecovers() {
    const page4 = this.page4;
    const before = (await this.feedItems(page4)).map((m) => m.text);
    const socketsBefore = page4.rtSockets.length;
    await page4.reload();
    await this.waitState(page4, 'connected');
    // The tab kept its cursor (sessionStorage): it rejoins with `since`, then refills the feed.
    const said = await this.waitNotice(page4, 'recovered', /no messages were missed/i);
    this.log(`page4 after a reload shows: ${said}`);
    const sock = page4.rtSockets[socketsBefore];
    if (!sock || !sock.sent.includes('join')) throw new Error('page4 sent no join after the reload');
    await this.waitFor(
      page4,
      `the ${before.length} messages it had before the reload`,
      (n) => document.querySelectorAll('[data-testid=feed] [data-testid=feed-item]').length >= n,
      before.length,
    );
    const after = await this.feedItems(page4);
    if (JSON.stringify(after.map((m) => m.text)) !== JSON.stringify(before)) {
      throw new Error(`page4 after a reload shows ${JSON.stringify(after.map((m) => m.text).slice(0, 5))}…, had ${JSON.stringify(before.slice(0, 5))}…`);
    }
    assertUniqueIds(page4, after);
  }

  /**
   * Makes page 1's socket close as it sends its next chat message: before the frame leaves
   * (`delivered` false) or right after it (the hub has it, the ack is lost). Test-only, through
   * the DevTools protocol (not subject to the page's CSP).
   */
  async dropOnNextMessage(page, delivered) {
    await page.evaluate((delivered) => {
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data) {
        if (typeof data !== 'string' || !data.includes('"type":"message"')) return send.call(this, data);
        WebSocket.prototype.send = send;
        if (delivered) send.call(this, data);
        this.close(3000, 'test: dropped before the ack');
        return undefined;
      };
    }, delivered);
  }

  async ownMessageFailsAndRecovers() {
    const page = this.page1;
    const input = page.locator('[data-testid=message-input]');
    const typeAndSend = async (text) => {
      await input.fill(text);
      await input.press('Enter');
    };
    // 1. Never reached the hub: failed, and still failed once the page has reconnected and recovered.
    const lost = `never left page 1 (${this.run})`;
    await this.dropOnNextMessage(page, false);
    await typeAndSend(lost);
    await this.waitState(page, 'connected', RECONNECT_TIMEOUT_MS);
    await this.waitNotice(page, 'recovered', /reconnected/i);
    let item = (await this.feedItems(page)).find((m) => m.text === lost);
    if (!item || item.state !== 'failed' || !/✕ not sent \(connection lost\)/.test(item.stateText)) {
      throw new Error(`page1's undelivered message shows ${JSON.stringify(item)}`);
    }
    // 2. Reached the hub, ack lost with the connection: failed until the recovery replays it, then sent.
    const late = `acked by the recovery (${this.run})`;
    await this.dropOnNextMessage(page, true);
    await typeAndSend(late);
    await this.waitState(page, 'connected', RECONNECT_TIMEOUT_MS);
    await this.waitFor(page, `"${late}" sent`, (t) => {
      const li = [...document.querySelectorAll('[data-testid=feed-item][data-own=true]')].find(
        (l) => l.querySelector('.content')?.textContent === t,
      );
      return li && li.dataset.state === 'sent';
    }, late);
    const states = await this.ownStates(page, late);
    const want = ['pending: … sending', 'failed: ✕ not sent (connection lost)', 'sent: ✓ sent'];
    if (JSON.stringify(states) !== JSON.stringify(want)) {
      throw new Error(`page1's "${late}" showed ${JSON.stringify(states)}, expected ${JSON.stringify(want)}`);
    }
    // The others have it, once; the page shows it once too.
    await this.expectTop(this.page2, late, { room: 'general', hub: this.hub1 });
    const mine = (await this.feedItems(page)).filter((m) => m.text === late || m.text === lost);
    if (mine.length !== 2) throw new Error(`page1 shows its two messages ${mine.length} times`);
    item = (await this.feedItems(page)).find((m) => m.text === lost);
    if (item.state !== 'failed') throw new Error(`page1's undelivered message became "${item.state}"`);
    if ((await this.feedTexts(this.page2)).includes(lost)) throw new Error('page2 shows a message that never left page 1');
    // Both recoveries replayed page 1's own earlier messages (acked, so known by id): shown once still.
    assertUniqueIds(page, await this.feedItems(page));
    const texts = (await this.feedItems(page)).map((m) => m.text);
    const twice = texts.filter((t, i) => texts.indexOf(t) !== i);
    if (twice.length) throw new Error(`page1 shows ${JSON.stringify(twice.slice(0, 3))} twice`);
    await this.screenshot('own-states');
  }

  async recoveryGapIsShown() {
    if (!this.forgetRoomHistory) throw new Error('the forgetRoomHistory callback is required');
    const page4 = this.page4;
    const lastSeen = (await this.feedItems(page4))[0]?.text;
    await this.goOffline(page4, this.offlineBrowser.context);
    // What a Redis restarted empty does to the room: a new epoch, offsets from 1 again.
    await this.forgetRoomHistory('general');
    const text = `after the history reset (${this.run})`;
    await this.send(this.page1, text);
    await this.expectTop(this.page2, text, { room: 'general', hub: this.hub1 });
    await this.offlineBrowser.context.setOffline(false);
    await this.waitState(page4, 'connected', RECONNECT_TIMEOUT_MS);
    const said = await this.waitNotice(page4, 'gap', /some messages may be missing in #general \(the room's history was reset\)/i);
    this.log(`page4 shows: ${said}`);
    await this.expectTop(page4, text, { room: 'general', hub: this.hub1 });
    // Messages and gap lines as the feed shows them (day separators left out).
    const gap = await page4.$$eval('[data-testid=feed] > :not([data-testid=day-separator])', (items) =>
      items.map((li) => (li.dataset.testid === 'feed-gap' ? `GAP: ${li.textContent}` : li.querySelector('.content')?.textContent)),
    );
    const at = gap.findIndex((t) => t?.startsWith('GAP: '));
    if (at !== 1 || !/may be missing here/.test(gap[at]) || gap[at + 1] !== lastSeen) {
      throw new Error(`page4 does not mark the gap between the new message and the last it had: ${JSON.stringify(gap.slice(0, 4))}`);
    }
    assertUniqueIds(page4, await this.feedItems(page4));
    await this.screenshot('gap');
  }

  /**
   * Three messages stored in general's history but never delivered live (appendUnseen), then a live
   * one: page 4 sees its offset skip three, rejoins with `since`, and shows all four once, in order.
   */
  async liveGapIsFilled() {
    if (!this.appendUnseen) throw new Error('the appendUnseen callback is required');
    const page4 = this.page4;
    const unseen = [1, 2, 3].map((i) => `stored, never live ${i} (${this.run})`);
    await this.appendUnseen('general', unseen);
    const live = `live after the gap (${this.run})`;
    await this.send(this.page1, live);
    await this.expectTop(page4, live, { room: 'general', hub: this.hub1 });
    await this.waitFor(page4, 'the three unseen messages filled in under the live one', (want) => {
      const texts = [...document.querySelectorAll('[data-testid=feed] > [data-testid=feed-item]')]
        .map((li) => li.querySelector('.content')?.textContent);
      return JSON.stringify(texts.slice(0, 4)) === JSON.stringify(want);
    }, [live, ...unseen.slice().reverse()], 20_000);
    assertUniqueIds(page4, await this.feedItems(page4));
    await this.screenshot('live-gap-filled');
  }

  noPageErrors() {
    if (this.pageErrors.length) throw new Error(`page errors: ${this.pageErrors.join('; ')}`);
  }

  // ---- presence steps (after AUTH_STEPS: page 1 signed in, page 2 signed out; hubs with a short
  // presence_leave_delay) -------------------------------------------------------------------------

  /**
   * Page 6 signs in on web 2 (hub 2) as a new user: page 1 (hub 1) and page 6 each list both names,
   * themselves first and marked "(you)", and count 2 in general; page 6 in a room of its own lists
   * only itself there, then general's two again when it goes back to general.
   */
  async membersAcrossHubs() {
    const ana = this.nameOf(this.page1);
    this.page6 = await this.newPage('page6', this.page2Url, { width: 390, height: 760 });
    await this.signIn(this.page6);
    const fay = this.nameOf(this.page6);
    await this.waitMembers(this.page1, 'general', [`${ana} (you)`, fay]);
    await this.waitMembers(this.page6, 'general', [`${fay} (you)`, ana]);
    const own = await this.page6.$eval('[data-testid=members] li[data-you=true]', (li) => li.textContent);
    if (own !== `${fay} (you)`) throw new Error(`page6 marks "${own}" as itself`);
    await this.screenshot('members');
    // The list is the active room's: page 6 alone in a side room, general still counted 2.
    const side = `side-${this.run}`;
    await this.joinRoom(this.page6, side);
    await this.waitMembers(this.page6, side, [`${fay} (you)`]);
    const shown = await this.presenceShown(this.page6);
    if (shown.counts.general !== '2') throw new Error(`page6 counts general ${JSON.stringify(shown.counts)} while in ${side}`);
    await this.page6.locator('[data-testid=rooms] li[data-room="general"] button').click();
    await this.waitMembers(this.page6, 'general', [`${fay} (you)`, ana]);
  }

  /** Page 6 closes: its name leaves page 1's list, and the count follows, within seconds. */
  async closedPageLeaves() {
    const ana = this.nameOf(this.page1);
    const t0 = Date.now();
    await this.page6.close();
    await this.waitMembers(this.page1, 'general', [`${ana} (you)`]);
    this.log(`page6's name left page1's member list ${((Date.now() - t0) / 1000).toFixed(1)} s after it closed`);
    await this.screenshot('member-left');
  }

  // ---- sign-in steps (web servers with WEB_JWT_SECRET, hubs with HUB_AUTH_MODE=jwt) ---------------

  async signInBoth() {
    for (const page of [this.page1, this.page2]) {
      if (!(await this.asksForName(page))) throw new Error(`${page.rtName}: the page does not ask for a name (data-auth)`);
    }
    await this.screenshot('sign-in');
    await Promise.all([this.signIn(this.page1), this.signIn(this.page2)]);
    this.hub1 = await this.hubOf(this.page1);
    this.hub2 = await this.hubOf(this.page2);
    if (!this.hub1 || !this.hub2 || this.hub1 === this.hub2) {
      throw new Error(`pages name their hubs "${this.hub1}" and "${this.hub2}"`);
    }
    // Browsers cannot set headers on a WebSocket: the token must be the socket's first frame.
    for (const page of [this.page1, this.page2]) {
      const [sock] = page.rtSockets;
      if (!sock || sock.sent[0] !== 'auth') {
        throw new Error(`${page.rtName}: first frame sent was ${JSON.stringify(sock?.sent[0])}, expected auth`);
      }
    }
    await this.screenshot('signed-in');
  }

  async namesAcrossHubs() {
    await this.chatBothWays();
    // The page shows its own messages under its own name, marked as its own.
    const own = await this.page1.locator('[data-testid=feed-item][data-own=true] .from').first().textContent();
    if (!own.includes(this.nameOf(this.page1)) || !/you/i.test(own)) {
      throw new Error(`page1's own message shows "${own}", expected "${this.nameOf(this.page1)} (you)"`);
    }
    this.page1User = await this.page2.$eval('[data-testid=feed-item][data-own=false]', (li) => li.dataset.user);
    if (!this.page1User) throw new Error('page2 does not know the user id of page1\'s message');
    await this.screenshot('names');
  }

  async reloadKeepsIdentity() {
    const socketsBefore = this.page1.rtSockets.length;
    await this.page1.reload();
    // No typing: the remembered name signs in again, straight to connected.
    await this.waitState(this.page1, 'connected');
    const me = await this.page1.locator('[data-testid=me]').textContent();
    if (!me.includes(this.nameOf(this.page1))) throw new Error(`page1 after a reload shows "${me}"`);
    if (this.page1.rtSockets.length !== socketsBefore + 1) {
      throw new Error(`page1 opened ${this.page1.rtSockets.length - socketsBefore} sockets after a reload, expected 1`);
    }
    const text = `page 1 after a reload (${this.run})`;
    await this.send(this.page1, text);
    await this.expectTop(this.page2, text, { room: 'general', hub: this.hub1, name: this.nameOf(this.page1) });
    const user = await this.page2.$eval('[data-testid=feed-item][data-own=false]', (li) => li.dataset.user);
    if (user !== this.page1User) throw new Error(`page1 came back as user ${user}, was ${this.page1User}`);
  }

  /** page3's server signs with a secret the hubs do not hold: refused with 4001, the page says why. */
  async refusedTokenShowsWhy() {
    const page = this.page3;
    await page.locator('[data-testid=signin-name]').fill(this.names.page3);
    await page.locator('[data-testid=signin]').click();
    await this.waitFor(page, 'the notice "auth failed: bad signature"', () => {
      const n = document.querySelector('[data-testid=notice]');
      return n && n.checkVisibility() && /auth failed: bad signature/.test(n.textContent);
    });
    const notice = await page.locator('[data-testid=notice]').textContent();
    this.log(`page3 shows: ${notice}`);
    // Back at the sign-in step, saying why, and not connected.
    await this.waitFor(page, 'the sign-in step with the reason', () => {
      const input = document.querySelector('[data-testid=signin-name]');
      const err = document.querySelector('[data-testid=signin-error]');
      return input?.checkVisibility() && err?.checkVisibility() && /bad signature/.test(err.textContent);
    });
    // No loop with the same token: after several reconnect delays there is still one socket only.
    await page.waitForTimeout(2500);
    const state = await page.$eval('[data-testid=status]', (el) => el.dataset.state);
    if (state !== 'disconnected') throw new Error(`page3 is "${state}" after the refusal`);
    if (page.rtSockets.length !== 1) throw new Error(`page3 opened ${page.rtSockets.length} sockets, expected 1 (no retry loop)`);
    const [sock] = page.rtSockets;
    if (sock.received.includes('welcome')) throw new Error('page3 got a welcome with a forged token');
    await this.screenshot('refused');
  }

  /** With a short WEB_TOKEN_TTL, the socket outlives several tokens: each renewal reaches the hub. */
  async tokenRenewed() {
    if (!this.tokenTtlMs) throw new Error('tokenTtlMs is not set');
    const sock = this.page1.rtSockets.at(-1);
    // Past the first token's expiry plus the hub's leeway (2 s in the test) plus a margin.
    const due = sock.openedAt + this.tokenTtlMs + 4000;
    if (Date.now() < due) await this.page1.waitForTimeout(due - Date.now());
    const state = await this.page1.$eval('[data-testid=status]', (el) => el.dataset.state);
    if (state !== 'connected') throw new Error(`page1 is "${state}" after its first token expired`);
    if (this.page1.rtSockets.at(-1) !== sock || sock.ws.isClosed()) {
      throw new Error('page1 lost its socket when its token expired: the renewal did not reach the hub');
    }
    const renewals = sock.received.filter((t) => t === 'authenticated').length;
    if (renewals < 1) throw new Error(`page1 got ${renewals} "authenticated" answers on a socket older than its token`);
    this.log(`page1 renewed its token ${renewals} time(s) on one socket`);
    const text = `page 1 on a renewed token (${this.run})`;
    await this.send(this.page1, text);
    await this.expectTop(this.page2, text, { room: 'general', hub: this.hub1, name: this.nameOf(this.page1) });
  }

  async signOutForgets() {
    const page = this.page2;
    await page.locator('[data-testid=signout]').click();
    await this.waitFor(page, 'the sign-in step after Sign out', () => {
      const input = document.querySelector('[data-testid=signin-name]');
      return input?.checkVisibility() && input.value === '';
    });
    await page.reload();
    await this.waitFor(page, 'the sign-in step after a reload (identity forgotten)', () => {
      const input = document.querySelector('[data-testid=signin-name]');
      const s = document.querySelector('[data-testid=status]');
      return input?.checkVisibility() && s?.dataset.state === 'disconnected';
    });
    await page.waitForTimeout(500);
    const state = await page.$eval('[data-testid=status]', (el) => el.dataset.state);
    if (state !== 'disconnected') throw new Error(`page2 signed in by itself after Sign out ("${state}")`);
  }
}

/** The steps in order, named for test reports; each takes the open session. */
export const STEPS = [
  ['pages on both web servers connect to their hubs', (s) => s.connectBoth()],
  ['a message crosses the hubs both ways', (s) => s.chatBothWays()],
  ['each page lists who is in general across the hubs, itself marked (you), counted in the room list', (s) =>
    s.membersListed()],
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
 * History and recovery, after STEPS (hubs keeping history; forgetRoomHistory set), in order.
 * About 20 s: a second browser, 30 + 3 messages, three reconnects.
 */
export const HISTORY_STEPS = [
  [`a page offline while ${OFFLINE_MESSAGES} messages are sent shows all of them once, in order, and says it recovered them; the sender saw each go from sending to sent`,
    (s) => s.offlineRecovery()],
  ['a page opened now shows the latest messages of general, marked earlier', (s) => s.lateJoinerSeesHistory()],
  ['a reload recovers from where the tab was and shows the same messages once, in order', (s) => s.reloadRecovers()],
  ['an own message whose connection drops before the ack shows failed; sent once a recovery replays it', (s) =>
    s.ownMessageFailsAndRecovers()],
  ['a recovery that cannot be complete (history reset) says messages may be missing and marks where', (s) =>
    s.recoveryGapIsShown()],
  ['a live message whose offset skips some makes the page recover them: all shown once, in order', (s) =>
    s.liveGapIsFilled()],
  ['no script errors and no foreign fetches in any page', (s) => s.noPageErrors()],
];

/** The sign-in scenario (autoSignIn: false, page3 on a web server with another secret), in order. */
export const AUTH_STEPS = [
  ['each page asks for a name, signs in and connects, the token as its first frame', (s) => s.signInBoth()],
  ['messages show the sender\'s name across the hubs, both ways', (s) => s.namesAcrossHubs()],
  ['a reload signs in again as the same user without typing', (s) => s.reloadKeepsIdentity()],
  ['a token the hub refuses (another secret): 4001, the page shows why and does not retry', (s) =>
    s.refusedTokenShowsWhy()],
  ['the page renews its token before it expires and keeps its connection', (s) => s.tokenRenewed()],
  ['Sign out forgets the name: a reload asks again', (s) => s.signOutForgets()],
  ['no script errors and no foreign fetches in any page', (s) => s.noPageErrors()],
];

/**
 * Presence, after AUTH_STEPS (page 1 signed in, page 2 signed out; the hubs' presence_leave_delay short:
 * a closed page leaves the lists that much later). About 3 s.
 */
export const PRESENCE_STEPS = [
  ['two signed-in pages on the two hubs list both names, themselves marked (you), and count 2; the list follows the active room', (s) =>
    s.membersAcrossHubs()],
  ['a page that closes leaves the other page\'s member list and count', (s) => s.closedPageLeaves()],
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

function assertUniqueIds(page, feed) {
  const ids = feed.map((m) => m.id).filter(Boolean);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length) throw new Error(`${page.rtName} shows ${twice.length} message(s) twice: ${JSON.stringify(twice.slice(0, 3))}`);
}

async function describePage(page) {
  return page.evaluate(() => {
    const s = document.querySelector('[data-testid=status]');
    const items = [...document.querySelectorAll('[data-testid=feed] [data-testid=feed-item]')].slice(0, 3);
    const notice = document.querySelector('[data-testid=notice]');
    const signin = document.querySelector('[data-testid=signin-name]');
    return JSON.stringify({
      status: s ? { state: s.dataset.state, hub: s.dataset.hub, text: s.textContent } : null,
      notice: notice && !notice.hidden ? notice.textContent : null,
      signInShown: !!signin && signin.checkVisibility(),
      rooms: [...document.querySelectorAll('[data-testid=rooms] li')].map((l) => l.dataset.room),
      top: items.map((i) => ({ ...i.dataset, content: i.querySelector('.content')?.textContent })),
    });
  });
}
