// Owns: the bench's publisher, in a process of its own so its CPU is not the receiver's: raw
// WebSocket connections sending `message` frames to one room at a target rate, in 5 ms batches.
// Usage: node flood.mjs WS_URL ROOM RATE_PER_SEC SECONDS [CONNECTIONS]

import { createRequire } from 'node:module';

const require = createRequire(new URL('../test/package.json', import.meta.url));
const WebSocket = require('ws');

const [url, room, rate, seconds, conns = '4'] = process.argv.slice(2);
const perConn = Number(rate) / Number(conns);
const content = 'x'.repeat(100);
const frame = JSON.stringify({ type: 'message', room, content });
let sent = 0;

const sockets = await Promise.all(
  Array.from({ length: Number(conns) }, () => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'leave', room: 'general' }));
      resolve(ws);
    });
    ws.on('error', reject);
    ws.on('message', () => {}); // welcome, left: read and dropped
    ws.on('close', (code, reason) => {
      if (code !== 1005 && code !== 1000 && code !== 1001) console.error(`flood: a publisher was closed: ${code} ${reason}`);
    });
  })),
);

const start = Date.now();
const end = start + Number(seconds) * 1000;
const tick = setInterval(() => {
  const now = Date.now();
  if (now >= end) {
    clearInterval(tick);
    for (const ws of sockets) ws.close();
    process.send?.({ sent, ms: now - start });
    return;
  }
  // Catch up to where the rate says we should be (timers drift under load).
  const due = Math.floor(((now - start) / 1000) * perConn);
  for (const ws of sockets) {
    const mine = ws.sent ?? 0;
    if (ws.bufferedAmount > 4 << 20) continue; // the hub is not reading: do not grow without bound
    for (let i = mine; i < due; i++) ws.send(frame);
    sent += Math.max(0, due - mine);
    ws.sent = Math.max(mine, due);
  }
}, 5);
