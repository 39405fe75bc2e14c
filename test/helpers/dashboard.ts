// The dashboard under a real browser: Debian's Chromium through playwright-core, a person created
// with a password through the CLI, and the control host's sign-in form filled in as a person would.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CLI } from './processes.js';
import type { ServerHandle } from './processes.js';

export const CHROMIUM = '/usr/bin/chromium';
export const DASHBOARD_PASSWORD = 'dashboard: correct horse battery staple';

/** Skip locally without Chromium (with the reason shown); in CI a missing browser fails. */
export const needsChromium = { skip: existsSync(CHROMIUM) || process.env.CI === 'true' ? false : `no ${CHROMIUM} (apt-get install chromium)` } as const;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A browser context that trusts nothing but the server's own CA would be ideal; Chromium takes no CA file, so certificate errors are ignored for loopback. */
export function dashboardContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
}

/** `postern user create` with a password from standard input. */
export async function createPerson(server: ServerHandle, email: string, groups: readonly string[] = []): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'user', 'create', '--email', email, '--password-stdin', ...(groups.length ? ['--groups', groups.join(',')] : [])], { env: server.env, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(`${DASHBOARD_PASSWORD}\n`);
  const code = await new Promise((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`user create ${email} failed (${String(code)}): ${stderr.trim()}`);
}

/** Opens `path` on the dashboard, is sent to the sign-in form, signs in and is brought back to `path`. */
export async function signInToDashboard(page: Page, server: ServerHandle, email: string, path = '/'): Promise<void> {
  await page.goto(`${server.url}${path}`);
  await page.waitForURL((url) => url.pathname === '/auth/login');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', DASHBOARD_PASSWORD);
  const wanted = new URL(path, server.url);
  await Promise.all([page.waitForURL((url) => url.pathname === wanted.pathname && url.search === wanted.search), page.click('button[type=submit]')]);
  await page.waitForSelector('nav[aria-label=Main]');
}

const SCREENSHOTS = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url));

/** Saves the page as docs/screenshots/<name>.png in the source tree, for the README (only when POSTERN_SCREENSHOTS=1, so test runs leave the tree alone). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.POSTERN_SCREENSHOTS !== '1') return;
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}
