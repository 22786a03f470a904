// Real-browser test of the chat page against real processes: the redis-server run.sh started
// (REDIS_URL), two hub-servers and two hub-client-web servers on free ports, headless Debian Chromium.
// Run it through tests/browser/run.sh (`make test` does), which builds the binaries and starts Redis.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ChatSession, HISTORY_STEPS, STEPS } from './scenario.mjs';
import { startStack, testEnv } from './stack.mjs';
import { stepTests } from './steps.mjs';

const { binDir: BIN_DIR, redisUrl: REDIS_URL, screenshotDir: SCREENSHOT_DIR, logDir: LOG_DIR } =
  testEnv();
const STEP_TIMEOUT_MS = 90_000;

const log = (msg) => console.log(`  [browser] ${msg}`);

describe('chat page: two pages on two web servers chat across two hubs bridged by Redis', () => {
  let stack;
  let session;

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    stack = await startStack({
      binDir: BIN_DIR,
      redisUrl: REDIS_URL,
      logDir: LOG_DIR,
      // A short cap keeps the hub-restart step quick; the compose test runs with the 10 s default.
      webEnv: { WEB_RECONNECT_MAX: '2s' },
    });
    log(`hub1 :${stack.ports.hub1Port}  hub2 :${stack.ports.hub2Port}  ` +
      `web1 ${stack.page1Url}  web2 ${stack.page2Url}  logs ${LOG_DIR}`);
    session = new ChatSession({
      page1Url: stack.page1Url,
      page2Url: stack.page2Url,
      stopHub1: () => stack.stopHub1(),
      startHub1: () => stack.startHub1(),
      forgetRoomHistory: (room) => stack.forgetRoomHistory(room),
      appendUnseen: (room, contents) => stack.appendUnseen(room, contents),
      screenshotDir: SCREENSHOT_DIR,
      log,
    });
    await session.open();
  });

  it('hub-client-web healthcheck exits 0 while its server runs, 1 when nothing listens', () => {
    const { web1Port } = stack.ports;
    assert.equal(stack.healthcheck('hub-client-web', { WEB_LISTEN: `127.0.0.1:${web1Port}` }), 0);
    // Port 9 (discard) has no listener on a test machine: the check must fail, not hang.
    assert.equal(stack.healthcheck('hub-client-web', { WEB_LISTEN: '127.0.0.1:9' }), 1);
  });

  // The history steps run after the chat steps, in the same session (the hubs keep history: the
  // default HUB_HISTORY_SIZE=100).
  stepTests([...STEPS, ...HISTORY_STEPS], {
    session: () => session,
    stack: () => stack,
    timeoutMs: STEP_TIMEOUT_MS,
    tag: 'browser',
    firstFailed: 'the pages never connected',
  });
});
