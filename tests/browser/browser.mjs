// Launches Debian's Chromium headless through playwright-core. Never downloads a browser:
// the executable is /usr/bin/chromium (override with CHROMIUM_PATH) and must already be installed.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Flags that keep a headless Chromium quiet and self-contained on a CI box with no network
// and no user namespaces (hence --no-sandbox: it runs as root in containers).
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
];

/**
 * Starts a fresh Chromium with its own throw-away profile.
 * Returns { browser, close } where close() also removes the profile directory.
 * `contextOptions` are added to the context's (e.g. { bypassCSP: true } for a test that injects a
 * checker such as axe-core into the page; never for the steps that check the page itself).
 */
export async function launchChromium(contextOptions = {}) {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `no Chromium at ${CHROMIUM_PATH}: install it with "apt-get install -y chromium" ` +
        '(or scripts/ensure-deps.sh chromium), or set CHROMIUM_PATH',
    );
  }
  const profile = mkdtempSync(join(tmpdir(), 'rthub-chromium-'));
  // launchPersistentContext is the only way to pass --user-data-dir; a persistent context is one
  // browser with one context, which is all the tests need (pages inside it are separate tabs).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
    viewport: { width: 1000, height: 800 },
    ...contextOptions,
  });
  const close = async () => {
    try {
      await context.close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  };
  return { context, close };
}
