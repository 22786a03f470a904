// The compose stack in a real Docker engine, seen from a real browser: headless Chromium opens
// http://localhost:9081 (web1 → hub1) and http://localhost:9082 (web2 → hub2) and runs the shared
// cross-hub chat scenario of tests/browser/scenario.mjs; `docker stop` / `docker start` of hub1's
// container are its hub restart. A pattern subscriber of the test's own in Redis then sees exactly one
// chat message published per chat message the pages sent, step by step (the room channels also carry
// presence diffs since presence landed: they are told apart by their frame's type).
//
// The stack runs with HUB_AUTH_MODE=jwt. Before the chat, raw WebSockets (opened inside a page of each
// web server, so they carry an Origin the hub allows) show it: frames before a token get `error`
// `unauthenticated` and no token closes with 4001 after HUB_AUTH_TIMEOUT; a token signed with another
// secret is refused with 4001; one signed with the secret `make setup` keeps in .secrets/jwt.env gets a
// `welcome` naming the user, on both hubs. Then each page signs in with its own name (web1's page as
// "Ada on web1 …", web2's as "Bo on web2 …") and the scenario runs; at the end every message of one
// page that the other shows must show its sender's chosen name, before and after the hub1 restart.
//
// Then the server API, with the key `make setup` keeps in .secrets/api.env, on 127.0.0.1:8090 (hub1)
// and :8091 (hub2): a missing, random or nearly right key is 401 and general's history does not move;
// /metrics answers without a key; a publish through each hub's API shows on the pages of both hubs;
// and the curl lines of README.md's "The server API on the compose stack" run as written.
//
// Expects a running stack (`make setup`); deploy/test-compose.sh does the whole round trip.
// Run:  node --test deploy/compose.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
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
 * One of the stack's secret lists as deploy/lib.sh hands it to compose: `name` from the environment,
 * else the last `name=` line of `file` (under .secrets/, made by `make setup`). Never printed.
 */
function secretList(name, file) {
  let list = process.env[name];
  if (!list) {
    const path = join(ROOT, file);
    const line = readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith(`${name}=`))
      .pop();
    if (!line) throw new Error(`${path} has no ${name}= line`);
    list = line.slice(name.length + 1).trim();
  }
  const values = list.split(',').map((v) => v.trim()).filter(Boolean);
  if (!values.length) throw new Error(`no ${name}: run make setup first`);
  return values;
}

/** The stack's HS256 secrets (HUB_JWT_SECRETS, .secrets/jwt.env). */
const jwtSecrets = () => secretList('HUB_JWT_SECRETS', '.secrets/jwt.env');
/** The keys of the stack's server API (HUB_API_KEYS, .secrets/api.env). */
const apiKeys = () => secretList('HUB_API_KEYS', '.secrets/api.env');

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

/**
 * What Redis carries on the room channels, seen by a pattern subscriber of the test's own (redis-cli
 * PSUBSCRIBE inside the redis container): every PUBLISH to a room reaches it once, whoever sent it, so
 * it counts the chat messages published (envelopes whose frame is a "message") apart from everything
 * else on those channels (presence diffs). sync() returns once all that Redis carried before the call
 * has been counted: a marker published after it arrives after it.
 */
class RoomTraffic {
  static MARK = 'compose-test:sync';

  constructor(redis, prefix) {
    Object.assign(this, { redis, prefix, chat: 0, other: 0, marked: 0, marks: 0, stderr: '' });
  }

  start() {
    this.proc = spawn('docker', ['exec', this.redis, 'redis-cli', 'PSUBSCRIBE', `${this.prefix}room:*`, RoomTraffic.MARK], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.on('exit', (code) => {
      this.exited = code ?? 'signal';
    });
    this.proc.stderr.setEncoding('utf8').on('data', (d) => {
      this.stderr += d;
    });
    // Outside a terminal redis-cli prints each reply element on a line: pmessage, pattern, channel, payload.
    let rest = '';
    let pending = null;
    this.proc.stdout.setEncoding('utf8').on('data', (d) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop();
      for (const line of lines) {
        if (pending) {
          pending.push(line);
          if (pending.length === 3) {
            this.message(...pending);
            pending = null;
          }
        } else if (line === 'pmessage') {
          pending = [];
        }
      }
    });
  }

  message(_pattern, channel, payload) {
    if (channel === RoomTraffic.MARK) {
      this.marked = Math.max(this.marked, Number(payload));
      return;
    }
    let type;
    try {
      type = JSON.parse(payload).frame?.type;
    } catch {
      type = undefined;
    }
    if (type === 'message') this.chat += 1;
    else this.other += 1;
  }

  async sync() {
    const mark = ++this.marks;
    const deadline = Date.now() + 15_000;
    // The first marker may go out before the subscription is in place: repeat it until it is seen.
    while (this.marked < mark) {
      if (this.exited !== undefined) throw new Error(`redis-cli PSUBSCRIBE exited (${this.exited}): ${this.stderr.slice(0, 300)}`);
      if (Date.now() > deadline) throw new Error(`the PSUBSCRIBE marker ${mark} did not come back: ${this.stderr.slice(0, 300)}`);
      await sh('docker', ['exec', this.redis, 'redis-cli', 'PUBLISH', RoomTraffic.MARK, String(mark)]);
      for (let i = 0; i < 10 && this.marked < mark; i += 1) await new Promise((r) => setTimeout(r, 50));
    }
    return { chat: this.chat, other: this.other };
  }

  /** The exec'd redis-cli outlives its docker client: its connection is closed in Redis first. */
  async stop() {
    if (!this.proc) return;
    const clients = await sh('docker', ['exec', this.redis, 'redis-cli', 'CLIENT', 'LIST', 'TYPE', 'pubsub']).catch(() => '');
    for (const line of clients.split('\n')) {
      // The hubs subscribe to channels by name; the only pattern subscriber is this one.
      const id = / psub=[1-9]/.test(line) && /\bid=(\d+)/.exec(line)?.[1];
      if (id) await sh('docker', ['exec', this.redis, 'redis-cli', 'CLIENT', 'KILL', 'ID', id]).catch(() => {});
    }
    this.proc.kill();
    this.proc = undefined;
  }
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
let traffic;
let sent = 0;
const sentBy = [];
// The steps build on each other: after the first failure, the rest are skipped rather than failed.
let failed;
const published = { total: 0, other: 0 };

before(async () => {
  redis = await containerOf('redis');
  hub1 = await containerOf('hub1');
  traffic = new RoomTraffic(redis, setting('HUB_REDIS_PREFIX'));
  traffic.start();
  await traffic.sync();
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
  try {
    if (session) await session.close();
  } finally {
    if (traffic) await traffic.stop();
  }
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
    const before = await traffic.sync();
    await step(session);
    const messages = sent - sentBefore;
    const after = await traffic.sync();
    const publishes = after.chat - before.chat;
    published.total += publishes;
    published.other += after.other - before.other;
    log(`${messages} chat message(s) sent, ${publishes} published in Redis (and ${after.other - before.other} other frame(s) on the room channels)`);
    // Every chat message goes to the other hub through exactly one PUBLISH: none lost, none doubled,
    // nothing re-published by the receiving hub.
    assert.equal(publishes, messages, `chat messages published in Redis during "${name}" vs chat messages sent`);
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

test('exactly one chat message published in Redis per chat message over the whole scenario', (t) => {
  if (failed) return t.skip(`after the failure of "${failed}"`);
  assert.ok(sent > 0, 'the scenario sent no chat message');
  log(`scenario total: ${sent} chat messages, ${published.total} published in Redis (and ${published.other} other frames on the room channels)`);
  assert.equal(published.total, sent);
});

// ---- the server API, with the key `make setup` keeps in .secrets/api.env ----------------------------

const apis = [
  { name: 'hub1', base: `http://127.0.0.1:${setting('HUB1_API_PORT')}` },
  { name: 'hub2', base: `http://127.0.0.1:${setting('HUB2_API_PORT')}` },
];

/** One API call: `body` (an object) makes it a POST; `key` undefined sends no Authorization. */
async function callApi(base, path, { key, body } = {}) {
  const headers = {};
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

/** The last message of a room's history (epoch, offset, contents), read through hub1's API. */
async function historyOf(room) {
  const r = await callApi(apis[0].base, `/api/rooms/${room}/history`, { key: apiKeys()[0] });
  assert.equal(r.status, 200, `GET /api/rooms/${room}/history: ${r.text.slice(0, 300)}`);
  return { epoch: r.json.epoch, offset: r.json.offset, contents: r.json.messages.map((m) => m.content) };
}

for (const hub of apis) {
  test(`${hub.name}'s API (${hub.base}): a missing, wrong or nearly right key gets 401 and nothing is published; /metrics needs no key`, async () => {
    const [key] = apiKeys();
    // The stack's key with its last character changed: the comparison is of the whole key.
    const nearly = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    const before = await historyOf('general');
    const trafficBefore = await traffic.sync();
    const sentTexts = [];
    for (const [what, k] of [
      ['no key', undefined],
      ['another random key', randomBytes(48).toString('base64url')],
      ['the key but its last character', nearly],
    ]) {
      const content = `API call with ${what} on ${hub.name} (${runId})`;
      sentTexts.push(content);
      const r = await callApi(hub.base, '/api/publish', { key: k, body: { room: 'general', content } });
      assert.equal(r.status, 401, `POST /api/publish with ${what}: ${r.text.slice(0, 200)}`);
      assert.equal(r.json?.error?.code, 'unauthorized', `error code with ${what}`);
      const q = await callApi(hub.base, '/api/hubs', { key: k });
      assert.equal(q.status, 401, `GET /api/hubs with ${what}`);
    }
    const after = await historyOf('general');
    assert.equal((await traffic.sync()).chat - trafficBefore.chat, 0, 'chat messages published in Redis after refused calls');
    assert.deepEqual([after.epoch, after.offset], [before.epoch, before.offset], 'general\'s history moved on after refused calls');
    assert.deepEqual(after.contents.filter((c) => sentTexts.includes(c)), [], 'refused messages in the history');
    const m = await callApi(hub.base, '/metrics');
    assert.equal(m.status, 200, 'GET /metrics without a key');
    assert.match(m.text, /^realtime_hub_connections \d+$/m, 'GET /metrics: realtime_hub_connections');
    log(`${hub.name}'s API: 401 for no key, a random key and a near miss; history unchanged at offset ${after.offset}; /metrics 200`);
  });
}

test('POST /api/publish with the key of .secrets/api.env, through each hub\'s API, reaches the pages on both hubs once, from the user it names, and answers {id, offset, epoch}', async (t) => {
  if (failed) return t.skip(`after the failure of "${failed}"`);
  const [key] = apiKeys();
  const answers = [];
  for (const hub of apis) {
    const text = `published through ${hub.name}'s API (${runId})`;
    const user = { id: `api-${runId}`, name: `API ${runId}` };
    const before = await traffic.sync();
    const r = await callApi(hub.base, '/api/publish', { key, body: { room: 'general', content: text, user } });
    assert.equal(r.status, 200, `POST ${hub.base}/api/publish: ${r.text.slice(0, 300)}`);
    assert.deepEqual(Object.keys(r.json).sort(), ['epoch', 'id', 'offset'], `the answer's fields: ${r.text}`);
    assert.ok(typeof r.json.id === 'string' && r.json.id.length > 0, `id: ${r.text}`);
    assert.ok(Number.isInteger(r.json.offset) && r.json.offset > 0, `offset: ${r.text}`);
    assert.ok(typeof r.json.epoch === 'string' && r.json.epoch.length > 0, `epoch: ${r.text}`);
    answers.push(r.json);
    for (const page of [session.page1, session.page2]) {
      await session.expectTop(page, text, { room: 'general', hub: hub.name, name: user.name });
    }
    assert.equal((await traffic.sync()).chat - before.chat, 1, `chat messages published in Redis for one publish through ${hub.name}'s API`);
    log(`${hub.name}'s API published ${JSON.stringify(r.json)}: on top of page1 (hub1) and page2 (hub2) from "${user.name}"`);
  }
  // Both in the one history of general, in order.
  assert.equal(answers[1].epoch, answers[0].epoch, 'the epoch of general changed between two publishes');
  assert.ok(answers[1].offset > answers[0].offset, `offsets ${answers[0].offset} then ${answers[1].offset}`);
  for (const page of [session.page1, session.page2]) {
    const texts = await session.feedTexts(page);
    for (const hub of apis) {
      const text = `published through ${hub.name}'s API (${runId})`;
      assert.equal(texts.filter((x) => x === text).length, 1, `"${text}" shown on ${page.rtName}`);
    }
  }
});

// The README's curl examples for the compose stack, run as a user would paste them, from the
// repository root. Their heading and their first ```sh block are the contract with README.md.
const README_HEADING = '#### The server API on the compose stack';

function readmeExamples() {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${README_HEADING}\n`);
  if (at < 0) throw new Error(`README.md has no "${README_HEADING}" section`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error(`no sh block under "${README_HEADING}"`);
  return block[1]
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    // The README shows the default ports.
    .map((l) =>
      l
        .replaceAll('127.0.0.1:8090', new URL(apis[0].base).host)
        .replaceAll('127.0.0.1:8091', new URL(apis[1].base).host),
    );
}

test('the README\'s curl examples against the compose stack run as written: publish, presence, history, rooms, hubs, metrics', async (t) => {
  if (process.env.HUB_API_KEYS) return t.skip('they read the key from .secrets/api.env, and HUB_API_KEYS is set instead');
  const commands = readmeExamples();
  const script = commands.map((c, i) => `${c}\nprintf '\\n--8<-- %d %d\\n' ${i} "$?"`).join('\n');
  const { stdout } = await run('bash', ['-c', script], { cwd: ROOT, timeout: 60_000, env: { ...process.env, LC_ALL: 'C' } });
  // Each command's output is what precedes its marker.
  const outputs = [];
  let rest = stdout;
  for (let i = 0; i < commands.length; i += 1) {
    const m = new RegExp(`\\n?--8<-- ${i} (\\d+)\\n`).exec(rest);
    assert.ok(m, `no end marker for: ${commands[i]}`);
    outputs.push({ command: commands[i], rc: Number(m[1]), out: rest.slice(0, m.index).trim() });
    rest = rest.slice(m.index + m[0].length);
  }
  const seen = new Set();
  let answer;
  for (const { command, rc, out } of outputs) {
    assert.equal(rc, 0, `exit status of: ${command}\n${out.slice(0, 300)}`);
    const [, path] = /https?:\/\/[^/\s'"]+(\/[^\s'"|]*)/.exec(command) ?? [];
    if (!path) continue;
    const json = () => {
      try {
        return JSON.parse(out);
      } catch {
        assert.fail(`not JSON from: ${command}\n${out.slice(0, 300)}`);
      }
    };
    log(`README: ${command.replace(/Bearer \$\w+/, 'Bearer $KEY')}\n  -> ${out.slice(0, 300)}`);
    if (path === '/api/publish') {
      answer = json();
      assert.deepEqual(Object.keys(answer).sort(), ['epoch', 'id', 'offset'], out);
      seen.add('publish');
    } else if (/^\/api\/rooms\/general\/presence$/.test(path)) {
      const p = json();
      assert.equal(p.room, 'general', out);
      assert.equal(p.count, p.members.length, out);
      if (!failed) {
        // The signed-in pages, on hub1 and hub2, are members of general.
        const members = p.members.map((m) => m.name);
        for (const page of ['page1', 'page2']) {
          assert.ok(members.includes(names()[page]), `${names()[page]} is not among the members: ${out}`);
        }
      }
      seen.add('presence');
    } else if (/^\/api\/rooms\/general\/history/.test(path)) {
      const h = json();
      assert.equal(h.room, 'general', out);
      assert.ok(answer, 'the README shows history before a publish');
      const last = h.messages.at(-1);
      assert.equal(last?.id, answer.id, `the history's last message is not the one the README published: ${out}`);
      assert.deepEqual([last.offset, last.epoch], [answer.offset, answer.epoch], out);
      seen.add('history');
    } else if (path === '/api/rooms') {
      assert.ok(json().rooms.some((r) => r.room === 'general' && r.users > 0), `general is not among the rooms: ${out}`);
      seen.add('rooms');
    } else if (path === '/api/hubs') {
      assert.deepEqual(json().hubs.map((h) => h.name).sort(), ['hub1', 'hub2'], out);
      seen.add('hubs');
    } else if (path === '/metrics') {
      assert.match(out, /^realtime_hub_\w+ \d/m, `no realtime_hub_ sample from: ${command}`);
      seen.add('metrics');
    }
  }
  assert.deepEqual([...seen].sort(), ['history', 'hubs', 'metrics', 'presence', 'publish', 'rooms'], 'what the README examples cover');
});
