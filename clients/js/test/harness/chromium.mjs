// Owns: launching Debian's Chromium headless through playwright-core, never a downloaded browser
// (the flags are those tests/browser/browser.mjs found to work on a CI box without network or
// user namespaces), with a throw-away profile removed on close.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  // Timers of a page nobody looks at are not to be slowed down: the SDK's heartbeat and backoff run in it.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
];

export async function launchChromium() {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it with "apt-get install -y chromium", or set CHROMIUM_PATH`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'rthub-sdk-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
  });
  return {
    context,
    async close() {
      try {
        await context.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
