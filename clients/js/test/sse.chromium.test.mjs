// The SSE fallback in a real browser (headless Chromium, its own EventSource and fetch): the
// page's WebSocket is replaced by one that always fails, as behind a proxy that breaks WebSocket.
// Two page clients, one per hub, chat over SSE across both hubs through Redis; one hub is killed
// and restarted, and its client comes back (trying WebSocket first, then SSE) and recovers what
// was said meanwhile, each message once and in order.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './harness/chromium.mjs';
import { checkHubBinary } from './harness/hub.mjs';
import { World } from './harness/world.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SDK = resolve(HERE, '../src');
const LOGS = resolve(HERE, '../../../target/sdk-test-logs/sse-chromium');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>SSE fallback</title></head>
<body>
<script type="module">
  import { HubClient } from '/sdk/index.js';
  // WebSocket blocked: every attempt fails before it opens.
  window.wsTries = 0;
  window.WebSocket = class Blocked {
    constructor() {
      window.wsTries += 1;
      this.readyState = 0;
      setTimeout(() => { this.readyState = 3; this.onclose?.({ code: 1006, reason: '' }); }, 5);
    }
    send() { throw new Error('blocked'); }
    close() {}
  };
  window.HubClient = HubClient;
  window.ready = true;
</script>
</body></html>`;

/** Serves the page and the SDK's own files (unbundled) on a loopback origin the hub allows. */
async function serve() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    const rel = path.startsWith('/sdk/') ? normalize(path.slice(5)) : '';
    if (!rel || rel.startsWith('..') || !rel.endsWith('.js')) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(SDK, rel));
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

test('chromium: WebSocket blocked → SSE across two hubs, recovery after a hub restart', async () => {
  checkHubBinary();
  const world = new World({ redis: true, hubs: ['h1', 'h2'] }, {}, LOGS);
  const server = await serve();
  let browser = null;
  try {
    await world.start();
    browser = await launchChromium();
    const page = await browser.context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => window.ready === true);
    const room = `sse-${randomBytes(4).toString('hex')}`;
    const started = await page.evaluate(
      async ({ u1, u2, room }) => {
        window.got = { a: [], b: [] };
        window.a = new HubClient(u1, { reconnectDelayMax: 1000 });
        window.b = new HubClient(u2, { reconnectDelayMax: 1000 });
        window.ra = a.subscribe(room);
        window.rb = b.subscribe(room);
        ra.on('message', (m) => got.a.push(m.content));
        rb.on('message', (m) => got.b.push(m.content));
        await Promise.all([a.connect(), b.connect()]);
        return { a: a.connection.transport, b: b.connection.transport, tries: wsTries, es: typeof EventSource };
      },
      { u1: world.url('h1'), u2: world.url('h2'), room },
    );
    assert.deepEqual(started, { a: 'sse', b: 'sse', tries: 2, es: 'function' });

    // Both rooms joined before the first messages: one published while the other client's join
    // is still on its way is before that client's place in the room, not a message for it.
    await page.waitForFunction(() => ra.joined && rb.joined, null, { timeout: 10000 });
    await page.evaluate(() => Promise.all([ra.publish('a-1'), rb.publish('b-1')]));
    await page.waitForFunction(() => got.a.includes('b-1') && got.b.includes('a-1'), null, { timeout: 10000 });

    await world.killHub('h1');
    await page.waitForFunction(() => a.state !== 'connected', null, { timeout: 10000 });
    await page.evaluate(async () => {
      await rb.publish('b-2');
      await rb.publish('b-3');
    });
    await world.restartHub('h1');
    await page.waitForFunction(() => a.state === 'connected' && got.a.includes('b-3'), null, { timeout: 20000 });
    const after = await page.evaluate(() => ({ transport: a.connection.transport, tries: wsTries }));
    assert.equal(after.transport, 'sse');
    assert.ok(after.tries >= 3, `WebSocket tried again on the reconnect (${after.tries} tries in all)`);

    await page.evaluate(() => ra.publish('a-2'));
    await page.evaluate(() => rb.publish('marker'));
    await page.waitForFunction(() => got.a.includes('marker') && got.b.includes('a-2'), null, { timeout: 10000 });
    const got = await page.evaluate(() => got);
    assert.deepEqual(
      got.a.filter((c) => c.startsWith('b-') || c === 'marker'),
      ['b-1', 'b-2', 'b-3', 'marker'],
    );
    assert.deepEqual(got.b.filter((c) => c.startsWith('a-')), ['a-1', 'a-2']);
    await page.evaluate(() => {
      a.close();
      b.close();
    });
    assert.deepEqual(errors, []);
  } finally {
    if (browser) await browser.close();
    await new Promise((r) => server.close(r));
    await world.stop();
  }
});
