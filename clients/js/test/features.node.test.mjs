// The SDK features a page needs beyond a subscriber's stream (the chat page is built on them), each
// against real hub-server processes and a real Redis, in Node:
//   room.history(n)            older messages of a room already joined, apart from `message` events
//   token function → null      a refused token is not retried: the client closes `unauthorized`
//   publish(…, {resend:false}) at most once: a publish lost with its connection rejects `not_sent`
//   subscribe from a listener  a room subscribed inside the `connected` event is joined once
//   offline / online           the browser's events drop the connection, and bring it back at once
// The sockets are the `ws` package's; where a test must see or break what a socket sends, it uses a
// subclass of it that counts or drops frames (as a network would), never a stand-in for the hub.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { HubClient } from '../src/index.js';
import { checkHubBinary } from './harness/hub.mjs';
import { signToken } from './harness/jwt.mjs';
import { sleep, until } from './harness/net.mjs';
import { World } from './harness/world.mjs';

const LOGS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../target/sdk-test-logs/features-node');

/** A `ws` WebSocket that records the frames it sends, per client (`log`). */
function recordingSocket(log) {
  return class extends WebSocket {
    constructor(...args) {
      super(...args);
      log.sockets += 1;
    }

    send(data, ...rest) {
      if (typeof data === 'string') log.sent.push(JSON.parse(data));
      return super.send(data, ...rest);
    }
  };
}

async function withWorld(setup, name, fn) {
  checkHubBinary();
  const world = new World(setup, {}, resolve(LOGS, name));
  const clients = [];
  try {
    await world.start();
    await fn(world, clients);
  } finally {
    for (const c of clients) c.close();
    await world.stop();
  }
}

test('room.history(n): the older messages of a joined room, oldest first, never as message events', async () => {
  await withWorld({ redis: true, hubs: ['h1'] }, 'history', async (world, clients) => {
    const room = 'hist';
    const hub = world.hub('h1');
    for (let i = 1; i <= 5; i++) await hub.publish(room, `before-${i}`);
    const a = new HubClient(world.url('h1'), { WebSocket });
    clients.push(a);
    const got = [];
    const r = a.subscribe(room);
    r.on('message', (m) => got.push(m.content));
    // Asked before the room is joined: it waits for the join, then asks.
    const first = r.history(3);
    await a.connect();
    const early = await first;
    assert.deepEqual(early.map((m) => m.content), ['before-3', 'before-4', 'before-5']);
    assert.ok(early.every((m) => m.replayed === true && m.room === room));
    assert.deepEqual(early.map((m) => m.offset), [3, 4, 5]);

    for (let i = 1; i <= 3; i++) await hub.publish(room, `live-${i}`);
    await until(() => got.length === 3, { what: 'the three live messages' });
    const all = await r.history(100);
    assert.deepEqual(all.map((m) => m.content), ['before-1', 'before-2', 'before-3', 'before-4', 'before-5', 'live-1', 'live-2', 'live-3']);
    // Nothing of the history reached `message` listeners: a marker after it is the next event.
    await hub.publish(room, 'marker');
    await until(() => got.includes('marker'), { what: 'the marker' });
    assert.deepEqual(got, ['live-1', 'live-2', 'live-3', 'marker']);
    assert.deepEqual(r.position.offset, 9);

    await assert.rejects(r.history(0), { code: 'bad_argument' });
    const pending = r.history(5);
    r.unsubscribe();
    await assert.rejects(pending, { code: 'unsubscribed' });
  });
});

test('a token function that answers null after a refusal: closed unauthorized, no second socket', async () => {
  await withWorld({ redis: false, hubs: ['h1'], auth: 'jwt' }, 'token-null', async (world, clients) => {
    const log = { sockets: 0, sent: [] };
    const asked = [];
    const a = new HubClient(world.url('h1'), {
      WebSocket: recordingSocket(log),
      reconnectDelayMin: 50,
      reconnectDelayMax: 100,
      token: (request) => {
        asked.push(request);
        // Signed with a secret the hub does not hold: refused with 4001.
        return request.cause === 'refused' ? null : signToken('not-the-hubs-secret', { sub: 'u1' });
      },
    });
    clients.push(a);
    const states = [];
    let closedInfo = null;
    a.on('state', (s, info) => {
      states.push(s);
      if (s === 'closed') closedInfo = info;
    });
    a.on('error', () => {});
    await assert.rejects(a.connect(), { code: 'unauthorized' });
    assert.equal(a.state, 'closed');
    assert.equal(closedInfo.code, 4001);
    assert.match(closedInfo.reason, /auth failed/);
    assert.equal(closedInfo.error.code, 'unauthorized');
    assert.equal(asked.length, 2);
    assert.deepEqual(asked[0], { cause: 'connect' });
    assert.equal(asked[1].cause, 'refused');
    assert.equal(asked[1].code, 4001);
    assert.match(asked[1].reason, /auth failed/);
    // Several reconnect delays later: still the one socket.
    await sleep(500);
    assert.equal(log.sockets, 1);
    assert.deepEqual(states, ['connecting', 'disconnected', 'connecting', 'closed']);

    // The same with a good token: the function is asked once, with cause connect.
    const good = [];
    const b = new HubClient(world.url('h1'), {
      WebSocket,
      token: (request) => {
        good.push(request.cause);
        return signToken(world.secret, { sub: 'u2' });
      },
    });
    clients.push(b);
    await b.connect();
    assert.deepEqual(good, ['connect']);
  });
});

test('publish {resend: false}: lost before the hub got it, it rejects not_sent and is never stored', async () => {
  await withWorld({ redis: true, hubs: ['h1'] }, 'no-resend', async (world, clients) => {
    const room = 'once';
    let dropNext = false;
    // Drops the next chat message instead of sending it, and the connection with it (a network
    // failing at that instant).
    class Dropping extends WebSocket {
      send(data, ...rest) {
        if (dropNext && typeof data === 'string' && data.includes('"type":"message"')) {
          dropNext = false;
          this.terminate();
          return undefined;
        }
        return super.send(data, ...rest);
      }
    }
    const a = new HubClient(world.url('h1'), { WebSocket: Dropping, resendAfter: 500, reconnectDelayMin: 50, reconnectDelayMax: 200 });
    clients.push(a);
    const r = a.subscribe(room);
    await a.connect();
    await until(() => r.joined, { what: 'the room joined' });
    dropNext = true;
    const lost = r.publish('lost', { resend: false });
    // Not held back by the one in doubt: a later publish goes once the room is joined again.
    const later = r.publish('later', { resend: false });
    const ack = await later;
    assert.equal(typeof ack.id, 'string');
    await assert.rejects(lost, (err) => err.code === 'not_sent' && err.maybeStored === false);
    const stored = await world.hub('h1').history(room);
    const contents = (Array.isArray(stored) ? stored : stored.messages).map((m) => m.content);
    assert.deepEqual(contents, ['later']);

    // The default: the same loss is sent again, and stored once.
    dropNext = true;
    const again = await r.publish('sent again');
    assert.equal(typeof again.id, 'string');
    const after = await world.hub('h1').history(room);
    assert.deepEqual((Array.isArray(after) ? after : after.messages).map((m) => m.content), ['later', 'sent again']);
    await assert.rejects(r.publish('x', { resend: 'no' }), { code: 'bad_argument' });
  });
});

test('a room subscribed from the connected event is joined once', async () => {
  await withWorld({ redis: true, hubs: ['h1'] }, 'subscribe-in-listener', async (world, clients) => {
    const room = 'late';
    await world.hub('h1').publish(room, 'said before', { key: 'said-before' });
    const log = { sockets: 0, sent: [] };
    const a = new HubClient(world.url('h1'), { WebSocket: recordingSocket(log) });
    clients.push(a);
    const got = [];
    let r = null;
    a.on('state', (s) => {
      if (s === 'connected' && !r) {
        r = a.subscribe(room, { history: 5 });
        r.on('message', (m) => got.push(m.content));
      }
    });
    await a.connect();
    await until(() => r?.joined, { what: 'the room joined' });
    await world.hub('h1').publish(room, 'marker');
    await until(() => got.includes('marker'), { what: 'the marker' });
    assert.deepEqual(got, ['said before', 'marker']);
    const joins = log.sent.filter((f) => f.type === 'join' && f.room === room);
    assert.equal(joins.length, 1, `joins sent: ${JSON.stringify(joins)}`);
  });
});

test('offline drops the connection at once, no attempt while offline, online reconnects and recovers', async () => {
  // Node has no window: the browser's `online`/`offline` events and navigator.onLine are given on
  // globalThis for this test (the hub, the socket and the recovery are real).
  const events = new EventTarget();
  const saved = { add: globalThis.addEventListener, remove: globalThis.removeEventListener, nav: Object.getOwnPropertyDescriptor(globalThis, 'navigator') };
  const net = { onLine: true };
  globalThis.addEventListener = events.addEventListener.bind(events);
  globalThis.removeEventListener = events.removeEventListener.bind(events);
  Object.defineProperty(globalThis, 'navigator', { value: net, configurable: true, writable: true });
  try {
    await withWorld({ redis: true, hubs: ['h1'] }, 'offline', async (world, clients) => {
      const room = 'net';
      const log = { sockets: 0, sent: [] };
      // Long delays: only the `online` event can bring the client back within the test.
      const a = new HubClient(world.url('h1'), { WebSocket: recordingSocket(log), reconnectDelayMin: 60000, reconnectDelayMax: 60000 });
      clients.push(a);
      const got = [];
      const recoveries = [];
      const r = a.subscribe(room);
      r.on('message', (m) => got.push(m.content));
      r.on('recovery', (e) => recoveries.push(e));
      await a.connect();
      await until(() => r.joined, { what: 'the room joined' });
      const states = [];
      a.on('state', (s, info) => states.push([s, info.reason]));
      net.onLine = false;
      events.dispatchEvent(new Event('offline'));
      assert.equal(a.state, 'disconnected');
      assert.deepEqual(states[0], ['disconnected', 'offline']);
      await world.hub('h1').publish(room, 'while offline', { key: 'while-offline' });
      assert.equal(log.sockets, 1);
      net.onLine = true;
      events.dispatchEvent(new Event('online'));
      await until(() => got.includes('while offline'), { what: 'the message sent while offline' });
      assert.equal(log.sockets, 2);
      assert.deepEqual(got, ['while offline']);
      assert.equal(recoveries.length, 1);
      assert.equal(recoveries[0].recovered, true);
      assert.equal(recoveries[0].replayed, 1);
    });
  } finally {
    globalThis.addEventListener = saved.add;
    globalThis.removeEventListener = saved.remove;
    if (saved.nav) Object.defineProperty(globalThis, 'navigator', saved.nav);
    else delete globalThis.navigator;
  }
});
