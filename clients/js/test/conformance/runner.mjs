// Owns: running one scenario of clients/conformance/scenarios.json — its servers (World), its steps
// (environment steps here, client steps through a driver: the SDK in Node or in Chromium), what
// was really published (the truth the checks compare against), and the checks themselves.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signToken } from '../harness/jwt.mjs';
import { sleep } from '../harness/net.mjs';
import { World } from '../harness/world.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
export const SCENARIOS_PATH = resolve(HERE, '../../../conformance/scenarios.json');

export function loadScenarios() {
  return JSON.parse(readFileSync(SCENARIOS_PATH, 'utf8'));
}

const tagOf = (content) => content.slice(0, content.lastIndexOf('-'));
const contents = (tag, count) => Array.from({ length: count }, (_, i) => `${tag}-${i}`);

/** What was published, as the hub acknowledged it (API answers, SDK acks). */
class Truth {
  constructor() {
    this.published = [];
  }

  add(rec) {
    this.published.push(rec);
  }

  /** Messages of `room` with one of `tags` that `client` should have received (not its own). */
  expectedBy(client, room, tags) {
    return this.published.filter((p) => p.room === room && tags.includes(tagOf(p.content)) && p.by !== client && p.ok);
  }
}

/**
 * Runs `scenario` with `driver` (see node-driver.mjs / browser-driver.mjs). Returns a summary
 * (per check, what it saw). Throws (an assertion error) at the first failed check.
 */
export async function runScenario(scenario, defaults, driver, { logDir, log = () => {} }) {
  const world = new World(scenario.setup, defaults.hub_env || {}, join(logDir, scenario.name));
  const truth = new Truth();
  const background = [];
  const summary = { scenario: scenario.name, checks: [] };
  const timeout = defaults.step_timeout_ms || 30000;
  const sign = (spec) => signToken(world.secret, { sub: spec.sub, ...(spec.name ? { name: spec.name } : {}) }, spec.ttl_ms ?? 60000);
  await driver.begin({ sign });
  try {
    await world.start();
    for (const [i, step] of scenario.steps.entries()) {
      const what = `step ${i + 1} of ${scenario.name}: ${JSON.stringify(step)}`;
      log(what);
      try {
        if (step.do) await doStep(step);
        else if (step.check) summary.checks.push(await check(step));
        else throw new Error('a step has "do" or "check"');
      } catch (err) {
        err.message = `${what}\n${err.message}`;
        throw err;
      }
    }
    return summary;
  } finally {
    await driver.end().catch(() => {});
    await Promise.allSettled(background);
    await world.stop();
  }

  async function apiStream(step) {
    const hub = world.hub(step.hub);
    const list = contents(step.tag, step.count);
    const concurrency = step.concurrency || 1;
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const content = list[next++];
        // The same idempotency key on a retry: a publish retried through an outage is stored once.
        const answer = await hub.publish(step.room, content, { key: `${scenario.name}:${content}` });
        truth.add({ room: step.room, content, by: 'api', ok: true, id: answer.id, offset: answer.offset, epoch: answer.epoch });
        if (step.interval_ms) await sleep(step.interval_ms);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  async function doStep(step) {
    switch (step.do) {
      case 'client': {
        const options = { ...(defaults.client_options || {}), ...(step.options || {}) };
        await driver.call('create', step.client, world.url(step.via), step.token || null, options);
        await driver.call('connect', step.client, timeout);
        return;
      }
      case 'subscribe': {
        const opts = {};
        if (step.history) opts.history = step.history;
        if (step.again) opts.again = true;
        if (step.since_from) {
          // A position another client kept (an app saving room.position across a page reload).
          const rep = await driver.call('report', step.since_from);
          opts.since = rep.rooms[step.room].position;
          assert.ok(opts.since, `${step.since_from} has a position in ${step.room}`);
        }
        return driver.call('subscribe', step.client, step.room, opts, timeout);
      }
      case 'publish':
        return driver.call('publish', step.client, step.room, contents(step.tag, step.count), step.interval_ms || 0);
      case 'settle': {
        const results = await driver.call('settled', step.client, timeout * 2);
        for (const r of results) {
          if (!truth.published.some((p) => p.by === step.client && p.content === r.content)) truth.add({ ...r, by: step.client });
        }
        return;
      }
      case 'unsubscribe':
        return driver.call('unsubscribe', step.client, step.room);
      case 'close':
        return driver.call('close', step.client);
      case 'token_service':
        return driver.call('setTokenFailing', step.client, !step.up);
      case 'wait_messages': {
        const want = step.tags ? truth.expectedBy(step.client, step.room, step.tags).map((p) => p.content) : [];
        const got = await driver.call('waitMessages', step.client, step.room, { contents: want, count: step.count || 0 }, timeout);
        if (!got.ok) {
          assert.fail(`${step.client} did not get the messages in ${step.room} within ${timeout} ms: has ${got.have}, missing e.g. ${JSON.stringify(got.missing)}`);
        }
        return;
      }
      case 'wait_state': {
        let since = 0;
        if (step.after_last) {
          const rep = await driver.call('report', step.client);
          const last = rep.states.filter((s) => s.state === step.after_last).pop();
          since = last ? last.at : 0;
        }
        return driver.call('waitState', step.client, step.state, { code: step.code, since }, timeout);
      }
      case 'wait_recovery':
        return driver.call('waitRecovery', step.client, step.room, step.match, timeout);
      case 'api_publish': {
        const run = apiStream(step);
        if (step.background) {
          background.push(run);
          run.catch(() => {}); // reported by wait_background
          return;
        }
        return run;
      }
      case 'wait_background': {
        const runs = background.splice(0);
        await Promise.all(runs);
        return;
      }
      case 'kill_hub':
        return world.killHub(step.hub, step.signal || 'SIGKILL');
      case 'restart_hub':
        return world.restartHub(step.hub);
      case 'kill_redis':
        return world.killRedis();
      case 'start_redis':
        return world.startRedis();
      case 'cut':
        world.proxy(step.proxy).cut();
        return;
      case 'proxy_down':
        world.proxy(step.proxy).down();
        return;
      case 'proxy_up':
        world.proxy(step.proxy).up();
        return;
      case 'stall':
        world.proxy(step.proxy).stall(step.direction || 'both');
        return;
      case 'sleep':
        return sleep(step.ms);
      default:
        throw new Error(`unknown step "${step.do}"`);
    }
  }

  async function check(step) {
    const rep = step.client ? await driver.call('report', step.client) : null;
    const room = step.room && rep ? rep.rooms[step.room] : null;
    switch (step.check) {
      case 'exactly_once':
      case 'at_most_once': {
        assert.ok(room, `${step.client} has no room ${step.room}`);
        const expected = truth.expectedBy(step.client, step.room, step.tags);
        const got = room.messages.filter((m) => step.tags.includes(tagOf(m.content)));
        inOrderOnce(room.messages, `${step.client} in ${step.room}`);
        const byContent = new Map(got.map((m) => [m.content, m]));
        const unexpected = got.filter((m) => !expected.some((p) => p.content === m.content));
        assert.deepEqual(unexpected.map((m) => m.content), [], `${step.client} received messages nobody published`);
        const missing = expected.filter((p) => !byContent.has(p.content));
        for (const p of expected) {
          const m = byContent.get(p.content);
          if (m && p.id) assert.equal(m.id, p.id, `${p.content}: received under another id than the hub acknowledged`);
        }
        if (step.check === 'exactly_once') {
          assert.deepEqual(missing.map((p) => p.content), [], `${step.client} is missing messages in ${step.room}`);
        }
        return { check: step.check, client: step.client, room: step.room, tags: step.tags, expected: expected.length, received: got.length, missing: missing.length };
      }
      case 'first_messages': {
        const first = room.messages.slice(0, step.contents.length);
        assert.deepEqual(first.map((m) => m.content), step.contents);
        if (step.replayed) assert.ok(first.every((m) => m.replayed), 'the history join marks them replayed');
        return { check: step.check, client: step.client, ok: true };
      }
      case 'none_received': {
        const got = room.messages.filter((m) => step.tags.includes(tagOf(m.content)));
        assert.deepEqual(got.map((m) => m.content), [], `${step.client} received what it must not: ${JSON.stringify(room.messages.map((m) => [m.offset, m.content, m.replayed]))} ${JSON.stringify(room.recoveries)}`);
        return { check: step.check, client: step.client, ok: true };
      }
      case 'publishes': {
        const mine = rep.publishes;
        if (step.acked === 'all') {
          const bad = mine.filter((p) => !p.ok || typeof p.id !== 'string' || !Number.isSafeInteger(p.offset));
          assert.deepEqual(bad, [], `${step.client}: publishes not acknowledged with an id and offset`);
        }
        if (step.rejected) {
          const rejected = mine.filter((p) => p.settled && !p.ok && p.code === step.rejected.code);
          assert.equal(rejected.length, step.rejected.count, `${step.client}: ${step.rejected.code} rejections (${JSON.stringify(mine)})`);
          if ('maybe_stored' in step.rejected) {
            assert.ok(rejected.every((p) => p.maybeStored === step.rejected.maybe_stored), 'maybeStored as expected');
          }
        }
        return { check: step.check, client: step.client, publishes: mine.length, acked: mine.filter((p) => p.ok).length };
      }
      case 'stored_once': {
        const history = await world.hub(step.hub).history(step.room);
        const stored = history.messages.filter((m) => step.tags.includes(tagOf(m.content)));
        const counts = new Map();
        for (const m of stored) counts.set(m.content, (counts.get(m.content) || 0) + 1);
        const twice = [...counts].filter(([, n]) => n > 1).map(([c]) => c);
        assert.deepEqual(twice, [], `stored more than once in ${step.room}`);
        const acked = truth.published.filter((p) => p.room === step.room && p.ok && step.tags.includes(tagOf(p.content)));
        for (const p of acked) {
          const m = stored.find((s) => s.content === p.content);
          assert.ok(m, `${p.content} was acknowledged but is not in the history`);
          assert.equal(m.id, p.id, `${p.content}: the ack's id is the stored one`);
        }
        return { check: step.check, room: step.room, stored: stored.length, acked: acked.length };
      }
      case 'publish_order': {
        const history = await world.hub(step.hub).history(step.room);
        const stored = history.messages.filter((m) => step.tags.includes(tagOf(m.content))).map((m) => m.content);
        const published = truth.published.filter((p) => p.room === step.room && p.ok && step.tags.includes(tagOf(p.content))).map((p) => p.content);
        assert.deepEqual(stored, published, 'stored in the order they were published');
        return { check: step.check, room: step.room, stored: stored.length };
      }
      case 'recovery': {
        const events = room.recoveries;
        const fits = (e, m) => Object.entries(m).every(([k, v]) => e[k] === v);
        if (step.has) assert.ok(events.some((e) => fits(e, step.has)), `${step.client} had no recovery event like ${JSON.stringify(step.has)}: ${JSON.stringify(events)}`);
        if (step.lacks) assert.ok(!events.some((e) => fits(e, step.lacks)), `${step.client} had a recovery event like ${JSON.stringify(step.lacks)}: ${JSON.stringify(events)}`);
        return { check: step.check, client: step.client, events };
      }
      case 'states': {
        const states = rep.states;
        if (step.has) assert.ok(states.some((s) => s.state === step.has), `${step.client} was never ${step.has}`);
        if (step.lacks) assert.ok(!states.some((s) => s.state === step.lacks), `${step.client} was ${step.lacks}: ${JSON.stringify(states)}`);
        if (step.close_code) assert.ok(states.some((s) => s.code === step.close_code), `${step.client} never saw close code ${step.close_code}`);
        const drops = states.filter((s, i) => s.state === 'disconnected' && states[i - 1]?.state === 'connected').length;
        if (step.disconnections_at_least) assert.ok(drops >= step.disconnections_at_least, `${step.client} dropped ${drops} times`);
        return { check: step.check, client: step.client, drops, states: states.length };
      }
      case 'tokens':
        assert.ok(rep.tokens >= step.renewed_at_least, `${step.client} renewed its token ${rep.tokens} times`);
        return { check: step.check, client: step.client, renewed: rep.tokens };
      case 'presence': {
        // Presence is written to Redis a moment after a join (batched): ask until it shows.
        let answer;
        const deadline = Date.now() + timeout;
        do {
          answer = await driver.call('presence', step.client, step.room);
          if (answer.count >= step.count_at_least) break;
          await sleep(100);
        } while (Date.now() < deadline);
        assert.equal(answer.type, 'presence');
        assert.equal(answer.room, step.room);
        assert.ok(answer.count >= step.count_at_least, `presence count ${answer.count}: ${JSON.stringify(answer)}`);
        return { check: step.check, client: step.client, count: answer.count };
      }
      case 'publish_rejected': {
        const r = await driver.call('publishOnce', step.client, step.room, 'after-close-0');
        assert.equal(r.ok, false);
        assert.equal(r.code, step.code);
        return { check: step.check, client: step.client, code: r.code };
      }
      default:
        throw new Error(`unknown check "${step.check}"`);
    }
  }
}

/** No message id twice, and offsets strictly increasing within each epoch, in delivery order. */
function inOrderOnce(messages, who) {
  const ids = new Set();
  const last = new Map();
  for (const m of messages) {
    assert.ok(!ids.has(m.id), `${who}: message ${m.id} (${m.content}) delivered twice`);
    ids.add(m.id);
    if (typeof m.epoch === 'string' && Number.isSafeInteger(m.offset)) {
      const before = last.get(m.epoch);
      assert.ok(before === undefined || m.offset > before, `${who}: offset ${m.offset} (${m.content}) after ${before} in epoch ${m.epoch}`);
      last.set(m.epoch, m.offset);
    }
  }
}
