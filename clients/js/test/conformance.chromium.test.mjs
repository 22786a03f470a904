// The conformance scenarios (clients/conformance/scenarios.json) run by the JS SDK inside headless
// Chromium, against real hub-server processes and a real redis-server: the same agent, the same
// checks as in Node; only the WebSocket and the event loop are the browser's. SCENARIO=name[,name…]
// runs those only.

import { after, before, test } from 'node:test';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkHubBinary } from './harness/hub.mjs';
import { loadScenarios, runScenario } from './conformance/runner.mjs';
import { chromiumSession } from './conformance/browser-driver.mjs';

const LOGS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../target/sdk-test-logs/chromium');
const { defaults, scenarios } = loadScenarios();
const only = process.env.SCENARIO;

checkHubBinary();
let session;
before(async () => {
  session = await chromiumSession();
});
after(async () => {
  await session?.close();
});

for (const scenario of scenarios.filter((s) => !only || only.split(',').includes(s.name))) {
  test(`chromium: ${scenario.name} — ${scenario.title}`, async (t) => {
    const summary = await runScenario(scenario, defaults, session.driver(), {
      logDir: LOGS,
      log: (line) => (process.env.VERBOSE ? t.diagnostic(line) : undefined),
    });
    for (const c of summary.checks) t.diagnostic(JSON.stringify(c));
  });
}
