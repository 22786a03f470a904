// The conformance scenarios (clients/conformance/scenarios.json) run by the JS SDK in Node, against
// real hub-server processes and a real redis-server. SCENARIO=name[,name…] runs those only.

import { test } from 'node:test';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkHubBinary } from './harness/hub.mjs';
import { loadScenarios, runScenario } from './conformance/runner.mjs';
import { nodeDriver } from './conformance/node-driver.mjs';

const LOGS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../target/sdk-test-logs/node');
const { defaults, scenarios } = loadScenarios();
const only = process.env.SCENARIO;

checkHubBinary();

for (const scenario of scenarios.filter((s) => !only || only.split(',').includes(s.name))) {
  test(`node: ${scenario.name} — ${scenario.title}`, async (t) => {
    const summary = await runScenario(scenario, defaults, nodeDriver(), {
      logDir: LOGS,
      log: (line) => (process.env.VERBOSE ? t.diagnostic(line) : undefined),
    });
    for (const c of summary.checks) t.diagnostic(JSON.stringify(c));
  });
}
