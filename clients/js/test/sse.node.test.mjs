// The SSE fallback in Node (no EventSource: the SDK reads the stream with fetch), against real
// hub-server processes and a real redis-server: a client whose WebSocket can never connect chats
// over SSE with a WebSocket client of another hub, tries WebSocket again on each reconnect, and
// after its hub is killed and restarted recovers what was said meanwhile, each message once.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { HubClient } from '../src/index.js';
import { checkHubBinary } from './harness/hub.mjs';
import { until } from './harness/net.mjs';
import { World } from './harness/world.mjs';

const LOGS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../target/sdk-test-logs/sse-node');

/** A WebSocket that never connects, as behind a proxy that breaks WebSocket; counts its tries. */
function blockedWebSocket() {
  const tries = { n: 0 };
  class Blocked {
    constructor() {
      tries.n += 1;
      this.readyState = 0;
      setTimeout(() => {
        this.readyState = 3;
        this.onclose?.({ code: 1006, reason: '' });
      }, 5);
    }
    send() {
      throw new Error('not open');
    }
    close() {}
  }
  return { Blocked, tries };
}

test('node: WebSocket blocked → SSE across two hubs, recovery after a hub restart', async () => {
  checkHubBinary();
  const world = new World({ redis: true, hubs: ['h1', 'h2'] }, {}, LOGS);
  const clients = [];
  try {
    await world.start();
    const { Blocked, tries } = blockedWebSocket();
    const a = new HubClient(world.url('h1'), { WebSocket: Blocked, reconnectDelayMax: 1000 });
    const b = new HubClient(world.url('h2'), { WebSocket });
    clients.push(a, b);
    const room = `sse-${randomBytes(4).toString('hex')}`;
    const got = { a: [], b: [] };
    const ra = a.subscribe(room);
    ra.on('message', (m) => got.a.push(m.content));
    const rb = b.subscribe(room);
    rb.on('message', (m) => got.b.push(m.content));
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(a.connection.transport, 'sse');
    assert.equal(b.connection.transport, 'ws');
    assert.equal(tries.n, 1, 'one WebSocket try, then SSE');

    await ra.publish('from-sse-1');
    await rb.publish('from-ws-1');
    await until(() => got.b.includes('from-sse-1') && got.a.includes('from-ws-1'), { what: 'chat both ways' });

    // Hub h1 dies; b says two things while it is down; h1 comes back (new process, same proxy).
    await world.killHub('h1');
    await until(() => a.state !== 'connected', { what: 'a sees its hub gone' });
    await rb.publish('from-ws-2');
    await rb.publish('from-ws-3');
    await world.restartHub('h1');
    await until(() => got.a.includes('from-ws-3'), { timeoutMs: 20000, what: 'a recovers what it missed' });
    assert.equal(a.connection.transport, 'sse');
    assert.ok(tries.n >= 2, `WebSocket tried again on the reconnect (${tries.n} tries)`);
    await ra.publish('from-sse-2');
    // A marker after everything: each message once, in order, nothing else.
    await rb.publish('marker');
    await until(() => got.a.includes('marker') && got.b.includes('from-sse-2'), { what: 'the marker' });
    const chat = got.a.filter((c) => c.startsWith('from-ws') || c === 'marker');
    assert.deepEqual(chat, ['from-ws-1', 'from-ws-2', 'from-ws-3', 'marker']);
    assert.equal(got.b.filter((c) => c === 'from-sse-1').length, 1);
  } finally {
    for (const c of clients) c.close();
    await world.stop();
  }
});
