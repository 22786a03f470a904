// What the demo tests (moderation, notify) share: the compose stack's namespaces, a Chromium whose
// page errors are collected for the final check, and a page signed in by name.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './browser.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * docker-compose.yml's HUB_NAMESPACES value (hub-server's config tests load the same line): the
 * demos run with the namespaces the compose stack runs with, moderated:… among them.
 */
export function composeNamespaces() {
  const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
  const value = compose.match(/^\s*HUB_NAMESPACES: '(.*)'$/m)?.[1];
  assert.ok(value, 'docker-compose.yml sets no HUB_NAMESPACES');
  assert.equal(JSON.parse(value).moderated?.proxy_publish, true, 'the compose stack has a moderated namespace');
  return value;
}

/** A fresh Chromium; `pageErrors` gathers every uncaught error of its pages (a test expects none). */
export async function demoBrowser() {
  const { context, close } = await launchChromium();
  const pageErrors = [];
  context.on('page', (page) => {
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  });
  return { context, close, pageErrors };
}

/** A new page at `url`, signed in as `who` and connected. */
export async function signedIn(context, url, who, waitMs) {
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('[data-testid=signin-name]').fill(who);
  await page.locator('[data-testid=signin]').click();
  await page.locator('[data-testid=status][data-state=connected]').waitFor({ timeout: waitMs });
  return page;
}
