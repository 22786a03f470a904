// A notification to a user's personal room (`user:<id>`, joined by the hub at connect) reaches the
// SDK without a subscription and without a join, once, published through either hub's API; another
// user's personal room never shows. Real hub-server processes, real Redis. (Every connection of a
// user on every hub being in the room is the hub's part: hub-server's tests/it/namespaces.rs.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { HubClient } from '../src/index.js';
import { checkHubBinary } from './harness/hub.mjs';
import { until } from './harness/net.mjs';
import { World } from './harness/world.mjs';

const LOGS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../target/sdk-test-logs/personal-node');

test('node: the personal room is delivered without a join, once, and nobody else\'s', async () => {
  checkHubBinary();
  const world = new World({ redis: true, hubs: ['h1', 'h2'] }, {}, LOGS);
  const clients = [];
  try {
    await world.start();
    const a = new HubClient(world.url('h1'), { WebSocket });
    const b = new HubClient(world.url('h2'), { WebSocket });
    clients.push(a, b);
    const got = { a: [], b: [] };
    a.on('message', (m) => got.a.push([m.room, m.content]));
    b.on('message', (m) => got.b.push([m.room, m.content]));
    await Promise.all([a.connect(), b.connect()]);
    // With auth off every connection is its own user: the personal room is user:<client id>.
    const mine = `user:${a.connection.clientId}`;
    const theirs = `user:${b.connection.clientId}`;
    assert.deepEqual(a.connection.rooms, [mine], 'the welcome lists the personal room');

    // Published through the other hub's API, to a's room, then to b's; then a marker to each.
    await world.hub('h2').publish(mine, 'for-a-1');
    await world.hub('h1').publish(theirs, 'for-b-1');
    await world.hub('h2').publish(mine, 'for-a-2');
    await world.hub('h2').publish(mine, 'marker-a');
    await world.hub('h1').publish(theirs, 'marker-b');
    await until(() => got.a.some(([, c]) => c === 'marker-a') && got.b.some(([, c]) => c === 'marker-b'), {
      what: 'both markers',
    });
    assert.deepEqual(got.a, [[mine, 'for-a-1'], [mine, 'for-a-2'], [mine, 'marker-a']]);
    assert.deepEqual(got.b, [[theirs, 'for-b-1'], [theirs, 'marker-b']]);
  } finally {
    for (const c of clients) c.close();
    await world.stop();
  }
});
