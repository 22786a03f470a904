// Owns: the servers of one scenario — a Redis behind a proxy (so a restarted Redis can come back on
// another port), the hubs, and a proxy per hub plus the scenario's extra ones (clients always
// connect through a proxy, so a restarted hub is reached again and a connection can be broken).

import { randomBytes } from 'node:crypto';
import { HubProcess } from './hub.mjs';
import { RedisServer } from './redis.mjs';
import { TcpProxy } from './proxy.mjs';

export class World {
  /**
   * @param {object} setup a scenario's `setup` (clients/conformance/README.md)
   * @param {object} defaultEnv env given to every hub (the scenarios' defaults.hub_env)
   * @param {string} logDir
   */
  constructor(setup, defaultEnv, logDir) {
    this.setup = setup;
    this.logDir = logDir;
    this.secret = randomBytes(32).toString('hex');
    this.hubEnv = { ...defaultEnv, ...(setup.hub_env || {}) };
    if (setup.auth === 'jwt') Object.assign(this.hubEnv, { HUB_AUTH_MODE: 'jwt', HUB_JWT_SECRETS: this.secret });
    this.redis = null;
    this.redisProxy = null;
    this.hubs = new Map();
    this.proxies = new Map(); // name → {proxy, hub}
  }

  async start() {
    if (this.setup.redis) {
      this.redis = new RedisServer({ logDir: this.logDir });
      await this.redis.start();
      this.redisProxy = new TcpProxy('redis');
      await this.redisProxy.listen(this.redis.port);
    }
    const redisUrl = this.redisProxy ? `redis://127.0.0.1:${this.redisProxy.port}` : undefined;
    const names = this.setup.hubs || ['h1'];
    await Promise.all(
      names.map(async (name) => {
        const hub = new HubProcess({ name, logDir: this.logDir, redisUrl, env: this.hubEnv });
        this.hubs.set(name, hub);
        await hub.start();
      }),
    );
    const proxies = { ...Object.fromEntries(names.map((n) => [n, n])), ...(this.setup.proxies || {}) };
    for (const [name, hubName] of Object.entries(proxies)) {
      const hub = this.hub(hubName);
      const proxy = new TcpProxy(name);
      await proxy.listen(hub.port);
      this.proxies.set(name, { proxy, hub: hubName });
    }
  }

  hub(name) {
    const hub = this.hubs.get(name);
    if (!hub) throw new Error(`no hub ${name} in this scenario`);
    return hub;
  }

  proxy(name) {
    const p = this.proxies.get(name);
    if (!p) throw new Error(`no proxy ${name} in this scenario`);
    return p.proxy;
  }

  /** The WebSocket URL a client uses to reach the hub behind proxy `via`. */
  url(via) {
    return `ws://127.0.0.1:${this.proxy(via).port}/ws`;
  }

  async killHub(name, signal = 'SIGKILL') {
    await this.hub(name).kill(signal);
  }

  /** A new process for hub `name` (new port, new instance id); its proxies point at it. */
  async restartHub(name) {
    const hub = this.hub(name);
    await hub.kill('SIGKILL');
    await hub.start();
    for (const { proxy, hub: hubName } of this.proxies.values()) if (hubName === name) proxy.retarget(hub.port);
  }

  async killRedis() {
    await this.redis.kill();
  }

  /** A fresh, empty Redis; the hubs reach it through the same proxy, and are waited for. */
  async startRedis() {
    await this.redis.start();
    this.redisProxy.retarget(this.redis.port);
    await Promise.all([...this.hubs.values()].filter((h) => h.proc?.child.exitCode === null).map((h) => h.waitReady()));
  }

  async stop() {
    await Promise.all([...this.hubs.values()].map((h) => h.kill('SIGTERM')));
    for (const { proxy } of this.proxies.values()) await proxy.close();
    if (this.redisProxy) await this.redisProxy.close();
    if (this.redis) await this.redis.kill();
  }
}
