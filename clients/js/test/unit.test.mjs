// Unit tests of the SDK's pure parts: the order of a room's messages (room-stream.js), the backoff,
// the token's refresh time, the pacer, the publish queue's in-doubt rule. The protocol itself is tested against real hubs by the
// conformance scenarios.

import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { Backoff } from '../src/backoff.js';
import { BoundedSet } from '../src/bounded-set.js';
import { Emitter, emit } from '../src/emitter.js';
import { Heartbeat } from '../src/heartbeat.js';
import { Outbox } from '../src/outbox.js';
import { Pacer } from '../src/pacer.js';
import { RoomSession } from '../src/room-session.js';
import { RoomStream } from '../src/room-stream.js';
import { decodeClaims, refreshTime } from '../src/token.js';

const msg = (offset, { epoch = 'e1', id = `id-${epoch}-${offset}`, replayed = false } = {}) => ({
  type: 'message',
  id,
  room: 'r',
  epoch,
  offset,
  content: `c${offset}`,
  ...(replayed ? { replayed: true } : {}),
});

function stream(maxHeld = 100) {
  const out = [];
  const s = new RoomStream({ maxHeld, dedupe: 100, deliver: (f) => out.push(f.offset ?? f.id) });
  return { s, out };
}

test('messages go out in offset order, a hole holds what follows it', () => {
  const { s, out } = stream();
  s.start('e1', 0);
  assert.equal(s.receive(msg(1)), null);
  assert.equal(s.receive(msg(3)), 'gap');
  assert.equal(s.receive(msg(4)), 'gap');
  assert.deepEqual(out, [1]);
  assert.ok(s.hasGap);
  assert.equal(s.receive(msg(2, { replayed: true })), null);
  assert.deepEqual(out, [1, 2, 3, 4]);
  assert.deepEqual(s.position, { epoch: 'e1', offset: 4 });
  assert.ok(!s.hasGap);
});

test('copies are dropped: at or below the position, or an id already delivered', () => {
  const { s, out } = stream();
  s.start('e1', 0);
  s.receive(msg(1));
  s.receive(msg(2));
  s.receive(msg(1, { replayed: true }));
  s.receive(msg(2, { replayed: true }));
  // Delivered while Redis was down (no offset), then seen again with its offset.
  s.receive({ type: 'message', id: 'x', content: 'live without offset' });
  s.receive(msg(3, { id: 'x' }));
  s.receive(msg(4));
  assert.deepEqual(out, [1, 2, 'x', 4]);
  assert.deepEqual(s.position, { epoch: 'e1', offset: 4 });
});

test('an ack of our own message fills its offset, before or after the later ones arrive', () => {
  const { s, out } = stream();
  s.start('e1', 0);
  s.ownStored(1);
  s.receive(msg(2));
  assert.equal(s.receive(msg(4)), 'gap');
  s.ownStored(3);
  assert.deepEqual(out, [2, 4]);
  assert.equal(s.position.offset, 4);
  assert.ok(!s.hasGap);
});

test('the first join: replayed history goes out in order, earlier live frames were before the subscription', () => {
  const { s, out } = stream();
  s.receive(msg(6));
  s.receive(msg(5, { replayed: true }));
  s.receive(msg(4, { replayed: true }));
  s.receive(msg(8));
  s.receive(msg(7));
  assert.deepEqual(out, []);
  s.start('e1', 6);
  assert.deepEqual(out, [4, 5, 7, 8]);
  assert.deepEqual(s.position, { epoch: 'e1', offset: 8 });
});

test('a new epoch waits for the re-join; a failed recovery delivers what is in hand, then continues', () => {
  const { s, out } = stream();
  s.start('e1', 0);
  s.receive(msg(1));
  assert.equal(s.receive(msg(3)), 'gap');
  assert.equal(s.receive(msg(1, { epoch: 'e2' })), 'epoch');
  assert.equal(s.receive(msg(2, { epoch: 'e2' })), 'epoch');
  assert.deepEqual(out, [1]);
  // The since re-join said epoch_changed: the old epoch's 3 goes out, then e2 from its start.
  s.jump('e2', 0);
  assert.deepEqual(out, [1, 3, 1, 2]);
  assert.deepEqual(s.position, { epoch: 'e2', offset: 2 });
});

test('recovery failed in the same epoch (too_old): held frames, then the room goes on from the top', () => {
  const { s, out } = stream();
  s.start('e1', 10);
  s.receive(msg(15));
  s.receive(msg(21));
  assert.equal(s.jump('e1', 20), null);
  assert.deepEqual(out, [15, 21]);
  assert.equal(s.position.offset, 21);
});

test('too many frames behind a hole: overflow, and skipping the hole delivers them in order', () => {
  const { s, out } = stream(3);
  s.start('e1', 0);
  s.receive(msg(5));
  s.receive(msg(3));
  s.receive(msg(4));
  assert.equal(s.receive(msg(6)), 'overflow');
  assert.equal(s.skipHoles(), 2);
  assert.deepEqual(out, [3, 4, 5, 6]);
  assert.equal(s.position.offset, 6);
});

test('joined without a position (Redis was down): the first stored message gives one', () => {
  const { s, out } = stream();
  s.start(undefined, undefined);
  assert.equal(s.position, null);
  s.receive(msg(7));
  assert.deepEqual(s.position, { epoch: 'e1', offset: 7 });
  assert.equal(s.receive(msg(9)), 'gap');
  assert.deepEqual(out, [7]);
});

test('nothing goes out once stopped, not even the rest of a batch', () => {
  const out = [];
  const s = new RoomStream({
    maxHeld: 10,
    dedupe: 10,
    deliver: (f) => {
      out.push(f.offset);
      if (f.offset === 2) s.stopped = true; // a listener unsubscribed
    },
  });
  s.start('e1', 0);
  s.receive(msg(3));
  s.receive(msg(2));
  s.receive(msg(1));
  assert.deepEqual(out, [1, 2]);
});

test('backoff: full jitter below min·2^n, capped at max', () => {
  const b = new Backoff({ min: 100, max: 1000, random: () => 0.999999 });
  const delays = Array.from({ length: 8 }, () => b.next());
  assert.deepEqual(delays.map((d) => Math.round(d)), [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  const zero = new Backoff({ min: 100, max: 1000, random: () => 0 });
  assert.equal(zero.next(), 0);
  b.reset();
  assert.ok(b.next() < 100);
  assert.throws(() => new Backoff({ min: 0, max: 10 }), RangeError);
});

test('a token is renewed at 0.8 of its lifetime, measured from the token (not the local clock)', () => {
  const jwt = (claims) => `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;
  const now = 1_000_000_000_000;
  // A clock 10 minutes ahead does not matter: the lifetime is exp − iat (minus iat's rounding).
  assert.equal(refreshTime(jwt({ iat: 100, exp: 3701 }), now), now + 0.8 * 3600 * 1000);
  // Without iat: 0.8 of what is left by the local clock.
  assert.equal(refreshTime(jwt({ exp: now / 1000 + 100 }), now), now + 80_000);
  // Never sooner than a second; never for a token without exp.
  assert.equal(refreshTime(jwt({ exp: now / 1000 - 50 }), now), now + 1000);
  assert.equal(refreshTime(jwt({ sub: 'x' }), now), Infinity);
  assert.equal(refreshTime('opaque', now, now / 1000 + 10), now + 8000);
  assert.equal(decodeClaims('not a jwt'), null);
});

test('pacer: a burst, then the rate; forced frames put it in debt', () => {
  let t = 0;
  const p = new Pacer({ rate: 10, burst: 3, now: () => t });
  assert.ok(p.tryTake() && p.tryTake() && p.tryTake());
  assert.ok(!p.tryTake());
  assert.equal(p.wait(), 100);
  t += 100;
  assert.ok(p.tryTake());
  p.force();
  assert.ok(!p.tryTake());
  assert.equal(p.wait(), 200);
});

test('bounded set forgets the oldest', () => {
  const s = new BoundedSet(2);
  s.add('a');
  s.add('b');
  s.add('c');
  assert.ok(!s.has('a') && s.has('b') && s.has('c'));
  assert.equal(s.size, 2);
});

// ---- the publish queue's in-doubt rule, against a fake connection -------------------------------


function fakeLink() {
  const link = {
    connected: true,
    gen: 1,
    clientId: 'c1',
    sent: [],
    stored: [],
    send: (frame) => (link.sent.push({ ...frame, gen: link.gen }), true),
    pace: () => true,
    paceWait: () => 0,
    joined: () => link.connected,
    ownStored: (room, offset) => link.stored.push(offset),
  };
  return link;
}
const opts = { maxQueued: 10, publishTimeout: 60000, resendAfter: 1000, window: 32, maxMessageBytes: 65536 };

test('in doubt: found in the replay (k-th copy for the k-th publish) resolves; not found in a complete late read is sent again, first', async () => {
  const link = fakeLink();
  const box = new Outbox(link, opts);
  const a = box.publish('r', 'x');
  const b = box.publish('r', 'x');
  assert.deepEqual(link.sent.map((f) => f.ref), ['p1.1', 'p2.1']);
  link.connected = false;
  box.connectionLost();
  const c = box.publish('r', 'later'); // queued behind the two in doubt
  link.connected = true;
  link.gen = 2;
  link.clientId = 'c2';
  box.pump();
  assert.equal(link.sent.length, 2, 'nothing goes while its room has publishes in doubt');
  // The replay holds one stored copy from c1: the first publish.
  box.matchStored('r', { from: 'c1', content: 'x', id: 'id-a', offset: 7 });
  assert.deepEqual(await a, { id: 'id-a', offset: 7 });
  // A complete read, started long enough after b was sent: b was not stored.
  const probeAt = box.afterRead('r', { complete: true, readAt: Date.now() + 5000, lost: false });
  assert.equal(probeAt, null);
  assert.deepEqual(link.sent.slice(2).map((f) => [f.content, f.ref, f.gen]), [['x', 'p2.2', 2], ['later', 'p3.1', 2]]);
  box.onAck({ type: 'ack', ref: 'p2.2', id: 'id-b', offset: 8 });
  box.onAck({ type: 'ack', ref: 'p3.1', id: 'id-c', offset: 9 });
  assert.deepEqual(await b, { id: 'id-b', offset: 8 });
  assert.deepEqual(await c, { id: 'id-c', offset: 9 });
  assert.deepEqual(link.stored, [8, 9]);
});

test('in doubt: a read too early asks for a later one; a history that cannot tell rejects with unknown', async () => {
  const link = fakeLink();
  const box = new Outbox(link, opts);
  const a = box.publish('r', 'x');
  const sentAt = Date.now();
  box.connectionLost();
  const probeAt = box.afterRead('r', { complete: true, readAt: sentAt, lost: false });
  assert.ok(probeAt >= sentAt + opts.resendAfter, 'a later read decides');
  assert.equal(link.sent.length, 1, 'not sent again yet');
  box.afterRead('r', { complete: false, lost: true });
  await assert.rejects(a, (err) => err.code === 'unknown' && err.maybeStored === true);
  assert.equal(link.sent.length, 1, 'never sent twice');
});

test('a full queue and a timeout reject with timeout; a timed-out sent publish found later takes its stored copy', async () => {
  const link = fakeLink();
  link.connected = false;
  const box = new Outbox(link, { ...opts, maxQueued: 2, publishTimeout: 50 });
  const a = box.publish('r', 'one');
  const b = box.publish('r', 'two');
  await assert.rejects(box.publish('r', 'three'), (err) => err.code === 'timeout' && err.maybeStored === false);
  await assert.rejects(a, (err) => err.code === 'timeout' && err.maybeStored === false);
  await assert.rejects(b, (err) => err.code === 'timeout' && err.maybeStored === false);
  // Sent, then timed out: maybe stored. Its stored copy must not settle a newer publish of the same text.
  link.connected = true;
  const c = box.publish('r', 'same');
  await assert.rejects(c, (err) => err.code === 'timeout' && err.maybeStored === true);
  const box2d = box.publish('r', 'same');
  box.connectionLost();
  box.matchStored('r', { from: 'c1', content: 'same', id: 'id-c', offset: 3 });
  box.matchStored('r', { from: 'c1', content: 'same', id: 'id-d', offset: 4 });
  assert.deepEqual(await box2d, { id: 'id-d', offset: 4 });
});

test('emitter: a throwing listener does not stop the others; listeners changed during an emit take effect after it', () => {
  const e = new Emitter();
  const seen = [];
  const reported = [];
  const saved = globalThis.reportError;
  globalThis.reportError = (err) => reported.push(err.message);
  try {
    const late = () => seen.push('late');
    e.on('x', () => {
      seen.push('first');
      e.on('x', late);
      throw new Error('app bug');
    });
    e.once('x', () => seen.push('once'));
    e[emit]('x');
    e[emit]('x');
  } finally {
    globalThis.reportError = saved;
  }
  assert.deepEqual(seen, ['first', 'once', 'first', 'late']);
  assert.deepEqual(reported, ['app bug', 'app bug']);
});

// A room's session with the client's side reduced to what it reads (room-session.js's `link`):
// frames it sends are recorded, answers are handed to it as the client would route them.
function session({ maxHeld = 3 } = {}) {
  const sent = [];
  const events = [];
  const outbox = {
    afterRead: () => null,
    awaitingAck: () => false,
    pump: () => {},
    failAll: () => {},
    markUnknowable: () => {},
    matchStored: () => {},
    inDoubt: () => false,
  };
  const link = {
    connected: true,
    gen: 1,
    outbox,
    send: (f) => sent.push(f),
    leave: () => {},
    expect: () => {},
    isOwn: () => false,
    forget: () => {},
  };
  const opts = { maxHeld, dedupeWindow: 100, gapWait: 0, publishTimeout: 1000 };
  const s = new RoomSession('r', { history: 0 }, link, opts);
  s.room.on('message', (m) => events.push(`m${m.offset}`));
  s.room.on('recovery', (e) => events.push(`recovery:${e.recovered}:${e.reason}:${e.skipped ?? ''}`));
  return { s, link, sent, events };
}

test('a recovery that gives up on a hole is told before the messages behind the hole', () => {
  const { s, events } = session({ maxHeld: 3 });
  s.onConnected();
  s.onAnswer('join', 'joined', { type: 'joined', room: 'r', epoch: 'e1', offset: 0 });
  s.onMessage(msg(1));
  // Offsets 2 and 3 never come; 4..7 wait behind them until more wait than maxHeld.
  for (const o of [4, 5, 6, 7]) s.onMessage(msg(o));
  assert.deepEqual(events, ['m1', 'recovery:false:overflow:2', 'm4', 'm5', 'm6', 'm7']);
  assert.deepEqual(s.room.position, { epoch: 'e1', offset: 7 });
  s.unsubscribe();
});

test('room.history(n): asked once joined, its replay answers it and is not delivered; newer frames are', async () => {
  const { s, sent, events } = session({ maxHeld: 100 });
  const early = s.fetchHistory(3);
  assert.equal(sent.length, 0, 'nothing is sent before a connection');
  s.onConnected();
  assert.deepEqual(sent.map((f) => f.history ?? 'join'), ['join']);
  s.onAnswer('join', 'joined', { type: 'joined', room: 'r', epoch: 'e1', offset: 5 });
  assert.deepEqual(sent.at(-1), { type: 'join', room: 'r', history: 3 });
  for (const o of [3, 4, 5]) s.onMessage(msg(o, { replayed: true }));
  // A replayed frame past the position is the connection's only copy of it: delivered.
  s.onMessage(msg(6, { replayed: true }));
  // A re-join asked meanwhile waits for the answer: one join at a time.
  s.requestRejoin('gap');
  assert.equal(sent.length, 2);
  s.onAnswer('history', 'joined', { type: 'joined', room: 'r', epoch: 'e1', offset: 6 });
  const got = await early;
  assert.deepEqual(got.map((f) => f.offset), [3, 4, 5]);
  assert.deepEqual(events, ['m6']);
  assert.deepEqual(sent.at(-1), { type: 'join', room: 'r', since: { epoch: 'e1', offset: 6 } });
  // Refused: the question rejects with the hub's code; the room stays.
  const refused = s.fetchHistory(2);
  s.onAnswer('join', 'joined', { type: 'joined', room: 'r', epoch: 'e1', offset: 6, recovered: true });
  s.onAnswer('history', 'error', { type: 'error', room: 'r', code: 'unavailable', message: 'x' });
  await assert.rejects(refused, { code: 'unavailable' });
  assert.ok(s.joinedNow());
  s.unsubscribe();
});

test('heartbeat: a ping after a silent interval, dead when nothing follows it; any frame keeps it alive', () => {
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    const events = [];
    const hb = new Heartbeat(1000, 500, () => events.push('ping'), (reason) => events.push(`dead: ${reason}`));
    hb.start();
    hb.start(); // a second start adds no second interval
    mock.timers.tick(999);
    assert.deepEqual(events, []);
    hb.heard();
    mock.timers.tick(1);
    assert.deepEqual(events, [], 'a frame in the interval: no ping');
    mock.timers.tick(1000);
    assert.deepEqual(events, ['ping']);
    hb.heard(); // the pong
    mock.timers.tick(500);
    assert.deepEqual(events, ['ping'], 'answered: alive');
    mock.timers.tick(1000); // the tick that sees the pong
    mock.timers.tick(1000);
    assert.deepEqual(events, ['ping', 'ping']);
    mock.timers.tick(500);
    assert.deepEqual(events, ['ping', 'ping', 'dead: no frame from the hub within 500 ms of a ping']);
    hb.stop();
    mock.timers.tick(10_000);
    assert.equal(events.length, 3, 'stopped: no more pings');
  } finally {
    mock.timers.reset();
  }
});

// ---- what the client asks of the WebSocket constructor ------------------------------------------

test('permessage-deflate is offered (ws options) only with compression: true', async () => {
  const { HubClient } = await import('../src/index.js');
  const made = [];
  class Recording {
    constructor(...args) {
      made.push(args);
      this.readyState = 0;
    }
    send() {}
    close() {}
  }
  for (const [options, offered] of [[{}, false], [{ compression: true }, true]]) {
    made.length = 0;
    const hub = new HubClient('ws://127.0.0.1:9/ws', { WebSocket: Recording, sse: false, ...options });
    const connecting = hub.connect().catch(() => {});
    for (let i = 0; i < 100 && made.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    hub.close();
    await connecting;
    assert.equal(made.length, 1, 'one socket made');
    assert.equal(made[0][0], 'ws://127.0.0.1:9/ws');
    // Not `undefined`: a browser sends that as a subprotocol named "undefined" and the handshake fails.
    assert.deepEqual(made[0][1], [], 'no subprotocol');
    assert.deepEqual(made[0][2], { perMessageDeflate: offered });
  }
});
