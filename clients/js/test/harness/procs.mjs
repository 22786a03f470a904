// Owns: every child process the tests start, so that each is stopped when its test ends and none
// outlives the test process (a SIGKILL of every survivor on exit, whatever made node exit).

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const alive = new Set();

process.on('exit', () => {
  for (const child of alive) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(130));
}

/**
 * Starts `cmd` with exactly `env` (nothing inherited but PATH), its output appended to `logPath`.
 * `onLine` sees each line of output (stdout and stderr) as it comes.
 */
export function start(cmd, args, { env = {}, logPath, onLine = () => {} }) {
  mkdirSync(dirname(logPath), { recursive: true });
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(cmd, args, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  alive.add(child);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      alive.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (err) => {
      alive.delete(child);
      log.write(`cannot start ${cmd}: ${err.message}\n`);
      resolve({ code: null, signal: null, error: err });
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (chunk) => {
      log.write(chunk);
      rest += chunk;
      const lines = rest.split('\n');
      rest = lines.pop();
      for (const line of lines) onLine(line);
    });
  }
  exited.then(() => log.end());
  return { child, exited };
}

/** Kills `proc` (from `start`) with `signal` and waits for it to be gone. */
export async function stop(proc, signal = 'SIGTERM', graceMs = 5000) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}
