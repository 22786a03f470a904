// The SSE fallback in Node (no EventSource: the SDK reads the stream with fetch), against real
// hub-server processes and a real redis-server: a client whose WebSocket can never connect chats
// over SSE with a WebSocket client of another hub, tries WebSocket again on each reconnect, and
// after its hub is killed and restarted recovers what was said meanwhile, each message once. With
// JWT auth on, a token goes over SSE as it does over WebSocket: a good one names its user on what
// the client says, a bad or expired one is refused (4001) exactly as over WebSocket. Once WebSocket
// works again, the next reconnect is back on it, and the SSE session is gone.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { HubClient } from '../src/index.js';
import { checkHubBinary } from './harness/hub.mjs';
import { signToken } from './harness/jwt.mjs';
import { until } from './harness/net.mjs';
import { World } from './harness/world.mjs';

const LOGS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../target/sdk-test-logs/sse-node');

/**
 * A WebSocket that never connects, as behind a proxy that breaks WebSocket, until `unblock()`:
 * from then on each one is a real `ws` WebSocket. Counts the tries of each kind (`n`: blocked).
 */
function blockedWebSocket() {
  const tries = { n: 0, real: 0 };
  let blocked = true;
  class Blocked {
    constructor(...args) {
      if (!blocked) {
        tries.real += 1;
        // A constructor that returns an object gives that object: the SDK gets a real socket,
        // made with what the SDK asked (its `ws` options).
        return new WebSocket(...args);
      }
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
  return {
    Blocked,
    tries,
    unblock: () => {
      blocked = false;
    },
  };
}

/**
 * `a` and `b` subscribed to a fresh room named `prefix-…`; `got.a` and `got.b` collect what each
 * receives (`pick` of each message: its content unless told).
 */
function bothIn(a, b, prefix, pick = (m) => m.content) {
  const room = `${prefix}-${randomBytes(4).toString('hex')}`;
  const got = { a: [], b: [] };
  const ra = a.subscribe(room);
  ra.on('message', (m) => got.a.push(pick(m)));
  const rb = b.subscribe(room);
  rb.on('message', (m) => got.b.push(pick(m)));
  return { ra, rb, got };
}

/** The client sessions running on `hub` by transport, from its /metrics: `{ws, sse}`. */
async function openByTransport(hub) {
  const { status, body } = await hub.api('GET', '/metrics');
  if (status !== 200) throw new Error(`GET /metrics of ${hub.name}: ${status}`);
  const read = (t) => Number(String(body).match(new RegExp(`^realtime_hub_transport_connections\\{transport="${t}"\\} ([0-9.]+)`, 'm'))?.[1]);
  return { ws: read('ws'), sse: read('sse') };
}

/**
 * How a client holding `token` ends when the hub refuses it: what `connect()` gave (an error code,
 * or 'connected'), the states it went through, and its close. Bounded: an SDK that kept retrying
 * a refused fixed token would never settle `connect()`.
 */
async function refusalOf(url, WebSocketCtor, token, clients) {
  const c = new HubClient(url, { WebSocket: WebSocketCtor, token, reconnectDelayMin: 50, reconnectDelayMax: 100 });
  clients.push(c);
  const states = [];
  let closed = null;
  c.on('state', (state, info) => {
    states.push(state);
    if (state === 'closed') closed = info;
  });
  c.on('error', () => {});
  let timer;
  const outcome = await Promise.race([
    c.connect().then(
      () => 'connected',
      (err) => err.code,
    ),
    new Promise((r) => (timer = setTimeout(r, 8000, 'still unsettled after 8 s'))),
  ]);
  clearTimeout(timer);
  return { outcome, states, code: closed?.code, reason: closed?.reason, error: closed?.error?.code };
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
    const { ra, rb, got } = bothIn(a, b, 'sse');
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

test('node: a JWT over SSE names its user on what the client says; a bad or expired one is refused as over WebSocket', async () => {
  checkHubBinary();
  const world = new World({ redis: true, hubs: ['h1'], auth: 'jwt' }, {}, resolve(LOGS, 'jwt'));
  const clients = [];
  try {
    await world.start();
    const url = world.url('h1');
    const { Blocked, tries } = blockedWebSocket();
    const a = new HubClient(url, { WebSocket: Blocked, token: signToken(world.secret, { sub: 'u-ana', name: 'Ana' }) });
    const b = new HubClient(url, { WebSocket, token: signToken(world.secret, { sub: 'u-bo', name: 'Bo' }) });
    clients.push(a, b);
    const { ra, rb, got } = bothIn(a, b, 'jwt', (m) => m);
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(a.connection.transport, 'sse');
    assert.equal(b.connection.transport, 'ws');
    assert.equal(tries.n, 1, 'one WebSocket try, then SSE');
    assert.deepEqual(a.connection.user, { id: 'u-ana', name: 'Ana' }, 'the welcome over SSE names the token user');

    await ra.publish('hello from ana');
    await rb.publish('hello from bo');
    const said = (list, content) => list.find((m) => m.content === content);
    await until(() => said(got.b, 'hello from ana') && said(got.a, 'hello from bo'), { what: 'chat both ways' });
    // The hub, not the client, puts the sender's identity on a message: the token's sub and name.
    assert.deepEqual(said(got.b, 'hello from ana').user, { id: 'u-ana', name: 'Ana' });
    assert.deepEqual(said(got.a, 'hello from bo').user, { id: 'u-bo', name: 'Bo' });

    // Refused tokens: each one over SSE (WebSocket blocked) and over WebSocket, side by side. The
    // refusal must look the same to the application: connect() rejects `unauthorized`, the client
    // closes with the hub's 4001 and never reconnects (a fixed token cannot be renewed).
    const now = Math.floor(Date.now() / 1000);
    const refused = {
      'wrong secret': signToken(randomBytes(32).toString('hex'), { sub: 'u-bad', name: 'Mallory' }),
      // Past `exp` by more than the hub's 30 s leeway.
      expired: signToken(world.secret, { sub: 'u-late', name: 'Late', iat: now - 600, exp: now - 300 }),
    };
    for (const [what, token] of Object.entries(refused)) {
      const blocked = blockedWebSocket();
      const [overSse, overWs] = await Promise.all([refusalOf(url, blocked.Blocked, token, clients), refusalOf(url, WebSocket, token, clients)]);
      assert.equal(blocked.tries.n, 1, `${what}: one WebSocket try, then the refusal over SSE, no retry`);
      const { reason, ...seen } = overSse;
      assert.deepEqual(seen, { outcome: 'unauthorized', states: ['connecting', 'closed'], code: 4001, error: 'unauthorized' }, `${what} over SSE`);
      assert.match(reason, /auth failed/, `${what} over SSE: the hub's reason`);
      assert.deepEqual(overSse, overWs, `${what}: refused over SSE as over WebSocket`);
    }
  } finally {
    for (const c of clients) c.close();
    await world.stop();
  }
});

test('node: WebSocket blocked → SSE; unblocked, the next reconnect is back on WebSocket, each message once', async () => {
  checkHubBinary();
  const world = new World({ redis: true, hubs: ['h1'] }, {}, resolve(LOGS, 'back-to-ws'));
  const clients = [];
  try {
    await world.start();
    const hub = world.hub('h1');
    const { Blocked, tries, unblock } = blockedWebSocket();
    // `a` goes through h1's proxy (cut below); `b` straight to the hub, so the cut spares it.
    const a = new HubClient(world.url('h1'), { WebSocket: Blocked, reconnectDelayMax: 1000 });
    const b = new HubClient(hub.wsUrl, { WebSocket });
    clients.push(a, b);
    const transports = [];
    a.on('state', (state, info) => {
      if (state === 'connected') transports.push(info.transport);
    });
    const { ra, rb, got } = bothIn(a, b, 'back');
    await Promise.all([a.connect(), b.connect()]);
    assert.equal(a.connection.transport, 'sse');
    assert.deepEqual(await openByTransport(hub), { ws: 1, sse: 1 });
    await ra.publish('a-1');
    await rb.publish('b-1');
    await until(() => got.b.includes('a-1') && got.a.includes('b-1'), { what: 'chat both ways over SSE' });

    // WebSocket works again; a's SSE stream is cut, so it reconnects, and tries WebSocket first.
    unblock();
    assert.ok(world.proxy('h1').cut() >= 1, "a's SSE stream went through the proxy");
    await until(() => a.connection?.transport === 'ws', {
      timeoutMs: 15000,
      what: () => `a back on WebSocket (state ${a.state}, transport ${a.connection?.transport}, tries ${JSON.stringify(tries)})`,
    });
    assert.deepEqual(transports, ['sse', 'ws']);
    assert.deepEqual(tries, { n: 1, real: 1 }, 'one blocked try at first, then one real WebSocket');
    // The hub's view: both clients on WebSocket, the old SSE session ended (none left to deliver twice).
    let open;
    await until(async () => (open = await openByTransport(hub)).ws === 2 && open.sse === 0, {
      what: () => `h1 running 2 WebSocket and no SSE sessions (got ${JSON.stringify(open)})`,
    });

    await ra.publish('a-2');
    await rb.publish('b-2');
    // A marker each way after everything: each message once, in order, nothing else.
    await ra.publish('a-marker');
    await rb.publish('b-marker');
    await until(() => got.b.includes('a-marker') && got.a.includes('b-marker'), { what: 'the markers' });
    assert.deepEqual(
      got.a.filter((c) => c.startsWith('b-')),
      ['b-1', 'b-2', 'b-marker'],
    );
    assert.deepEqual(
      got.b.filter((c) => c.startsWith('a-')),
      ['a-1', 'a-2', 'a-marker'],
    );
  } finally {
    for (const c of clients) c.close();
    await world.stop();
  }
});
