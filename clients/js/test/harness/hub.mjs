// Owns: a real hub-server process for a test. It listens on port 0 (its API too) and the harness
// reads the ports it got from its JSON log lines, so no port is picked, released and rebound. Ready
// once GET /health answers 200 (bridge up, or standalone).

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './net.mjs';
import { start, stop } from './procs.mjs';

const REPO = resolve(fileURLToPath(import.meta.url), '../../../../..');
export const HUB_BIN = process.env.HUB_SERVER_BIN || join(REPO, 'target/debug/hub-server');
export const API_KEY = 'sdk-conformance-api-key-0123456789';

export function checkHubBinary() {
  if (!existsSync(HUB_BIN)) {
    throw new Error(`no hub-server binary at ${HUB_BIN}: build it first with "cargo build -p hub-server" (or set HUB_SERVER_BIN)`);
  }
}

export class HubProcess {
  /**
   * @param {{name: string, logDir: string, redisUrl?: string, env?: object}} config
   */
  constructor({ name, logDir, redisUrl, env = {} }) {
    this.name = name;
    this.logDir = logDir;
    this.redisUrl = redisUrl;
    this.env = env;
    this.proc = null;
    this.port = 0;
    this.apiPort = 0;
    this.instanceId = '';
    this.runs = 0;
  }

  async start() {
    checkHubBinary();
    this.runs += 1;
    const addrs = {};
    let listening;
    const heard = new Promise((r) => (listening = r));
    const env = {
      HUB_LISTEN: '127.0.0.1:0',
      HUB_API_LISTEN: '127.0.0.1:0',
      HUB_API_KEYS: API_KEY,
      HUB_NAME: this.name,
      HUB_LOG_FORMAT: 'json',
      RUST_LOG: 'info',
      ...(this.redisUrl ? { REDIS_URL: this.redisUrl } : {}),
      ...this.env,
    };
    this.proc = start(HUB_BIN, [], {
      env,
      logPath: join(this.logDir, `${this.name}.log`),
      onLine: (line) => {
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          return;
        }
        const f = entry.fields || {};
        if (f.message === 'hub listening') {
          // The hub's own clock (the same machine's): a busy test process reads the line late.
          this.listeningAt = Date.parse(entry.timestamp) || Date.now();
          addrs.ws = f.addr;
          addrs.instance = f.instance_id;
        }
        if (f.message === 'server API listening') addrs.api = f.addr;
        if (addrs.ws && addrs.api) listening();
      },
    });
    const outcome = await Promise.race([heard.then(() => 'ok'), this.proc.exited.then(() => 'exited'), new Promise((r) => setTimeout(r, 20000, 'slow').unref())]);
    if (outcome !== 'ok') {
      throw new Error(`hub ${this.name} did not start (${outcome}); see ${join(this.logDir, `${this.name}.log`)}`);
    }
    this.port = Number(addrs.ws.split(':').pop());
    this.apiPort = Number(addrs.api.split(':').pop());
    this.instanceId = addrs.instance;
    await this.waitReady();
    return this;
  }

  /** Waits until /health answers 200: the Redis bridge is up (or the hub is standalone). */
  async waitReady(timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.child.exitCode !== null) throw new Error(`hub ${this.name} exited; see its log in ${this.logDir}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/health`);
        if (res.status === 200) return;
      } catch {
        // not yet
      }
      await sleep(50);
    }
    throw new Error(`hub ${this.name} not ready within ${timeoutMs} ms`);
  }

  async kill(signal = 'SIGKILL') {
    await stop(this.proc, signal);
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  // ---- the server API ---------------------------------------------------------------------------

  async api(method, path, body = undefined) {
    const res = await fetch(`http://127.0.0.1:${this.apiPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: kept as text below
    }
    return { status: res.status, body: json ?? text };
  }

  /** POST /api/publish; retried (same idempotency key) while the hub answers 503 or is unreachable. */
  async publish(room, content, { key = content, timeoutMs = 30000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const res = await this.api('POST', '/api/publish', { room, content, idempotency_key: key });
        if (res.status === 200) return res.body;
        last = `${res.status} ${JSON.stringify(res.body)}`;
        if (res.status !== 503 && res.status !== 409) throw new Error(`publish refused: ${last}`);
      } catch (err) {
        if (String(err.message).startsWith('publish refused')) throw err;
        last = err.message;
      }
      await sleep(100);
    }
    throw new Error(`publish of ${content} to ${room} through ${this.name} failed for ${timeoutMs} ms: ${last}`);
  }

  /** The room's stored messages, oldest first (GET /api/rooms/{room}/history). */
  async history(room, limit = 10000) {
    const res = await this.api('GET', `/api/rooms/${encodeURIComponent(room)}/history?limit=${limit}`);
    if (res.status !== 200) throw new Error(`history of ${room}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }
}
