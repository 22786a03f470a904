// Owns: running the conformance agent inside headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): a loopback HTTP server serves the SDK's own files (clients/js/src,
// unbundled, as a browser app would load them) and agent.js to one page; each driver call is a
// call into that page. Tokens are signed by the test (exposed to the page as a function).

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../harness/chromium.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SDK = resolve(HERE, '../../src');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>realtime-hub-client conformance</title></head>
<body>
<script type="module">
  import { HubClient } from '/sdk/index.js';
  import { createAgent } from '/agent.js';
  window.agent = createAgent({ HubClient, WebSocket: window.WebSocket, sign: (spec) => window.hubSign(spec) });
  window.agentReady = true;
</script>
</body></html>`;

/** Serves the page, /sdk/* from clients/js/src and /agent.js, on 127.0.0.1 (a loopback origin the hub allows). */
async function serve() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    let file = null;
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return;
    }
    if (path === '/agent.js') file = join(HERE, 'agent.js');
    else if (path.startsWith('/sdk/')) {
      const rel = normalize(path.slice('/sdk/'.length));
      if (!rel.startsWith('..') && rel.endsWith('.js')) file = join(SDK, rel);
    }
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/** One Chromium and one page server for a whole test file; a fresh page per scenario. */
export async function chromiumSession() {
  const server = await serve();
  const { context, close } = await launchChromium();
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    driver: () => browserDriver(context, origin),
    async close() {
      await close();
      await new Promise((r) => server.close(r));
    },
  };
}

function browserDriver(context, origin) {
  let page = null;
  const errors = [];
  return {
    env: 'chromium',
    async begin({ sign }) {
      page = await context.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      await page.exposeFunction('hubSign', (spec) => sign(spec));
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => window.agentReady === true);
    },
    async call(method, ...args) {
      const out = await page.evaluate(([m, a]) => window.agent[m](...a), [method, args]);
      if (errors.length) throw new Error(`the page threw: ${errors.join('; ')}`);
      return out;
    },
    async end() {
      if (!page) return;
      try {
        await page.evaluate(() => window.agent.closeAll());
      } finally {
        await page.close();
        page = null;
      }
    },
  };
}
