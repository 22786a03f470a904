// The local topology as real processes on free loopback ports: two hub-servers bridged through the
// redis-server that run.sh started (REDIS_URL), and two hub-client-web servers, each paired with one hub
// (plus any extra web servers a test asks for, e.g. one signing with another secret).
// Every child is killed when the stack stops, and on any exit of this node process.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(130));
}

/**
 * Sends one command to Redis (RESP over a plain socket: no client library for a test helper) and
 * resolves to its reply line, e.g. ':2' for a DEL of two keys. `url` is redis://[:password@]host:port.
 */
export function redisCommand(url, ...args) {
  const u = new URL(url);
  const encode = (parts) =>
    `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(String(p))}\r\n${p}\r\n`).join('')}`;
  let wire = '';
  let replies = 1;
  if (u.password) {
    const auth = u.username ? ['AUTH', decodeURIComponent(u.username), decodeURIComponent(u.password)] : ['AUTH', decodeURIComponent(u.password)];
    wire += encode(auth);
    replies += 1;
  }
  wire += encode(args);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port) || 6379, u.hostname);
    let got = '';
    sock.setTimeout(5000, () => sock.destroy(new Error(`redis ${args[0]}: no answer`)));
    sock.on('error', reject);
    sock.on('data', (d) => {
      got += d;
      const lines = got.split('\r\n');
      if (lines.length > replies) {
        sock.end();
        const reply = lines[replies - 1];
        if (reply.startsWith('-')) reject(new Error(`redis ${args[0]}: ${reply}`));
        else resolve(reply);
      }
    });
    sock.write(wire);
  });
}

/**
 * What run.sh tells every test file, with the defaults for a run by hand: the built binaries
 * (BIN_DIR), the Redis it started (REDIS_URL), where screenshots go (SCREENSHOT_DIR, and `sub`
 * under it when given) and where process logs go (LOG_DIR).
 */
export function testEnv(sub = '') {
  const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
  const shots = process.env.SCREENSHOT_DIR || join(root, 'target', 'browser-screenshots');
  return {
    root,
    binDir: process.env.BIN_DIR || join(root, 'target', 'debug'),
    redisUrl: process.env.REDIS_URL,
    screenshotDir: sub ? join(shots, sub) : shots,
    logDir: process.env.LOG_DIR || join(root, 'target', 'browser-test-logs'),
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One child process with its log in a file; stop() kills it and waits for the exit. */
class Proc {
  constructor(name, bin, args, env, logDir, logName = name) {
    Object.assign(this, { name, bin, args, env, logDir });
    this.logFile = join(logDir, `${logName}.log`);
  }

  start() {
    const log = createWriteStream(this.logFile, { flags: 'a' });
    log.write(`---- start ${new Date().toISOString()} ${this.bin} ${this.args.join(' ')}\n`);
    this.child = spawn(this.bin, this.args, {
      env: { ...process.env, ...this.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout.pipe(log, { end: false });
    this.child.stderr.pipe(log, { end: false });
    children.add(this.child);
    const child = this.child;
    // 'close', not 'exit': output may still be in flight when the process has exited.
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        children.delete(child);
        log.end(`---- exit code=${code} signal=${signal}\n`);
        resolve({ code, signal });
      });
    });
  }

  running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal = 'SIGTERM') {
    if (!this.running()) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  tail(lines = 30) {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

async function waitHealthy(proc, url, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!proc.running()) throw new Error(`${proc.name} exited during start-up:\n${proc.tail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
      last = `${res.status} ${await res.text()}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name}: ${url} not healthy within ${timeoutMs} ms (last: ${last})\n${proc.tail()}`);
}

/**
 * Starts hub1, hub2, web1 (→ hub1), web2 (→ hub2). Options: binDir (hub-server, hub-client-web),
 * redisUrl, logDir, hubEnv (extra environment for both hubs), webEnv (for every web server),
 * extraWebs ([{ name, hub: 'hub1' | 'hub2', env }]: more web servers, each let in by its hub),
 * logPrefix (prepended to log file names, so two stacks can share a log directory), hubEnvs
 * ({ hub1: {…}, hub2: {…} }: environment for one hub only, e.g. its API listener). Every web
 * server also gets WEB_HUB_PORT, its hub's port, for pages that derive the hub's address from their
 * own (with HUB_URL empty).
 */
export async function startStack({
  binDir, redisUrl, logDir, hubEnv = {}, webEnv = {}, extraWebs = [], logPrefix = '', hubEnvs = {},
}) {
  mkdirSync(logDir, { recursive: true });
  const [hub1Port, hub2Port, web1Port, web2Port, ...extraPorts] = await Promise.all(
    Array.from({ length: 4 + extraWebs.length }, () => freePort()),
  );
  const hubPorts = { hub1: hub1Port, hub2: hub2Port };
  const webs = [
    { name: 'web1', hub: 'hub1', port: web1Port, env: {} },
    { name: 'web2', hub: 'hub2', port: web2Port, env: {} },
    ...extraWebs.map((w, i) => ({ ...w, env: w.env || {}, port: extraPorts[i] })),
  ];
  const origins = (port) => `http://127.0.0.1:${port},http://localhost:${port}`;
  const hub = (name, port) =>
    new Proc(name, join(binDir, 'hub-server'), [], {
      HUB_NAME: name,
      HUB_LISTEN: `127.0.0.1:${port}`,
      REDIS_URL: redisUrl,
      // Each hub lets in the pages of its own web servers, by both names a browser may use for them.
      HUB_ALLOWED_ORIGINS: webs.filter((w) => w.hub === name).map((w) => origins(w.port)).join(','),
      RUST_LOG: process.env.RUST_LOG || 'info',
      ...hubEnv,
      ...(hubEnvs[name] || {}),
    }, logDir, `${logPrefix}${name}`);
  const web = ({ name, hub: hubName, port, env }) =>
    new Proc(name, join(binDir, 'hub-client-web'), [], {
      WEB_LISTEN: `127.0.0.1:${port}`,
      HUB_URL: `ws://127.0.0.1:${hubPorts[hubName]}/ws`,
      WEB_HUB_PORT: String(hubPorts[hubName]),
      WEB_TITLE: `realtime-hub chat (${name})`,
      WEB_HUB_LABEL: hubName,
      RUST_LOG: process.env.RUST_LOG || 'info',
      ...webEnv,
      ...env,
    }, logDir, `${logPrefix}${name}`);

  const names = ['hub1', 'hub2', ...webs.map((w) => w.name)];
  const stack = {
    hub1: hub('hub1', hub1Port),
    hub2: hub('hub2', hub2Port),
    page1Url: `http://127.0.0.1:${web1Port}/`,
    page2Url: `http://127.0.0.1:${web2Port}/`,
    /** The page URL of any web server by name (web1, web2, or an extra one). */
    pageUrl: (name) => `http://127.0.0.1:${webs.find((w) => w.name === name).port}/`,
    hubHealth: (port) => `http://127.0.0.1:${port}/health`,
    ports: { hub1Port, hub2Port, web1Port, web2Port },
    async startHub1() {
      stack.hub1.start();
      await waitHealthy(stack.hub1, stack.hubHealth(hub1Port));
    },
    // A crash, not a polite shutdown: the compose test covers SIGTERM through `docker stop`.
    async stopHub1() {
      await stack.hub1.stop('SIGKILL');
    },
    async stop() {
      await Promise.all(names.map((n) => stack[n].stop()));
    },
    tails() {
      return names.map((n) => `==== ${n} (${stack[n].logFile})\n${stack[n].tail(20)}`).join('\n');
    },
    /**
     * Appends chat messages to a room's history in Redis with the hubs' own append script, but
     * publishes them where no hub listens: stored, with their offsets, yet never delivered live —
     * what a hub that shed messages it could not take leaves its pages with.
     */
    async appendUnseen(room, contents) {
      const prefix = hubEnv.HUB_REDIS_PREFIX || 'rthub:';
      const source = readFileSync(new URL('../../hub-server/src/history/scripts.rs', import.meta.url), 'utf8');
      const script = source.match(/pub const APPEND: &str = r#"\n([\s\S]*?)\n"#;/)?.[1];
      if (!script) throw new Error('APPEND not found in hub-server/src/history/scripts.rs');
      const origin = randomUUID();
      let seq = 0;
      for (const content of contents) {
        seq += 1;
        const id = randomUUID();
        const frame = JSON.stringify({
          type: 'message', id, room, from: 'elsewhere', user: { id: 'elsewhere' }, content,
          timestamp: new Date().toISOString(), hub: 'elsewhere',
        });
        const head = `{"v":1,"origin":"${origin}","seq":${seq},"n":${seq},"local":true,"id":"${id}",`;
        await redisCommand(redisUrl, 'EVAL', script, '2', `${prefix}history:{${room}}`, `${prefix}meta:{${room}}`,
          frame, '99', '106', '675000', '37500', String(Date.now()), `${prefix}nowhere`, head, 'deadbeef', origin,
          String(seq));
      }
    },
    /** Deletes a room's history in Redis (list and meta), as a Redis restarted empty would. */
    async forgetRoomHistory(room) {
      const prefix = hubEnv.HUB_REDIS_PREFIX || 'rthub:';
      return redisCommand(redisUrl, 'DEL', `${prefix}history:{${room}}`, `${prefix}meta:{${room}}`);
    },
    /** Runs `<bin> healthcheck` with the given environment; returns its exit status. */
    healthcheck(binName, env) {
      const r = spawnSync(join(binDir, binName), ['healthcheck'], { env: { ...process.env, ...env }, timeout: 10_000 });
      return r.status;
    },
  };
  for (const w of webs) stack[w.name] = web(w);
  try {
    for (const n of names) stack[n].start();
    // Hubs answer 200 on /health only once their Redis bridge is up.
    await Promise.all([
      waitHealthy(stack.hub1, stack.hubHealth(hub1Port)),
      waitHealthy(stack.hub2, stack.hubHealth(hub2Port)),
      ...webs.map((w) => waitHealthy(stack[w.name], `http://127.0.0.1:${w.port}/health`)),
    ]);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}
