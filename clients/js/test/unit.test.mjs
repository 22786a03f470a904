// Unit tests of the SDK's pure parts: the order of a room's messages (room-stream.js), the backoff,
// the token's refresh time, the pacer. The protocol itself is tested against real hubs by the
// conformance scenarios.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../src/backoff.js';
import { BoundedSet } from '../src/bounded-set.js';
import { Pacer } from '../src/pacer.js';
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
