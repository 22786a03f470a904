// Owns: small network helpers of the harness — a free loopback port, waiting for a TCP service.

import net from 'node:net';

/**
 * A port free right now on 127.0.0.1. Only for programs that cannot listen on port 0 and report
 * theirs (redis-server): the caller retries if another process takes it meanwhile.
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once `check()` is truthy (polled every `everyMs`); rejects after `timeoutMs` saying
 * `what` (a string, or a function giving one at that moment).
 */
export async function until(check, { timeoutMs = 10000, everyMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    }
    await sleep(everyMs);
  }
}
