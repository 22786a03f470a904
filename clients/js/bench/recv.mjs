// The JS SDK receiving a flood: one HubClient subscribed to a room of a real hub-server
// (standalone, with its in-memory history, so every message carries an offset and goes through
// the SDK's ordering and de-duplication), while flood.mjs (another process) publishes at a target
// rate. Prints the messages per second the SDK delivered to its listener, the CPU this process
// used for it (one JS thread: at most one core), and the same for a bare `ws` client parsing each
// frame, for comparison. Usage: node recv.mjs [RATE] [SECONDS]   (HUB_SERVER_BIN: the hub to use;
// default target/release/hub-server, else target/debug/hub-server)

import { fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HubClient } from '../src/index.js';

const require = createRequire(new URL('../test/package.json', import.meta.url));
const WebSocket = require('ws');
const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
if (!process.env.HUB_SERVER_BIN) {
  const release = resolve(REPO, 'target/release/hub-server');
  process.env.HUB_SERVER_BIN = existsSync(release) ? release : resolve(REPO, 'target/debug/hub-server');
}
const { HubProcess } = await import('../test/harness/hub.mjs');

const RATE = Number(process.argv[2] || 60000);
const SECONDS = Number(process.argv[3] || 10);
const WARMUP_MS = 2000;

function hubCpuMs(pid) {
  // utime + stime of /proc/PID/stat, in clock ticks (100 per second on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function run(kind) {
  const hub = new HubProcess({
    name: `bench-${kind}`,
    logDir: resolve(REPO, 'target/sdk-bench-logs'),
    // The publishers may send as fast as they like; the receiver is not closed as a slow consumer
    // when the machine's other work starves it for a moment (the hub holds up to 256 MiB for it):
    // what is measured is how fast the receiving process drains, not how long it keeps up.
    env: {
      HUB_RATE_LIMIT_PER_SEC: '100000000',
      HUB_RATE_LIMIT_BURST: '100000000',
      HUB_SEND_QUEUE: '2000000',
      HUB_SEND_QUEUE_BYTES: String(256 << 20),
      RUST_LOG: 'warn,hub_server=info,hub_server::http=warn',
    },
  });
  await hub.start();
  let received = 0;
  let closeReceiver;
  const drops = [];
  if (kind === 'sdk') {
    const client = new HubClient(hub.wsUrl, { WebSocket });
    client.on('state', (s, info) => {
      if (s === 'disconnected') drops.push(`${info.code} ${info.reason}`);
    });
    const room = client.subscribe('bench');
    room.on('message', () => {
      received++;
    });
    await client.connect();
    await new Promise((r) => room.once('joined', r));
    closeReceiver = () => client.close();
  } else {
    // As the SDK asks by default: frames uncompressed (see the SDK's `compression` option).
    const ws = new WebSocket(hub.wsUrl, undefined, { perMessageDeflate: false });
    await new Promise((r) => ws.on('open', r));
    ws.on('message', (data, isBinary) => {
      const frame = JSON.parse(isBinary ? data : data.toString());
      if (frame.type === 'message') received++;
    });
    ws.on('close', (code, reason) => drops.push(`${code} ${reason}`));
    ws.send(JSON.stringify({ type: 'join', room: 'bench' }));
    await new Promise((r) => setTimeout(r, 200));
    closeReceiver = () => ws.close();
  }
  const flood = fork(fileURLToPath(new URL('flood.mjs', import.meta.url)), [hub.wsUrl, 'bench', String(RATE), String(SECONDS + WARMUP_MS / 1000 + 1)]);
  const floodDone = new Promise((r) => flood.on('message', r));
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const n0 = received;
  const cpu0 = process.cpuUsage();
  const hub0 = hubCpuMs(hub.proc.child.pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const hubMs = hubCpuMs(hub.proc.child.pid) - hub0;
  const n = received - n0;
  const flooded = await floodDone;
  closeReceiver();
  await hub.kill('SIGTERM');
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    receiver: kind,
    offered_per_s: RATE,
    received_per_s: Math.round((n / ms) * 1000),
    receiver_cpu_percent: Math.round((cpuMs / ms) * 1000) / 10,
    receiver_cpu_us_per_message: Math.round((cpuMs * 1000 * 100) / n) / 100,
    messages_per_cpu_second: Math.round(n / (cpuMs / 1000)),
    hub_cpu_percent: Math.round((hubMs / ms) * 1000) / 10,
    publisher_sent: flooded.sent,
    disconnects: drops,
  };
}

console.log(`# ${cpus().length} × ${cpus()[0].model}; node ${process.version}; hub ${process.env.HUB_SERVER_BIN}`);
console.log(`# offered ${RATE} messages/s of 100 characters to one room, measured ${SECONDS} s after ${WARMUP_MS / 1000} s`);
for (const kind of ['sdk', 'bare-ws']) {
  const r = await run(kind);
  console.log(JSON.stringify(r));
}
