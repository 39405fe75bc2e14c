// E2E: issue 14's "done when", as one story in a real Chromium on a fresh server, with no CLI and
// no admin token for the admin's part: the first admin sets a password through the printed setup
// link; publishes a `tls` socket in front of an echo server through a connector enrolled with the
// YAML the connectors page shows; creates a person and a policy that lets them in; the person
// sets their password from the invitation link, finds the app in their portal and connects with
// the command it gives; the admin sees the connection live, kills it, and reads the kill in the audit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { cleanupAll, spawnCli, startConnector, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { signedInLaptop } from '../helpers/login.js';
import { freePort, tempDir, withTimeout } from '../helpers/util.js';
import { DASHBOARD_PASSWORD, dashboardContext, launchChromium, needsChromium, screenshot } from '../helpers/dashboard.js';
import type { AuditPage } from '../../src/control/audit-types.js';

const ADMIN = 'founder@corp.example';
const ADMIN_PASSWORD = 'first-run: a long admin passphrase';
const PERSON = 'ana@corp.example';
const WAIT = { timeout: 10_000 };
/** The bound for a kill to reach the client, plus slack for a loaded 2-core machine and the local forwarder. */
const KILL_BOUND_MS = 3_000;
const POLICY = `name: ana-db\nsockets: [db]\nrules:\n  - name: ana\n    effect: allow\n    who: { email: [${PERSON}] }\n`;

describe('first run: set up, publish, give access, watch, kill and audit, all in the browser', needsChromium, () => {
  let server: ServerHandle;
  let echo: net.Server;
  let echoPort: number;
  let browser: Browser;
  let admin: Page;
  let personContext: BrowserContext;
  const loads: string[] = [];

  before(async () => {
    echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as net.AddressInfo).port;
    server = await startServer();
    browser = await launchChromium();
    admin = await (await dashboardContext(browser)).newPage();
    personContext = await dashboardContext(browser);
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
    await new Promise<void>((resolve) => echo?.close(() => resolve()));
  });

  test('1. the printed setup link makes the first admin, signed in on the overview', async () => {
    const link = (await server.process.waitForOutput(/First admin\s+(https:\/\/\S+\/setup\?token=\S+)/, { timeoutMs: 5_000 }))[1]!;
    await admin.goto(link);
    await admin.getByRole('heading', { name: 'Set up Postern' }).waitFor(WAIT);
    await admin.getByLabel('Email').fill(ADMIN);
    await admin.getByLabel('Password').fill(ADMIN_PASSWORD);
    await admin.getByLabel('Again').fill(ADMIN_PASSWORD);
    await screenshot(admin, 'first-run-setup');
    await admin.getByRole('button', { name: 'Create admin and sign in' }).click();
    await admin.getByRole('heading', { name: 'Overview' }).waitFor(WAIT);
    await admin.getByText(ADMIN).first().waitFor(WAIT);
    const nav = await admin.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts();
    assert.ok(['Overview', 'Sessions', 'Sockets', 'Connectors', 'Users', 'Policies', 'Audit'].every((label) => nav.includes(label)), nav.join(', '));
  });

  test('2. a tls socket is created, a connector joins with the YAML the page shows, and the socket goes online', async () => {
    const nav = admin.getByRole('navigation', { name: 'Main' });
    const tokenForm = admin.getByRole('form', { name: 'Create join token' });
    const askForToken = async () => {
      await admin.getByRole('button', { name: 'Create join token' }).click();
      await tokenForm.getByLabel(/^Connector name/).fill('office');
      await tokenForm.getByLabel(/^Sockets it may serve/).fill('db');
      await tokenForm.getByRole('button', { name: 'Create token' }).click();
    };
    // A first-timer who starts with the connector is told to create the socket first.
    await nav.getByRole('link', { name: 'Connectors' }).click();
    await admin.getByRole('heading', { name: 'Connectors', exact: true }).waitFor(WAIT);
    await askForToken();
    await admin.getByRole('alert').filter({ hasText: 'socket "db" does not exist (create it first' }).waitFor(WAIT);
    await tokenForm.getByRole('button', { name: 'Cancel' }).click();

    await nav.getByRole('link', { name: 'Sockets' }).click();
    await admin.getByRole('heading', { name: 'Sockets', exact: true }).waitFor(WAIT);
    await admin.getByRole('button', { name: 'Create socket' }).click();
    const form = admin.getByRole('form', { name: 'Create socket' });
    await form.getByLabel(/^Name/).fill('db');
    await form.getByLabel(/^Type/).selectOption('tls');
    await form.getByLabel(/^Upstream target/).fill(`tcp://127.0.0.1:${echoPort}`);
    // Until a policy says otherwise, only the admin may connect.
    await form.getByText('Every connection needs a Postern client certificate.', { exact: false }).waitFor(WAIT);
    await form.getByLabel(/^Allowed email addresses/).fill(ADMIN);
    await form.getByRole('button', { name: 'Create socket' }).click();
    await admin.getByRole('heading', { name: 'Socket db' }).waitFor(WAIT);

    await nav.getByRole('link', { name: 'Connectors' }).click();
    await admin.getByRole('heading', { name: 'Connectors', exact: true }).waitFor(WAIT);
    await askForToken();
    const shown = admin.getByRole('region', { name: 'New join token' });
    await shown.getByText('it will not be shown again').waitFor(WAIT);
    const yaml = (await shown.getByLabel('connector.yaml', { exact: true }).textContent())!;
    assert.match(yaml, new RegExp(`- name: "?db"?\\n +type: "?tls"?\\n +upstream: "?tcp://127\\.0\\.0\\.1:${echoPort}"?`), yaml);

    // The private host's operator saves the file and starts the connector beside the service.
    const dir = (await tempDir()).path;
    const config = join(dir, 'connector.yaml');
    await writeFile(config, yaml);
    const connector = await startConnector(['connector', 'start', '--config', config], server.env);
    await shown.getByRole('button', { name: 'Done' }).click();
    await admin.getByRole('row').filter({ hasText: connector.id }).filter({ hasText: 'online' }).waitFor({ timeout: 15_000 });

    await nav.getByRole('link', { name: 'Sockets' }).click();
    await admin.getByRole('row').filter({ hasText: 'db' }).filter({ hasText: 'online' }).waitFor(WAIT);
  });

  test('3. a person is created and a policy typed in the editor lets them reach the socket', async () => {
    const nav = admin.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Users' }).click();
    await admin.getByRole('heading', { name: 'Users and groups' }).waitFor(WAIT);
    await admin.getByRole('button', { name: 'Create user' }).click();
    const form = admin.getByRole('form', { name: 'Create user' });
    await form.getByLabel(/^Email/).fill(PERSON);
    await form.getByLabel(/^Name/).fill('Ana');
    await form.getByRole('button', { name: 'Create user' }).click();
    await admin.getByRole('button', { name: `Invitation link for ${PERSON}` }).click();
    const invite = (await admin.getByRole('region', { name: 'Invitation link' }).locator('pre').textContent())!.trim();
    assert.match(invite, /\/auth\/set-password\?token=/);

    // The person, in a browser of their own, sets a password from the link and signs in: no app is theirs yet.
    const person = await personContext.newPage();
    await person.goto(invite);
    await person.getByLabel('New password').fill(DASHBOARD_PASSWORD);
    await person.getByLabel('Again').fill(DASHBOARD_PASSWORD);
    await person.getByRole('button', { name: 'Set password' }).click();
    await person.waitForURL((url) => url.pathname === '/auth/login', WAIT);
    await person.fill('input[name=email]', PERSON);
    await person.fill('input[name=password]', DASHBOARD_PASSWORD);
    await person.click('button[type=submit]');
    await person.getByRole('heading', { name: 'My apps' }).waitFor(WAIT);
    await person.getByText('No app is open to you right now.').waitFor(WAIT);

    await nav.getByRole('link', { name: 'Policies' }).click();
    await admin.getByRole('heading', { name: 'Policies' }).waitFor(WAIT);
    await admin.getByRole('link', { name: 'New policy' }).click();
    const editor = admin.getByLabel('Policy YAML');
    await editor.fill(POLICY);
    await admin.getByText('No problems.').waitFor(WAIT);
    await admin.getByRole('button', { name: 'Save', exact: true }).click();
    await admin.getByRole('status').filter({ hasText: 'Saved as version 1.' }).waitFor(WAIT);
    await admin.waitForURL((url) => url.pathname === '/policies/ana-db', WAIT);
  });

  test('4–6. the person connects with their portal\'s command, the admin sees it live and kills it', async () => {
    const person = personContext.pages()[0]!;
    await person.reload();
    const card = person.getByRole('listitem', { name: 'db' });
    await card.waitFor(WAIT);
    const command = (await card.getByText(/^postern client tls /).textContent())!.trim();
    assert.equal(command, 'postern client tls --host db.localhost --listen 127.0.0.1:5433');

    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sessions', exact: true }).click();
    await admin.getByRole('heading', { name: 'Live sessions' }).waitFor(WAIT);
    await admin.getByRole('status', { name: 'Stream' }).filter({ hasText: 'live' }).waitFor(WAIT);
    await admin.getByText('No live connections right now.').waitFor(WAIT);
    admin.on('load', () => loads.push(admin.url()));

    // On their laptop, the person signs in (`postern login`) and runs the command, on a free local port.
    const laptop = await signedInLaptop(server, PERSON, DASHBOARD_PASSWORD);
    const localPort = await freePort();
    const args = command.split(' ').slice(1).map((arg) => (arg === '127.0.0.1:5433' ? `127.0.0.1:${localPort}` : arg));
    const forward = spawnCli('client tls', args, laptop);
    await forward.waitForOutput(/forwarding 127\.0\.0\.1:\d+ → db\.localhost/);
    const client = net.connect(localPort, '127.0.0.1');
    client.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => client.once('close', () => resolve(Date.now())));
    client.write('ping\n');
    await withTimeout(new Promise((resolve) => client.once('data', resolve)), 10_000, 'the echo through the tls socket');

    const row = admin.getByRole('row').filter({ hasText: PERSON }).filter({ hasText: 'db' });
    await row.waitFor(WAIT);
    await admin.getByRole('region', { name: `Connections of ${PERSON}` }).waitFor(WAIT);

    await row.getByRole('button', { name: /^Kill:/ }).click();
    const confirm = admin.getByRole('group', { name: 'Confirm: Kill' });
    await confirm.getByText(`Kill the db connection of ${PERSON}`, { exact: false }).waitFor(WAIT);
    const clicked = Date.now();
    await confirm.getByRole('button', { name: 'Confirm kill' }).click();
    const closedAt = await withTimeout(closed, KILL_BOUND_MS, 'the killed connection to close at the person\'s client');
    console.log(`# first run: Kill click → the person's connection closed: ${closedAt - clicked} ms`);
    await admin.getByRole('status').filter({ hasText: `Killed the db connection of ${PERSON}.` }).waitFor(WAIT);
    await row.waitFor({ state: 'detached', ...WAIT });
    assert.deepEqual(loads, [], 'the sessions page never reloaded');
  });

  test('7. the audit page filtered to connection.killed shows the kill by the admin; every admin change is the admin\'s', async () => {
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit' }).click();
    await admin.getByRole('heading', { name: 'Audit' }).waitFor(WAIT);
    const filters = admin.getByRole('form', { name: 'Audit filters' });
    await filters.getByLabel('Type').selectOption('connection.killed');
    await filters.getByRole('button', { name: 'Apply' }).click();
    await admin.waitForURL((url) => url.searchParams.get('type') === 'connection.killed', WAIT);
    const kill = admin.getByRole('row').filter({ has: admin.getByRole('cell', { name: 'connection.killed', exact: true }) });
    await kill.filter({ has: admin.getByRole('cell', { name: ADMIN, exact: true }) }).filter({ hasText: 'db' }).waitFor(WAIT);
    assert.equal(await kill.count(), 1);
    await kill.getByRole('button', { name: /^Details of event/ }).click();
    await admin.getByRole('row').filter({ hasText: `"user": "${PERSON}"` }).waitFor(WAIT);

    // Read as the admin's browser session, not with the token file.
    const changes = await admin.request.get(`${server.url}/api/v1/audit?type=admin.change&limit=200`);
    assert.equal(changes.status(), 200, await changes.text());
    const actors = ((await changes.json()) as AuditPage).events.map((e) => e.actor);
    assert.ok(actors.length >= 5, `socket, join token, user, invitation and policy changes: ${actors.join(', ')}`);
    assert.deepEqual([...new Set(actors)], [ADMIN], 'every admin change was made by the admin signed in to the dashboard');
    assert.ok(!actors.some((actor) => actor.startsWith('token:')));
  });
});
