// The local topology as real processes on free loopback ports: two hub-servers bridged through the
// redis-server that run.sh started (REDIS_URL), and two hub-client-web servers, each paired with one hub.
// Every child is killed when the stack stops, and on any exit of this node process.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(130));
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
  constructor(name, bin, args, env, logDir) {
    Object.assign(this, { name, bin, args, env, logDir });
    this.logFile = join(logDir, `${name}.log`);
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
 * redisUrl, logDir, webEnv (extra environment for both web servers).
 */
export async function startStack({ binDir, redisUrl, logDir, webEnv = {} }) {
  mkdirSync(logDir, { recursive: true });
  const [hub1Port, hub2Port, web1Port, web2Port] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const origins = (port) => `http://127.0.0.1:${port},http://localhost:${port}`;
  const hub = (name, port, webPort) =>
    new Proc(name, join(binDir, 'hub-server'), [], {
      HUB_NAME: name,
      HUB_LISTEN: `127.0.0.1:${port}`,
      REDIS_URL: redisUrl,
      // Each hub lets in the page of its own web server, by both names a browser may use for it.
      HUB_ALLOWED_ORIGINS: origins(webPort),
      RUST_LOG: process.env.RUST_LOG || 'info',
    }, logDir);
  const web = (name, port, hubPort) =>
    new Proc(name, join(binDir, 'hub-client-web'), [], {
      WEB_LISTEN: `127.0.0.1:${port}`,
      HUB_URL: `ws://127.0.0.1:${hubPort}/ws`,
      WEB_TITLE: `realtime-hub chat (${name})`,
      WEB_HUB_LABEL: name === 'web1' ? 'hub1' : 'hub2',
      RUST_LOG: process.env.RUST_LOG || 'info',
      ...webEnv,
    }, logDir);

  const stack = {
    hub1: hub('hub1', hub1Port, web1Port),
    hub2: hub('hub2', hub2Port, web2Port),
    web1: web('web1', web1Port, hub1Port),
    web2: web('web2', web2Port, hub2Port),
    page1Url: `http://127.0.0.1:${web1Port}/`,
    page2Url: `http://127.0.0.1:${web2Port}/`,
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
      await Promise.all(['web1', 'web2', 'hub1', 'hub2'].map((n) => stack[n].stop()));
    },
    tails() {
      return ['hub1', 'hub2', 'web1', 'web2'].map((n) => `==== ${n} (${stack[n].logFile})\n${stack[n].tail(20)}`).join('\n');
    },
    /** Runs `<bin> healthcheck` with the given environment; returns its exit status. */
    healthcheck(binName, env) {
      const r = spawnSync(join(binDir, binName), ['healthcheck'], { env: { ...process.env, ...env }, timeout: 10_000 });
      return r.status;
    },
  };
  try {
    stack.hub1.start();
    stack.hub2.start();
    stack.web1.start();
    stack.web2.start();
    // Hubs answer 200 on /health only once their Redis bridge is up.
    await Promise.all([
      waitHealthy(stack.hub1, stack.hubHealth(hub1Port)),
      waitHealthy(stack.hub2, stack.hubHealth(hub2Port)),
      waitHealthy(stack.web1, `http://127.0.0.1:${web1Port}/health`),
      waitHealthy(stack.web2, `http://127.0.0.1:${web2Port}/health`),
    ]);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}
