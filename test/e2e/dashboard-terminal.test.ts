// E2E: the dashboard's web terminal in Chromium, under the dashboard's real CSP, on a managed SSH
// socket in front of a real sshd (the fixture of the managed SSH tests). The person types
// `echo hi` and sees `hi`; the session is the edge's like any `ssh` client's: a live connection an
// admin kills (the page says why), and a recording with the typed text, found by search.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { EMAIL, SOCKET, startManagedSsh } from '../helpers/managed-ssh.js';
import type { ManagedSsh } from '../helpers/managed-ssh.js';
import { DASHBOARD_PASSWORD, dashboardContext, launchChromium, needsChromium, screenshot, signInToDashboard } from '../helpers/dashboard.js';
import { api } from '../helpers/https.js';
import { cleanupAll } from '../helpers/processes.js';
import { LOGIN, haveOpenSsh } from '../helpers/sshd.js';
import { waitFor } from '../helpers/util.js';

const skip = needsChromium.skip || (!haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false);

describe('dashboard: the web terminal', { skip }, () => {
  let f: ManagedSsh;
  let browser: Browser | undefined;

  before(async () => {
    f = await startManagedSsh({ recordInput: true });
    const password = await api(f.server, `/api/v1/users/${EMAIL}`, { method: 'PATCH', body: { password: DASHBOARD_PASSWORD } });
    assert.equal(password.status, 200, password.text);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
    await f?.stop();
  });

  test('echo hi in the browser: the output appears, the session is live, killable and recorded with what was typed', async () => {
    const context = await dashboardContext(browser!);
    try {
      const page = await context.newPage();
      const cspViolations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
      });
      const known = new Set((await f.liveConnections()).map((c) => c.id));
      await signInToDashboard(page, f.server, EMAIL, `/terminal/${SOCKET}?login=${LOGIN}`);
      await page.getByRole('status').filter({ hasText: `Connected to ${LOGIN}@${SOCKET}` }).waitFor({ timeout: 20_000 });
      const screen = page.getByRole('region', { name: `Terminal ${LOGIN}@${SOCKET}` });
      const connection = await f.waitForNewConnection(known);
      assert.equal(connection.email, EMAIL, 'the edge holds the session as the person');

      await waitFor(async () => /[$#]\s*$/.test(await screen.innerText()), { what: 'the shell prompt', timeoutMs: 10_000, intervalMs: 100 });
      await screen.click();
      await page.keyboard.type('echo hi');
      await page.keyboard.press('Enter');
      await waitFor(async () => /^hi\s*$/m.test(await screen.innerText()), { what: 'hi on its own line in the terminal', timeoutMs: 10_000, intervalMs: 100 });
      // xterm's theme reaches the screen although the CSP applies no inline <style>: its rules are adopted through CSSOM.
      const color = await page.locator('.xterm-rows').evaluate((element) => getComputedStyle(element).color);
      assert.equal(color, 'rgb(223, 230, 238)', 'the theme foreground applies');
      await screenshot(page, 'terminal');

      const started = await f.waitForEvent('ssh.session.start', (e) => e.connectionId === connection.id, 'the session start in the audit trail');
      assert.match(String(started.details.client), /postern-web-terminal/);

      const killed = await f.server.cli(['sessions', 'kill', connection.id]);
      assert.equal(killed.code, 0, killed.stderr);
      await page.getByRole('alert').filter({ hasText: /postern: killed by an administrator/ }).waitFor({ timeout: 5_000 });
      await page.getByRole('button', { name: 'Reconnect' }).waitFor({ timeout: 1_000 });
      assert.match(await screen.innerText(), /postern: killed by an administrator/, 'the terminal itself says why, as ssh does');

      const recordings = await waitFor(async () => {
        const res = await api(f.server, `/api/v1/recordings?socket=${SOCKET}&connection=${connection.id}`);
        assert.equal(res.status, 200, res.text);
        const list = res.json<{ recordings: { id: string; email: string; login: string; kind: string; endedAt: string | null }[] }>().recordings;
        return list.some((r) => r.endedAt !== null) ? list : undefined;
      }, { what: `the ended recording of ${connection.id}`, timeoutMs: 10_000, intervalMs: 250 });
      assert.deepEqual(recordings.map((r) => [r.email, r.login, r.kind]), [[EMAIL, LOGIN, 'shell']]);
      const search = await api(f.server, `/api/v1/recordings/search?socket=${SOCKET}&q=${encodeURIComponent('echo hi')}`);
      assert.equal(search.status, 200, search.text);
      assert.ok(search.text.includes(recordings[0]!.id), `searching the typed text finds the recording: ${search.text}`);

      assert.deepEqual(cspViolations.filter((text) => !/style/i.test(text)), [], 'nothing but inline styles is refused by the CSP');
    } finally {
      await context.close();
    }
  });

  test('/terminal lists the managed SSH sockets and logins the policy allows; a button opens that shell', async () => {
    const context = await dashboardContext(browser!);
    try {
      const page = await context.newPage();
      await signInToDashboard(page, f.server, EMAIL, '/terminal');
      const card = page.getByRole('list', { name: 'SSH sockets' }).getByRole('listitem', { name: SOCKET });
      await card.getByRole('link', { name: `${LOGIN}@${SOCKET}` }).waitFor({ timeout: 10_000 });
      await screenshot(page, 'terminal-sockets');
      await card.getByRole('link', { name: `${LOGIN}@${SOCKET}` }).click();
      await page.getByRole('status').filter({ hasText: `Connected to ${LOGIN}@${SOCKET}` }).waitFor({ timeout: 20_000 });
      assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, `/terminal/${SOCKET}?login=${LOGIN}`);
      await page.goto(`${f.server.url}/terminal`);
      await page.getByRole('button', { name: 'Open terminal' }).waitFor({ timeout: 5_000 });
      // The list comes from /api/v1/me/apps after the form is shown: wait for it before counting.
      const links = page.getByRole('list', { name: 'SSH sockets' }).getByRole('link');
      await links.first().waitFor({ timeout: 10_000 });
      assert.equal(await links.count(), 1, 'one socket, one allowed login');
    } finally {
      await context.close();
    }
  });
});
