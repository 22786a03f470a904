// The compose stack in a real Docker engine, seen from a real browser: headless Chromium opens
// http://localhost:9081 (web1 → hub1) and http://localhost:9082 (web2 → hub2) and runs the shared
// cross-hub chat scenario of tests/browser/scenario.mjs; `docker stop` / `docker start` of hub1's
// container are its hub restart. Redis's own command statistics then show exactly one PUBLISH per
// chat message the pages sent, step by step.
//
// The stack runs with HUB_AUTH_MODE=jwt. Before the chat, raw WebSockets (opened inside a page of each
// web server, so they carry an Origin the hub allows) show it: frames before a token get `error`
// `unauthenticated` and no token closes with 4001 after HUB_AUTH_TIMEOUT; a token signed with another
// secret is refused with 4001; one signed with the secret `make setup` keeps in .secrets/jwt.env gets a
// `welcome` naming the user, on both hubs. Then each page signs in with its own name (web1's page as
// "Ada on web1 …", web2's as "Bo on web2 …") and the scenario runs; at the end every message of one
// page that the other shows must show its sender's chosen name, before and after the hub1 restart.
//
// Expects a running stack (`make setup`); deploy/test-compose.sh does the whole round trip.
// Run:  node --test deploy/compose.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatSession, STEPS } from '../tests/browser/scenario.mjs';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A stack setting as compose sees it: the environment first, else its default in .env. */
function setting(name) {
  if (process.env[name]) return process.env[name];
  const line = readFileSync(join(ROOT, '.env'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}=`));
  if (!line) throw new Error(`${name} is neither in the environment nor in .env`);
  return line.slice(name.length + 1);
}

/**
 * The stack's HS256 secrets as deploy/lib.sh hands them to compose: HUB_JWT_SECRETS from the
 * environment, else from .secrets/jwt.env. Never printed.
 */
function jwtSecrets() {
  let list = process.env.HUB_JWT_SECRETS;
  if (!list) {
    const file = join(ROOT, '.secrets/jwt.env');
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('HUB_JWT_SECRETS='))
      .pop();
    if (!line) throw new Error(`${file} has no HUB_JWT_SECRETS= line`);
    list = line.slice('HUB_JWT_SECRETS='.length).trim();
  }
  const secrets = list.split(',').filter(Boolean);
  if (!secrets.length) throw new Error('no JWT secret: run make setup first');
  return secrets;
}

/** A compact HS256 JWT, as any identity provider would sign it. */
function hs256(secret, claims) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`;
}

/** "5s", "1500ms", "1m" (humantime, as HUB_AUTH_TIMEOUT takes them; the forms .env uses) in ms. */
function durationMs(text) {
  const m = /^(\d+)\s*(ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`cannot read the duration "${text}"`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2]];
}

/**
 * A raw WebSocket to `hubUrl`, opened inside `page` (so it carries the page's Origin, which the hub
 * allows): sends `frames` once open and collects the JSON frames that come back until the hub closes
 * it, a frame of type `until` arrives, or `waitMs` passes. Returns { frames, close: {code, reason} |
 * null, openedMs, closedMs } (closedMs counts from the open).
 */
async function probe(page, hubUrl, frames, { until, waitMs }) {
  return page.evaluate(
    ({ hubUrl, frames, until, waitMs }) =>
      new Promise((resolve) => {
        const got = [];
        const t0 = performance.now();
        let opened;
        let settled = false;
        const ws = new WebSocket(hubUrl);
        const finish = (close) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const now = performance.now();
          resolve({
            frames: got,
            close,
            openedMs: opened === undefined ? null : Math.round(opened - t0),
            closedMs: opened === undefined ? null : Math.round(now - opened),
          });
        };
        const timer = setTimeout(() => {
          finish(null);
          ws.close();
        }, waitMs);
        ws.onopen = () => {
          opened = performance.now();
          for (const f of frames) ws.send(JSON.stringify(f));
        };
        ws.onmessage = (e) => {
          let frame;
          try {
            frame = JSON.parse(e.data);
          } catch {
            frame = { unparsable: String(e.data).slice(0, 200) };
          }
          got.push(frame);
          if (until && frame.type === until) {
            finish(null);
            ws.close();
          }
        };
        ws.onclose = (e) => finish({ code: e.code, reason: e.reason });
      }),
    { hubUrl, frames, until, waitMs },
  );
}

async function sh(cmd, args, timeout = 60_000) {
  const { stdout } = await run(cmd, args, { cwd: ROOT, timeout });
  return stdout.trim();
}

/** The container id of a compose service, through the same compose command `make ps` uses. */
async function containerOf(service) {
  const id = (await sh(join(ROOT, 'deploy/compose.sh'), ['ps', '-q', service])).split('\n')[0];
  if (!id) throw new Error(`no container for service ${service}: is the stack up (make setup)?`);
  return id;
}

/** PUBLISH calls Redis has served since it started, from INFO commandstats. */
async function publishCalls(redis) {
  // REDISCLI_AUTH (set in the container by the compose file) is the password: not on the command line.
  const info = await sh('docker', ['exec', redis, 'redis-cli', 'INFO', 'commandstats']);
  if (!/cmdstat_/.test(info)) throw new Error(`unexpected INFO commandstats answer: ${info.slice(0, 200)}`);
  const m = info.match(/^cmdstat_publish:calls=(\d+)/m);
  return m ? Number(m[1]) : 0;
}

async function health(container) {
  return sh('docker', ['inspect', '-f', '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}', container]);
}

const page1Url = `http://localhost:${setting('WEB1_PORT')}`;
const page2Url = `http://localhost:${setting('WEB2_PORT')}`;
const hubs = [
  { name: 'hub1', url: `ws://localhost:${setting('HUB1_PORT')}/ws`, pageUrl: page1Url },
  { name: 'hub2', url: `ws://localhost:${setting('HUB2_PORT')}/ws`, pageUrl: page2Url },
];
const log = (m) => console.log(m);
let session;
let redis;
let hub1;
let sent = 0;
const sentBy = [];
// The steps build on each other: after the first failure, the rest are skipped rather than failed.
let failed;
const published = { total: 0 };

before(async () => {
  redis = await containerOf('redis');
  hub1 = await containerOf('hub1');
  for (const service of ['redis', 'hub1', 'hub2', 'web1', 'web2']) {
    assert.equal(await health(await containerOf(service)), 'healthy', `${service} is not healthy`);
  }
  session = new ChatSession({
    page1Url,
    page2Url,
    stopHub1: async () => {
      await sh('docker', ['stop', '-t', '15', hub1]);
      assert.equal(await sh('docker', ['inspect', '-f', '{{.State.Status}}', hub1]), 'exited', 'hub1 did not stop');
    },
    startHub1: async () => {
      await sh('docker', ['start', hub1]);
    },
    screenshotDir: process.env.SCREENSHOT_DIR || join(ROOT, 'target/compose-test-screenshots'),
    // Signing in is a test of its own below, with the names chosen here.
    autoSignIn: false,
    log,
  });
  // Count what the pages send, and who sent what: every chat message goes through ChatSession.send.
  const send = session.send.bind(session);
  session.send = async (page, text) => {
    sent += 1;
    sentBy.push({ page: page.rtName, text });
    return send(page, text);
  };
  await session.open();
});

after(async () => {
  if (session) await session.close();
});

// ---- the stack is in jwt mode -----------------------------------------------------------------

const runId = randomBytes(3).toString('hex');
const probePages = new Map();

/**
 * The chat page of the hub's own web server with its script blocked: WebSockets opened in it carry an
 * Origin the hub allows (and its Content-Security-Policy allows that hub), and no page script signs in
 * or connects on its own. (A document made up by the test instead counts as a public page for
 * Chromium, which then blocks any connection to localhost.)
 */
async function probePage(hub) {
  if (!probePages.has(hub.name)) {
    const page = await session.browser.context.newPage();
    await page.route(/\.js(\?|$)/, (route) => route.abort());
    const res = await page.goto(hub.pageUrl);
    assert.equal(res?.status(), 200, `GET ${hub.pageUrl}`);
    probePages.set(hub.name, page);
  }
  return probePages.get(hub.name);
}

const describeFrames = (frames) =>
  JSON.stringify(frames.map((f) => (f.type === 'error' ? `error ${f.code}` : f.type ?? f)));

test('hub1 runs in jwt mode: frames before a token get "unauthenticated" and are not published; no token closes with 4001 after HUB_AUTH_TIMEOUT', async () => {
  const timeoutMs = durationMs(setting('HUB_AUTH_TIMEOUT'));
  const [hub] = hubs;
  const publishBefore = await publishCalls(redis);
  const r = await probe(
    await probePage(hub),
    hub.url,
    [
      { type: 'join', room: 'general' },
      { type: 'message', room: 'general', content: `sent without a token (${runId})` },
    ],
    { waitMs: timeoutMs + 8000 },
  );
  log(`no token: frames ${describeFrames(r.frames)}, close ${JSON.stringify(r.close)} ${r.closedMs} ms after the open`);
  assert.notEqual(r.openedMs, null, `the WebSocket to ${hub.url} did not open`);
  const kinds = r.frames.map((f) => (f.type === 'error' ? `error ${f.code}` : f.type));
  assert.ok(kinds.length > 0, 'no answer to frames sent before a token');
  assert.deepEqual([...new Set(kinds)], ['error unauthenticated'], 'answers to frames sent before a token');
  assert.equal(r.close?.code, 4001, 'close code without a token');
  // The timer starts at the upgrade; allow for the browser's own open event and a busy machine.
  assert.ok(
    r.closedMs >= timeoutMs - 1000 && r.closedMs <= timeoutMs + 4000,
    `closed ${r.closedMs} ms after the open, HUB_AUTH_TIMEOUT is ${timeoutMs} ms`,
  );
  assert.equal((await publishCalls(redis)) - publishBefore, 0, 'PUBLISH calls for frames sent without a token');
});

for (const hub of hubs) {
  test(`${hub.name} refuses a token signed with another secret: close 4001, no welcome`, async () => {
    const token = hs256(randomBytes(48).toString('base64url'), {
      sub: `compose-forger-${runId}`,
      name: 'Forger',
      exp: Math.floor(Date.now() / 1000) + 300,
    });
    const r = await probe(await probePage(hub), hub.url, [{ type: 'auth', token }], { waitMs: 4000 });
    log(`forged token on ${hub.name}: frames ${describeFrames(r.frames)}, close ${JSON.stringify(r.close)}`);
    assert.notEqual(r.openedMs, null, `the WebSocket to ${hub.url} did not open`);
    assert.ok(!r.frames.some((f) => f.type === 'welcome'), `a forged token got a welcome on ${hub.name}`);
    assert.equal(r.close?.code, 4001, 'close code for a forged token');
  });

  test(`${hub.name} welcomes a token signed with the secret of .secrets/jwt.env, naming the user`, async () => {
    const [secret] = jwtSecrets();
    const sub = `compose-probe-${runId}`;
    const name = `Probe ${runId}`;
    const token = hs256(secret, { sub, name, exp: Math.floor(Date.now() / 1000) + 300 });
    const r = await probe(await probePage(hub), hub.url, [{ type: 'auth', token }], { until: 'welcome', waitMs: 5000 });
    log(`good token on ${hub.name}: frames ${describeFrames(r.frames)}, close ${JSON.stringify(r.close)}`);
    const welcome = r.frames.find((f) => f.type === 'welcome');
    assert.ok(welcome, `no welcome on ${hub.name} (close ${JSON.stringify(r.close)})`);
    assert.deepEqual(welcome.user, { id: sub, name }, 'the welcome\'s user');
    assert.equal(welcome.hub, hub.name, 'the welcome names its hub');
    // The page its web server serves carries tokens at most, never the secret they are signed with.
    const html = await (await fetch(hub.pageUrl)).text();
    assert.ok(!html.includes(secret), `the page of ${hub.pageUrl} contains the secret`);
  });
}

// ---- sign-in, then the chat scenario ------------------------------------------------------------

// Each page is its own user; page2 and page3 share web2's origin (and so its remembered identity), so
// they sign in one after the other, as a user with two tabs would.
const names = () => ({
  page1: `Ada on web1 ${session.run}`,
  page2: `Bo on web2 ${session.run}`,
  page3: `Cy on web2 ${session.run}`,
});

test('each page asks for a name first; signing in with a name on web1 and on web2 connects it', async () => {
  failed = 'sign-in';
  for (const [pageName, name] of Object.entries(names())) {
    const page = session[pageName];
    assert.ok(await session.asksForName(page), `${pageName} does not ask for a name: is WEB_JWT_SECRET set?`);
    await session.signIn(page, name);
    // Browsers cannot set headers on a WebSocket: the token is the socket's first frame.
    assert.equal(page.rtSockets?.[0]?.sent[0], 'auth', `${pageName}: the first frame on its WebSocket`);
    log(`${pageName} signed in as "${session.nameOf(page)}"`);
  }
  failed = undefined;
});


for (const [name, step] of STEPS) {
  test(name, async (t) => {
    if (failed) return t.skip(`after the failure of "${failed}"`);
    failed = name;
    const sentBefore = sent;
    const publishBefore = await publishCalls(redis);
    await step(session);
    const messages = sent - sentBefore;
    const publishes = (await publishCalls(redis)) - publishBefore;
    published.total += publishes;
    log(`${messages} chat message(s) sent, ${publishes} PUBLISH(es) in Redis`);
    // Every chat message goes to the other hub through exactly one PUBLISH: none lost, none doubled,
    // nothing re-published by the receiving hub.
    assert.equal(publishes, messages, `PUBLISH calls in Redis during "${name}" vs chat messages sent`);
    failed = undefined;
  });
}

test('the names chosen on web1 and web2 are on each other\'s messages, also after the hub1 restart', async (t) => {
  if (failed) return t.skip(`after the failure of "${failed}"`);
  for (const [from, to] of [
    ['page1', 'page2'],
    ['page2', 'page1'],
  ]) {
    const name = names()[from];
    assert.equal(session.nameOf(session[from]), name, `${from} is signed in as`);
    const texts = new Set(sentBy.filter((m) => m.page === from).map((m) => m.text));
    // What a user sees on the other page: each received message's visible sender.
    const received = (
      await session[to].$$eval('[data-testid=feed] [data-testid=feed-item][data-own=false]', (items) =>
        items.map((li) => {
          const from = li.querySelector('.from');
          return {
            text: li.querySelector('.content')?.textContent,
            from: from && from.checkVisibility() ? from.textContent : '(not visible)',
          };
        }),
      )
    ).filter((m) => texts.has(m.text));
    log(`${to} shows ${received.length} message(s) of ${from}, from ${JSON.stringify([...new Set(received.map((m) => m.from))])}`);
    // At least the first exchange and the one after hub1 came back.
    assert.ok(received.length >= 2, `${to} shows ${received.length} of ${from}'s messages`);
    assert.deepEqual(
      received.filter((m) => m.from !== name),
      [],
      `messages of ${from} on ${to} must show "${name}"`,
    );
  }
});

test('exactly one PUBLISH per chat message over the whole scenario', (t) => {
  if (failed) return t.skip(`after the failure of "${failed}"`);
  assert.ok(sent > 0, 'the scenario sent no chat message');
  log(`scenario total: ${sent} chat messages, ${published.total} PUBLISH calls`);
  assert.equal(published.total, sent);
});
