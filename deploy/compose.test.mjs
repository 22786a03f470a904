// The compose stack in a real Docker engine, seen from a real browser: headless Chromium opens
// http://localhost:9081 (web1 → hub1) and http://localhost:9082 (web2 → hub2) and runs the shared
// cross-hub chat scenario of tests/browser/scenario.mjs; `docker stop` / `docker start` of hub1's
// container are its hub restart. Redis's own command statistics then show exactly one PUBLISH per
// chat message the pages sent, step by step.
//
// Expects a running stack (`make setup`); deploy/test-compose.sh does the whole round trip.
// Run:  node --test deploy/compose.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
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
const log = (m) => console.log(m);
let session;
let redis;
let hub1;
let sent = 0;
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
    log,
  });
  // Count what the pages send: every chat message goes through ChatSession.send.
  const send = session.send.bind(session);
  session.send = async (page, text) => {
    sent += 1;
    return send(page, text);
  };
  await session.open();
});

after(async () => {
  if (session) await session.close();
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

test('exactly one PUBLISH per chat message over the whole scenario', (t) => {
  if (failed) return t.skip(`after the failure of "${failed}"`);
  assert.ok(sent > 0, 'the scenario sent no chat message');
  log(`scenario total: ${sent} chat messages, ${published.total} PUBLISH calls`);
  assert.equal(published.total, sent);
});
