// E2E: the user portal in a real Chromium for a person outside the admin group: the navigation
// holds only portal pages, /apps lists exactly the sockets the policies let them reach with their
// links and commands, admin pages typed by hand show no admin data, the admin API answers 403 to
// their browser session even with the CSRF header, and they sign out another of their sign-ins.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { createPerson, dashboardContext, launchChromium, needsChromium, screenshot, signInToDashboard } from '../helpers/dashboard.js';

const PERSON = 'bo@corp.example';
const WAIT_MS = 15_000;
/** The admin area's navigation labels: none may show to a person outside the admin group. */
const ADMIN_NAV = ['Overview', 'Sessions', 'Sockets', 'Connectors', 'Users', 'Sign-in', 'Policies', 'Policy test', 'Audit', 'Recordings'];

async function ok(server: ServerHandle, path: string, init: { method?: string; body?: unknown }, status: number): Promise<void> {
  const res = await api(server, path, init);
  assert.equal(res.status, status, `${path}: ${res.text}`);
}

describe('dashboard: the user portal for a non-admin', needsChromium, () => {
  let server: ServerHandle;
  let browser: Browser;
  let page: Page;
  let elsewhere: BrowserContext;
  const problems: string[] = [];

  before(async () => {
    server = await startServer();
    await createPerson(server, PERSON, ['staff']);
    const sockets = [
      { name: 'wiki', type: 'http', upstream: 'http://127.0.0.1:9', cloudauth: true, allowed_email_domains: ['corp.example'] },
      { name: 'payroll', type: 'http', upstream: 'http://127.0.0.1:9', cloudauth: true, allowed_email_addresses: ['cfo@corp.example'] },
      { name: 'prod', type: 'ssh', upstream: 'tcp://127.0.0.1:22' },
      { name: 'vault', type: 'ssh', upstream: 'tcp://127.0.0.1:22' },
      { name: 'db', type: 'tls', upstream: 'tcp://127.0.0.1:5432', allowed_email_domains: ['corp.example'] },
    ];
    for (const socket of sockets) await ok(server, '/api/v1/sockets', { method: 'POST', body: socket }, 201);
    await ok(server, '/api/v1/policies', { method: 'PUT', body: { text: 'name: staff-ssh\nsockets: [prod]\nrules:\n  - effect: allow\n    who: { group: [staff] }\n    what: { ssh: { logins: [deploy], shell: true } }\n' } }, 200);

    browser = await launchChromium();
    // Another sign-in of the same person, in a browser of its own.
    elsewhere = await dashboardContext(browser);
    await signInToDashboard(await elsewhere.newPage(), server, PERSON, '/apps');
    page = await (await dashboardContext(browser)).newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await signInToDashboard(page, server, PERSON, '/');
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
  });

  test('the start page is My apps, the nav has only portal pages, and the apps are exactly the allowed sockets', async () => {
    await page.waitForURL((url) => url.pathname === '/' || url.pathname === '/apps', { timeout: WAIT_MS });
    await page.getByRole('heading', { name: 'My apps' }).waitFor({ timeout: WAIT_MS });
    const nav = await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts();
    assert.ok(nav.includes('My apps') && nav.includes('My sessions'), nav.join(', '));
    assert.deepEqual(nav.filter((label) => ADMIN_NAV.includes(label)), [], 'no admin page in the nav');

    const apps = page.getByRole('list', { name: 'Apps' }).getByRole('listitem');
    await apps.first().waitFor({ timeout: WAIT_MS });
    const names = await Promise.all((await apps.all()).map((item) => item.getAttribute('aria-label')));
    assert.deepEqual(names, ['db', 'prod', 'wiki']);
    const prod = page.getByRole('listitem', { name: 'prod' });
    assert.match(await prod.innerText(), /ssh deploy@prod\.localhost/);
    assert.match(await prod.innerText(), /postern client ssh-config >> ~\/\.ssh\/config/);
    assert.equal(await prod.getByRole('link', { name: 'Open the web terminal' }).getAttribute('href'), '/terminal/prod');
    assert.match(await page.getByRole('listitem', { name: 'db' }).innerText(), /postern client tls --host db\.localhost --listen 127\.0\.0\.1:5433/);
    assert.match(String(await page.getByRole('listitem', { name: 'wiki' }).getByRole('link', { name: 'Open wiki' }).getAttribute('href')), /^https:\/\/wiki\.localhost:\d+\/$/);
    await screenshot(page, 'apps');
    assert.deepEqual(problems, []);
  });

  test('admin pages typed by hand show no admin data; the admin API answers 403 even with the CSRF header', async () => {
    for (const path of ['/sockets', '/recordings', '/overview']) {
      await page.goto(`${server.url}${path}`);
      await page.getByRole('heading', { name: 'Not found' }).waitFor({ timeout: WAIT_MS });
      const text = await page.locator('main').innerText();
      assert.doesNotMatch(text, /payroll|vault/, `${path} shows nothing of the admin's`);
    }
    const statuses = await page.evaluate(async () => {
      const me = await (await fetch('/api/v1/me')).json() as { csrf: string };
      const headers = { 'content-type': 'application/json', 'x-csrf-token': me.csrf };
      const get = async (path: string) => (await fetch(path, { headers })).status;
      return {
        sockets: await get('/api/v1/sockets'),
        recordings: await get('/api/v1/recordings'),
        users: await get('/api/v1/users'),
        audit: await get('/api/v1/audit'),
        create: (await fetch('/api/v1/sockets', { method: 'POST', headers, body: JSON.stringify({ name: 'from-portal', type: 'http', upstream: 'http://127.0.0.1:9' }) })).status,
        apps: await get('/api/v1/me/apps'),
      };
    });
    assert.deepEqual(statuses, { sockets: 403, recordings: 403, users: 403, audit: 403, create: 403, apps: 200 });
    assert.equal((await api(server, '/api/v1/sockets/from-portal')).status, 404, 'nothing was created');
  });

  test('they sign out their other sign-in from My sessions', async () => {
    await page.goto(`${server.url}/me/sessions`);
    const rows = page.getByRole('row').filter({ has: page.getByRole('button') });
    await rows.first().waitFor({ timeout: WAIT_MS });
    assert.equal(await rows.count(), 2);
    const other = rows.filter({ hasNot: page.getByText('this browser') });
    await other.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, undefined, { timeout: WAIT_MS });
    assert.match(await rows.first().innerText(), /this browser/);
    const elsewherePage = elsewhere.pages()[0]!;
    assert.equal(await elsewherePage.evaluate(async () => (await fetch('/api/v1/me')).status), 401, 'the other browser is signed out');
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/me')).status), 200, 'this one is not');
    assert.deepEqual(problems, []);
  });
});
