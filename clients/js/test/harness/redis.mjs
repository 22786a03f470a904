// Owns: a real redis-server for a test — started on a free loopback port, without persistence (a
// restart is a Redis that lost everything, like a crashed cache), killed at the end.

import net from 'node:net';
import { join } from 'node:path';
import { freePort, sleep } from './net.mjs';
import { start, stop } from './procs.mjs';

export class RedisServer {
  constructor({ logDir, name = 'redis' }) {
    this.logDir = logDir;
    this.name = name;
    this.proc = null;
    this.port = 0;
    this.starts = 0;
  }

  /** Starts a fresh, empty Redis on a new port (each start is a new one). */
  async start() {
    for (let tries = 0; tries < 5; tries++) {
      const port = await freePort();
      this.starts += 1;
      const proc = start(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { logPath: join(this.logDir, `${this.name}.log`) },
      );
      if (await ready(port, proc)) {
        this.proc = proc;
        this.port = port;
        return port;
      }
      await stop(proc, 'SIGKILL'); // someone took the port in between: another one
    }
    throw new Error(`redis-server did not start; see ${join(this.logDir, `${this.name}.log`)}`);
  }

  /** Kills Redis (SIGKILL: no goodbye to its clients, as in a crash). */
  async kill() {
    await stop(this.proc, 'SIGKILL');
    this.proc = null;
  }
}

async function ready(port, proc) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) return false;
    if (await ping(port)) return true;
    await sleep(50);
  }
  return false;
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setTimeout(1000);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      answer += d;
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
