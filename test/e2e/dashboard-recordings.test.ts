// E2E: the dashboard's recordings in a real Chromium, over a real managed SSH socket (OpenSSH
// client → edge → connector → sshd on loopback). A shell types `echo typed-in-session`; the
// admin finds it by search, opens it and the player shows the text, with seek and speed controls;
// a shell still running is LIVE on the list and its watch view shows new text as it is typed.
// The strict CSP holds throughout: any violation fails the test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startManagedSsh } from '../helpers/managed-ssh.js';
import type { ManagedSsh } from '../helpers/managed-ssh.js';
import { cleanupAll } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { haveOpenSsh } from '../helpers/sshd.js';
import { waitFor } from '../helpers/util.js';
import { createPerson, dashboardContext, launchChromium, needsChromium, screenshot, signInToDashboard } from '../helpers/dashboard.js';
import type { RecordingList, RecordingView } from '../../src/control/recording-types.js';

const ADMIN = 'root@corp.example';
const WAIT_MS = 15_000;

/** Every CSP violation and console error the page reports, collected for the end of each test. */
function watchCsp(page: Page): string[] {
  const problems: string[] = [];
  void page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Content-Security-Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return problems;
}

/** Waits (bounded) until the player's terminal shows `text`; a timeout names what the page reported. */
async function playerShows(page: Page, text: string, problems: readonly string[]): Promise<void> {
  try {
    await page.waitForFunction((wanted) => document.querySelector('[data-testid=player]')?.textContent?.includes(wanted) ?? false, text, { timeout: WAIT_MS });
  } catch (err) {
    throw new Error(`the player never showed "${text}"; the page reported: ${problems.join(' | ') || 'nothing'}`, { cause: err });
  }
}

async function recordingOf(f: ManagedSsh, connectionId: string, ended: boolean): Promise<RecordingView> {
  return waitFor(async () => {
    const listed = (await api(f.server, `/api/v1/recordings?connection=${connectionId}`)).json<RecordingList>();
    return listed.recordings.find((r) => r.kind === 'shell' && (r.endedAt !== null) === ended);
  }, { what: `the ${ended ? 'ended' : 'live'} recording of ${connectionId}`, timeoutMs: WAIT_MS, intervalMs: 250 });
}

describe('dashboard: recordings replay and watch live', { ...needsChromium, skip: needsChromium.skip || (!haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false) }, () => {
  let f: ManagedSsh;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  before(async () => {
    f = await startManagedSsh({ recordInput: true });
    await createPerson(f.server, ADMIN, ['admins']);
    browser = await launchChromium();
    page = await (await dashboardContext(browser)).newPage();
    problems = watchCsp(page);
    await signInToDashboard(page, f.server, ADMIN, '/recordings');
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
    await f?.stop();
  });

  test('a recorded shell is found by search, opened, and the player shows what was typed', async () => {
    const { term, connection } = await f.openShell();
    await term.type('echo typed-in-session; exit\r');
    await term.waitFor(/[\r\n]typed-in-session\r\n/);
    await term.waitForExit(10_000);
    const recording = await recordingOf(f, connection.id, true);
    // The player's live form of the cast: one server-sent event per line, then `done`.
    const sse = await api(f.server, `/api/v1/recordings/${recording.id}/cast?format=sse`);
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    const messages = sse.text.split('\n\n').filter(Boolean);
    assert.deepEqual(JSON.parse(messages[0]!.replace(/^data: /, '')).version, 2);
    assert.ok(messages.some((m) => m.startsWith('data: [') && m.includes('typed-in-session')), sse.text);
    assert.equal(messages.at(-1), 'event: done\ndata: end');

    await page.getByLabel('Search what was typed or shown').fill('typed-in-session');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL((url) => url.searchParams.get('q') === 'typed-in-session', { timeout: WAIT_MS });
    const row = page.getByRole('row').filter({ hasText: 'typed-in-session' }).first();
    await row.waitFor({ timeout: WAIT_MS });
    assert.match(await row.innerText(), /typed/, 'the moment and where it appears');
    await row.getByRole('link').click();
    await page.waitForURL((url) => url.pathname === `/recordings/${recording.id}`, { timeout: WAIT_MS });

    await playerShows(page, 'typed-in-session', problems);
    await page.getByRole('button', { name: 'Back 10 seconds' }).waitFor({ timeout: WAIT_MS });
    await page.getByRole('button', { name: 'Forward 10 seconds' }).waitFor({ timeout: WAIT_MS });
    await page.getByLabel('Speed').selectOption('2');
    await playerShows(page, 'typed-in-session', problems);
    await screenshot(page, 'recording');
    assert.deepEqual(problems, [], 'no CSP violation, no page error');
  });

  test('a shell in progress is LIVE on the list and its watch view shows new text as it is typed', async () => {
    const { term, connection } = await f.openShell();
    try {
      await term.type('echo before-watching\r');
      await term.waitFor(/[\r\n]before-watching\r\n/);
      const live = await recordingOf(f, connection.id, false);

      await page.goto(`${f.server.url}/recordings`);
      const row = page.getByRole('row').filter({ has: page.getByText('LIVE', { exact: true }) }).first();
      await row.waitFor({ timeout: WAIT_MS });
      await row.getByRole('link').click();
      await page.waitForURL((url) => url.pathname === `/recordings/${live.id}`, { timeout: WAIT_MS });
      await playerShows(page, 'before-watching', problems);

      await term.type('echo typed-while-watching\r');
      await playerShows(page, 'typed-while-watching', problems);
    } finally {
      await term.type('exit\r').catch(() => undefined);
      await term.waitForExit(10_000).catch(() => undefined);
    }
    assert.deepEqual(problems, [], 'no CSP violation, no page error');
  });
});
