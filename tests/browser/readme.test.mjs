// The README's "Use it from your app" examples, run as written: the browser block in headless
// Chromium (a page holding it, its `/sdk/` modules fetched from a real hub-client-web), the Node block
// with node (the SDK and `ws` installed as the README says), the Rust block (which is
// hub-client/examples/readme.rs, built by run.sh), all against two real hubs bridged by
// the Redis run.sh started. Only the hubs' addresses change (the README names make run's ports, the
// test takes free ones). And the README's namespace example is docs/namespaces.example.toml as it is
// (hub-server's config tests load that file).
// Run it through tests/browser/run.sh (`make test` does), which builds the binaries and starts Redis.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './browser.mjs';
import { freePort, startStack, testEnv } from './stack.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const { binDir: BIN_DIR, redisUrl: REDIS_URL, logDir: LOG_DIR } = testEnv('readme');
const WAIT_MS = 20_000;
const log = (msg) => console.log(`  [browser/readme] ${msg}`);

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The body of the first ```lang block of the README section under `heading` (a whole line). */
function block(heading, lang) {
  const at = README.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README.md has no "${heading}" section`);
  const level = heading.match(/^#+/)[0].length;
  // The section ends at the next heading of its level or above, outside code blocks (a `# comment`
  // in a block is no heading).
  const section = [];
  let fenced = false;
  for (const line of README.slice(at + heading.length + 2).split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const h = !fenced && line.match(/^(#+) /);
    if (h && h[1].length <= level) break;
    section.push(line);
  }
  const m = section.join('\n').match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'));
  assert.ok(m, `no \`\`\`${lang} block under "${heading}"`);
  return m[1];
}

/** `text` with the README's hub address replaced, failing if the README no longer names it. */
function pointed(text, from, to) {
  assert.ok(text.includes(from), `the example no longer uses ${from}:\n${text}`);
  return text.replaceAll(from, to);
}

describe('README: "Use it from your app" runs as written, in Chromium, in Node and in Rust', () => {
  let stack;
  let browser;
  let closeBrowser;
  let server;
  let dir;

  before(async () => {
    assert.ok(REDIS_URL, 'REDIS_URL is not set: run this through tests/browser/run.sh');
    const sitePort = await freePort();
    const siteOrigin = `http://127.0.0.1:${sitePort}`;
    stack = await startStack({
      binDir: BIN_DIR,
      redisUrl: REDIS_URL,
      logDir: LOG_DIR,
      logPrefix: 'readme-',
      // The README's page is the app's own, on its own origin: the hubs must let it in.
      hubEnv: { HUB_REDIS_PREFIX: 'rthub-readme:', HUB_ALLOWED_ORIGINS: siteOrigin },
    });
    const html = pointed(block('## Use it from your app', 'html'), 'ws://localhost:8080/ws', `ws://127.0.0.1:${stack.ports.hub1Port}/ws`);
    // The app's server: its page is the README block; /sdk/ is hub-client-web's, fetched from web1.
    server = http.createServer(async (req, res) => {
      try {
        if (req.url === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(`<!doctype html><title>readme</title>\n${html}`);
        } else if (req.url.startsWith('/sdk/')) {
          const up = await fetch(new URL(req.url, stack.page1Url));
          res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'text/plain' });
          res.end(Buffer.from(await up.arrayBuffer()));
        } else {
          res.writeHead(404).end();
        }
      } catch (e) {
        res.writeHead(500).end(String(e));
      }
    });
    await new Promise((r) => server.listen(sitePort, '127.0.0.1', r));
    log(`hub1 :${stack.ports.hub1Port}  hub2 :${stack.ports.hub2Port}  app ${siteOrigin}  sdk from ${stack.page1Url}sdk/`);
    ({ context: browser, close: closeBrowser } = await launchChromium());
    browser.siteOrigin = siteOrigin;
  });

  after(async () => {
    try {
      await closeBrowser?.();
      server?.close();
    } finally {
      await stack?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the browser example publishes through hub1, Node through hub2, Rust through hub1: each gets the others\' messages once', { timeout: 60_000 }, async () => {
    const lines = [];
    const errors = [];
    const page = await browser.newPage();
    page.on('console', (m) => lines.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('requestfailed', (r) => errors.push(`${r.url()}: ${r.failure()?.errorText}`));
    await page.goto(`${browser.siteOrigin}/`);
    const until = async (what, pred) => {
      const end = Date.now() + WAIT_MS;
      while (!pred()) {
        assert.deepEqual(errors, [], `page errors while waiting for ${what}`);
        assert.ok(Date.now() < end, `${what} not logged within ${WAIT_MS} ms; console: ${JSON.stringify(lines)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await until('the browser\'s ack', () => lines.some((l) => /^stored at offset \d+$/.test(l)));
    const browserOffset = Number(lines.find((l) => l.startsWith('stored at offset')).split(' ').pop());

    // The Node example, installed as the README says: the SDK from clients/js, and ws.
    dir = mkdtempSync(join(tmpdir(), 'rthub-readme-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'clients/js'), join(dir, 'node_modules/realtime-hub-client'));
    symlinkSync(join(ROOT, 'tests/browser/node_modules/ws'), join(dir, 'node_modules/ws'));
    const code = pointed(block('## Use it from your app', 'js'), 'ws://localhost:8081/ws', `ws://127.0.0.1:${stack.ports.hub2Port}/ws`);
    writeFileSync(join(dir, 'example.mjs'), code);
    const child = spawn(process.execPath, ['example.mjs'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const status = await new Promise((r) => {
      const t = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
      child.on('exit', (c) => { clearTimeout(t); r(c); });
    });
    log(`node example printed:\n${out}`);
    assert.equal(status, 0, `node example exited ${status}: ${err}`);
    const nodeLines = out.trim().split('\n');
    // History: the browser's message, once; then its own ack, the next offset of the room.
    assert.equal(nodeLines.filter((l) => l.endsWith(': hello from the browser')).length, 1, out);
    assert.ok(!nodeLines.some((l) => l.endsWith(': hello from Node')), `own message delivered back: ${out}`);
    assert.ok(nodeLines.includes(`stored at offset ${browserOffset + 1}`), out);

    // The browser got Node's message live, across the hubs, once.
    await until('Node\'s message in the browser', () => lines.some((l) => l.endsWith(': hello from Node')));
    assert.equal(lines.filter((l) => l.endsWith(': hello from Node')).length, 1, JSON.stringify(lines));
    assert.ok(!lines.some((l) => l.endsWith(': hello from the browser')), `own message delivered back: ${JSON.stringify(lines)}`);
    assert.deepEqual(errors, []);

    // The Rust example, which is hub-client/examples/readme.rs (run.sh builds it), through hub1.
    const rust = block('## Use it from your app', 'rust');
    assert.equal(rust, readFileSync(join(ROOT, 'hub-client/examples/readme.rs'), 'utf8'),
      'the README\'s Rust block is hub-client/examples/readme.rs');
    pointed(rust, 'ws://localhost:8080/ws', '');
    const ran = spawnSync(join(BIN_DIR, 'examples/readme'), [], {
      env: { ...process.env, HUB_URL: `ws://127.0.0.1:${stack.ports.hub1Port}/ws` },
      encoding: 'utf8',
      timeout: WAIT_MS,
    });
    log(`rust example printed:\n${ran.stdout}`);
    assert.equal(ran.status, 0, `rust example: ${ran.error ?? ''} ${ran.stderr}`);
    const rustLines = ran.stdout.trim().split('\n');
    assert.equal(rustLines[0], `stored at offset Some(${browserOffset + 2})`, ran.stdout);
    // History: the two earlier messages, once each, in order; not its own.
    const seen = rustLines.slice(1).map((l) => l.replace(/^[^:]*: /, ''));
    assert.deepEqual(seen, ['hello from the browser', 'hello from Node'], ran.stdout);
    await until('Rust\'s message in the browser', () => lines.some((l) => l.endsWith(': hello from Rust')));
  });

  it('the README\'s namespace example is docs/namespaces.example.toml, which the config tests load', () => {
    const file = readFileSync(join(ROOT, 'docs/namespaces.example.toml'), 'utf8');
    assert.equal(block('### Namespaces, personal rooms and server-side subscriptions', 'toml'), file);
  });
});
