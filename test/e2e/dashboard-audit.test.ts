// E2E: the audit page in a real Chromium on a real server with a connector: real events (admin
// changes, allowed and denied HTTP requests, a killed `tls` connection), filters by type, decision,
// user and time kept in the URL, free-text search, "Load older" keyset pages, expandable rows, the
// live tail, and CSV/JSONL exports of everything the filter selects — under the strict CSP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { CSV_COLUMNS } from '../../src/control/audit-api.js';
import type { AuditEventView, AuditPage } from '../../src/control/audit-types.js';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { SignInBrowser } from '../helpers/browser.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir, waitFor, withTimeout } from '../helpers/util.js';
import { DASHBOARD_PASSWORD, createPerson, dashboardContext, launchChromium, needsChromium, screenshot, signInToDashboard } from '../helpers/dashboard.js';

const ADMIN = 'root@corp.example';
const USER = 'ana@corp.example';
/** More allowed requests than two pages of the audit page (50 rows each) hold. */
const REQUESTS = 120;

describe('the audit page', needsChromium, () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let echo: net.Server;
  let browser: Browser;
  let page: Page;
  let person: SignInBrowser;
  let appUrl: string;
  const problems: string[] = [];

  /** What the API selects for `query` (up to 1000 events unless it says; oldest first unless it says), with the admin token. */
  const selected = async (query: string): Promise<AuditEventView[]> => {
    const params = new URLSearchParams(query);
    if (!params.has('limit')) params.set('limit', '1000');
    const res = await api(server, `/api/v1/audit?${params}`);
    assert.equal(res.status, 200, res.text);
    return res.json<AuditPage>().events;
  };
  /** The event ids of the rows on screen, top to bottom (each row's details button names its event). */
  const rowIds = async (): Promise<number[]> => {
    const labels = await page.getByRole('button', { name: /^Details of event \d+$/ }).evaluateAll((buttons) => buttons.map((b) => b.getAttribute('aria-label') ?? ''));
    return labels.map((label) => Number(/\d+$/.exec(label)![0]));
  };
  const filters = () => page.getByRole('form', { name: 'Audit filters' });
  /** Sets the filters as a person would and applies them; waits for the table (or the empty state) to show the result. */
  const applyFilters = async (values: { user?: string; type?: string; decision?: string; from?: string; to?: string; q?: string }) => {
    const form = filters();
    const clear = form.getByRole('button', { name: 'Clear' });
    if (await clear.isEnabled()) await clear.click();
    await page.waitForURL((url) => url.pathname === '/audit' && url.search === '');
    if (values.user !== undefined) await form.getByLabel('User', { exact: true }).fill(values.user);
    if (values.type !== undefined) await form.getByRole('combobox', { name: /^Type/ }).selectOption(values.type);
    if (values.decision !== undefined) await form.getByRole('combobox', { name: /^Decision/ }).selectOption(values.decision);
    if (values.from !== undefined) await form.getByLabel('From', { exact: true }).fill(values.from);
    if (values.to !== undefined) await form.getByLabel('To', { exact: true }).fill(values.to);
    if (values.q !== undefined) await form.getByLabel('Search', { exact: true }).fill(values.q);
    await form.getByRole('button', { name: 'Apply' }).click();
  };
  /** Waits (bounded) until the rows on screen are exactly `ids`. */
  const waitForRows = async (ids: readonly number[], what: string) => {
    await waitFor(async () => JSON.stringify(await rowIds()) === JSON.stringify(ids), { timeoutMs: 10_000, what: `${what}: rows ${JSON.stringify(ids)}` })
      .catch(async (err: unknown) => assert.fail(`${String(err)}; on screen ${JSON.stringify(await rowIds())}`));
  };
  const newestFirst = (events: readonly AuditEventView[]) => events.map((e) => e.id).reverse();

  before(async () => {
    upstream = await startUpstream();
    echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as net.AddressInfo).port;
    server = await startServer();
    await createPerson(server, ADMIN, ['admins']);
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: USER, password: DASHBOARD_PASSWORD } })).status, 201);
    for (const body of [
      { name: 'app', type: 'http', upstream: upstream.url, allowed_email_domains: ['corp.example'] },
      { name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}`, allowed_email_domains: ['corp.example'] },
    ]) {
      const created = await api(server, '/api/v1/sockets', { method: 'POST', body });
      assert.equal(created.status, 201, created.text);
    }
    const dir = (await tempDir()).path;
    const policy = join(dir, 'ledger.yaml');
    await writeFile(policy, 'name: ledger\nsockets: [app]\nrules:\n  - name: ledger-closed\n    effect: deny\n    what: { http: { paths: ["/ledger/*"] } }\n');
    const applied = await server.cli(['policy', 'apply', '-f', policy]);
    assert.equal(applied.code, 0, applied.stderr);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'audit', '--socket', 'app', '--socket', 'db']);
    const config = await writeConnectorConfig(dir, 'c.yaml', {
      server: server.url, token: token.stdout.trim(),
      sockets: [{ name: 'app', type: 'http', upstream: upstream.url }, { name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}` }],
    });
    await startConnector(['connector', 'start', '--config', config], server.env);

    appUrl = `https://app.localhost:${server.port}`;
    person = new SignInBrowser(server, DASHBOARD_PASSWORD);
    assert.equal((await person.signIn(`${appUrl}/`, USER)).status, 200);
    for (let i = 0; i < REQUESTS; i++) assert.equal((await person.request(`${appUrl}/hello?n=${i}`)).status, 200);
    assert.equal((await person.request(`${appUrl}/ledger/2026`)).status, 403);

    // A live tls connection as USER, killed through the API.
    const { keyPem, csrPem } = await createKeyAndCsr(USER);
    const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: USER, ttl_seconds: 600 } });
    assert.equal(issued.status, 201, issued.text);
    const client = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'db.localhost', ca: server.caPem, key: keyPem, cert: issued.json<{ certificate: string }>().certificate });
    client.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await withTimeout(new Promise<void>((resolve) => {
      client.once('secureConnect', () => client.write('ping\n'));
      client.once('data', () => resolve());
    }), 10_000, 'the echo through the tls socket');
    const live = await waitFor(async () => (await api(server, '/api/v1/connections?socket=db')).json<{ connections: { id: string }[] }>().connections[0], { timeoutMs: 10_000, what: 'the live connection' });
    assert.equal((await api(server, `/api/v1/connections/${encodeURIComponent(live.id)}`, { method: 'DELETE' })).status, 204);
    await withTimeout(closed, 5_000, 'the killed connection to close');

    browser = await launchChromium();
    page = await (await dashboardContext(browser)).newPage();
    await signInToDashboard(page, server, ADMIN, '/audit');
    // From here on, signed in: the sign-in's own 401 from /api/v1/me is not the audit page's.
    page.on('console', (message) => {
      if (message.type() === 'error' || /Content.Security.Policy/i.test(message.text())) problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.getByRole('heading', { name: 'Audit' }).waitFor({ timeout: 10_000 });
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
    await upstream?.close();
    await new Promise<void>((resolve) => echo?.close(() => resolve()));
  });

  test('filtering by type shows only the kill, with the killer and the connection\'s user; the filters survive a reload', async () => {
    const [kill, ...others] = await selected('type=connection.killed');
    assert.ok(kill && others.length === 0, 'exactly one kill');
    await applyFilters({ type: 'connection.killed' });
    await page.waitForURL((url) => url.search === '?type=connection.killed');
    await waitForRows([kill.id], 'the kill alone');
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: `Details of event ${kill.id}` }) });
    await row.getByText(kill.actor, { exact: false }).first().waitFor();
    await row.getByText(USER, { exact: false }).waitFor();
    await row.getByText('db', { exact: true }).waitFor();

    await page.reload();
    await waitForRows([kill.id], 'the kill after a reload');
    assert.equal(await filters().getByRole('combobox', { name: /^Type/ }).inputValue(), 'connection.killed', 'the form shows the filter from the URL');

    await row.getByRole('button', { name: `Details of event ${kill.id}` }).click();
    const details = page.getByRole('row').locator('pre');
    await details.waitFor();
    assert.deepEqual(JSON.parse(await details.innerText()), kill, 'the expanded row is the event\'s JSON');
    assert.equal(await row.getByRole('button', { name: `Details of event ${kill.id}` }).getAttribute('aria-expanded'), 'true');
  });

  test('decision deny shows only denies; a user shows only that user\'s events; a time range before everything is empty', async () => {
    const denies = await selected('decision=deny');
    assert.ok(denies.some((e) => e.type === 'http.request' && e.details.path === '/ledger/2026'), JSON.stringify(denies));
    await applyFilters({ decision: 'deny' });
    await waitForRows(newestFirst(denies), 'the denies');
    await page.getByRole('row').filter({ hasText: '/ledger/2026' }).getByText('deny', { exact: true }).waitFor();

    await applyFilters({ user: USER });
    await page.waitForURL((url) => url.searchParams.get('user') === USER);
    const mine = await selected(`user=${encodeURIComponent(USER)}&order=desc&limit=50`);
    assert.ok(mine.length === 50 && mine.every((e) => e.actor === USER));
    await waitForRows(mine.map((e) => e.id), 'the user\'s newest events');

    await applyFilters({ from: '2001-01-01T00:00', to: '2001-01-02T00:00' });
    await page.getByText('No events match.').waitFor({ timeout: 10_000 });
    assert.deepEqual(await rowIds(), []);
    await page.reload();
    await page.getByText('No events match.').waitFor({ timeout: 10_000 });
  });

  test('free-text search finds the denied request by a word of its reason', async () => {
    const [denied] = (await selected('decision=deny&type=http.request'));
    assert.ok(denied);
    const word = /ledger-closed/.test(denied.reason) ? 'ledger' : assert.fail(`the reason names the rule: ${denied.reason}`);
    const found = await selected(`q=${word}`);
    assert.ok(found.some((e) => e.id === denied.id));
    await applyFilters({ q: word });
    await page.waitForURL((url) => url.searchParams.get('q') === word);
    await waitForRows(newestFirst(found), 'the search results');
  });

  test('"Load older" pages through every request once, in order', async () => {
    const requests = await selected('type=http.request');
    // The sign-in's landing page, the allowed requests and the denied one: three pages of 50.
    assert.equal(requests.length, 1 + REQUESTS + 1);
    await applyFilters({ type: 'http.request' });
    const expected = newestFirst(requests);
    await waitForRows(expected.slice(0, 50), 'the first page');
    const older = page.getByRole('button', { name: 'Load older' });
    await older.click();
    await waitForRows(expected.slice(0, 100), 'two pages');
    await older.click();
    await waitForRows(expected, 'every request, each once');
    assert.equal(new Set(await rowIds()).size, requests.length, 'no row twice');
    await older.waitFor({ state: 'detached', timeout: 5_000 });
  });

  test('the exports hold every event the filter selects, not just the page', async () => {
    const requests = await selected('type=http.request');
    const download = async (name: string) => {
      const href = await page.getByRole('link', { name }).getAttribute('href');
      assert.ok(href !== null && href.startsWith('/api/v1/audit/export?'), String(href));
      assert.equal(new URL(href, server.url).searchParams.get('type'), 'http.request');
      return page.evaluate(async (url) => {
        const res = await fetch(url);
        return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
      }, href);
    };
    const jsonl = await download('Export JSONL');
    assert.equal(jsonl.status, 200);
    assert.match(jsonl.type, /^application\/x-ndjson/);
    assert.deepEqual(jsonl.text.trimEnd().split('\n').map((line) => JSON.parse(line) as AuditEventView), requests);

    const csv = await download('Export CSV');
    assert.equal(csv.status, 200);
    assert.match(csv.type, /^text\/csv/);
    const [header, ...lines] = csv.text.trimEnd().split('\r\n');
    assert.equal(header, CSV_COLUMNS.join(','));
    assert.deepEqual(lines.map((line) => Number(line.split(',')[0])), requests.map((e) => e.id));
  });

  test('the live tail puts a new event on top without a reload', async () => {
    await applyFilters({});
    const before = await selected('order=desc&limit=50');
    await waitForRows(before.map((e) => e.id), 'the newest events');
    const loads: string[] = [];
    page.on('load', () => loads.push(page.url()));
    await filters().getByLabel('Live tail', { exact: true }).check();
    const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'tailed', type: 'http', upstream: upstream.url } });
    assert.equal(created.status, 201, created.text);
    const top = page.getByRole('row').nth(1);
    await top.filter({ hasText: 'tailed' }).waitFor({ timeout: 5_000 });
    await top.getByText('admin.change').waitFor();
    assert.deepEqual((await rowIds()).slice(1), before.map((e) => e.id), 'the new row is added above the rows already shown');
    assert.deepEqual(loads, [], 'the page never reloaded');
    await screenshot(page, 'audit');

    // The tail follows the filter: with decision deny, a new deny arrives and an allowed request does not.
    await applyFilters({ decision: 'deny' });
    const denies = newestFirst(await selected('decision=deny'));
    await waitForRows(denies, 'the denies');
    assert.equal((await person.request(`${appUrl}/hello?after=tail`)).status, 200);
    assert.equal((await person.request(`${appUrl}/ledger/tailed`)).status, 403);
    await page.getByRole('row').nth(1).filter({ hasText: '/ledger/tailed' }).waitFor({ timeout: 5_000 });
    const [newDeny] = await selected('decision=deny&order=desc&limit=1');
    await waitForRows([newDeny!.id, ...denies], 'the new deny on top of the denies, nothing else');
    assert.deepEqual(loads, [], 'the page never reloaded');
  });

  test('no CSP violation and no page error', () => {
    assert.deepEqual(problems, []);
  });
});
