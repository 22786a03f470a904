// Real-browser test of sign-in against real processes: two hub-servers in jwt mode bridged by the
// redis-server run.sh started (REDIS_URL), web1 → hub1 and web2 → hub2 signing tokens with the hubs'
// secret, and web3 → hub1 signing with another secret (its tokens must be refused). Headless Debian
// Chromium signs in on each page and checks the names across the hubs, a reload, a refusal, a renewal,
// then who is in the room (presence) across the hubs, and a closed page leaving it.
// Run it through tests/browser/run.sh (`make test` does), which builds the binaries and starts Redis.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { AUTH_STEPS, ChatSession, PRESENCE_STEPS } from './scenario.mjs';
import { startStack, testEnv } from './stack.mjs';
import { stepTests } from './steps.mjs';

const { binDir: BIN_DIR, redisUrl: REDIS_URL, screenshotDir: SCREENSHOT_DIR, logDir: LOG_DIR } =
  testEnv('auth');
const STEP_TIMEOUT_MS = 60_000;
// Short enough that the renewal step sees a socket outlive its first token within seconds; long
// enough that the page's renewal at 80 % (6.4 s) lands well before exp + the hubs' 2 s leeway.
const TOKEN_TTL_MS = 8_000;

const log = (msg) => console.log(`  [browser/auth] ${msg}`);

describe('sign-in: names across two hubs in jwt mode, a refused token, a renewed one; who is here', () => {
  let stack;
  let session;

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    // Made for this run only: no secret lives in the repository.
    const secret = randomBytes(32).toString('base64url');
    const otherSecret = randomBytes(32).toString('base64url');
    stack = await startStack({
      binDir: BIN_DIR,
      redisUrl: REDIS_URL,
      logDir: LOG_DIR,
      logPrefix: 'auth-',
      hubEnv: {
        HUB_AUTH_MODE: 'jwt',
        HUB_JWT_SECRETS: secret,
        HUB_JWT_LEEWAY: '2s',
        // A closed page leaves the member lists 1 s later (default 5 s): the presence step stays short.
        HUB_PRESENCE_LEAVE_DELAY: '1s',
        // Apart from the anonymous test's channels, should both ever share a Redis.
        HUB_REDIS_PREFIX: 'rthub-auth:',
      },
      webEnv: { WEB_JWT_SECRET: secret, WEB_TOKEN_TTL: `${TOKEN_TTL_MS / 1000}s`, WEB_RECONNECT_MAX: '2s' },
      extraWebs: [{ name: 'web3', hub: 'hub1', env: { WEB_JWT_SECRET: otherSecret } }],
    });
    log(`hub1 :${stack.ports.hub1Port}  hub2 :${stack.ports.hub2Port}  ` +
      `web1 ${stack.page1Url}  web2 ${stack.page2Url}  web3 ${stack.pageUrl('web3')} (another secret)`);
    session = new ChatSession({
      page1Url: stack.page1Url,
      page2Url: stack.page2Url,
      page3Url: stack.pageUrl('web3'),
      autoSignIn: false,
      tokenTtlMs: TOKEN_TTL_MS,
      screenshotDir: SCREENSHOT_DIR,
      log,
    });
    await session.open();
  });

  stepTests([...AUTH_STEPS, ...PRESENCE_STEPS], {
    session: () => session,
    stack: () => stack,
    timeoutMs: STEP_TIMEOUT_MS,
    tag: 'browser/auth',
    firstFailed: 'the pages never signed in',
  });

  it('no secret and no token in any process log', () => {
    const secrets = [stack.hub1.env.HUB_JWT_SECRETS, stack.web3.env.WEB_JWT_SECRET];
    for (const name of ['hub1', 'hub2', 'web1', 'web2', 'web3']) {
      const text = readFileSync(stack[name].logFile, 'utf8');
      for (const s of secrets) assert.ok(!text.includes(s), `${name}'s log contains a JWT secret`);
      // A JWT's header always starts like this (base64url of '{"alg":"HS256"' / '{"typ":"JWT"').
      assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(text), `${name}'s log contains a token`);
    }
  });
});
