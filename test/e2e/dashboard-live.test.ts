// E2E: an admin watches live sessions in a real Chromium on a real server with a connector and a
// `tls` socket: a client's connection appears on /sessions without a reload, Kill (confirmed)
// closes it at the client within a second, and the overview counts live connections.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import type { Browser, Page } from 'playwright-core';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { tempDir, withTimeout } from '../helpers/util.js';
import { createPerson, dashboardContext, launchChromium, needsChromium, screenshot, signInToDashboard } from '../helpers/dashboard.js';

const ADMIN = 'root@corp.example';
const USER = 'ana@corp.example';
/** The bound for a kill to reach the client, plus slack for a loaded 2-core machine. */
const KILL_BOUND_MS = 1_000;
const KILL_SLACK_MS = 1_000;

describe('the live sessions and overview pages', needsChromium, () => {
  let server: ServerHandle;
  let echo: net.Server;
  let browser: Browser;
  let page: Page;

  /** A tls connection through `db` as USER, echoed once; `closed` resolves with the time the client saw the close. */
  const connect = async () => {
    const { keyPem, csrPem } = await createKeyAndCsr(USER);
    const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: USER, ttl_seconds: 600 } });
    assert.equal(issued.status, 201, issued.text);
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'db.localhost', ca: server.caPem, key: keyPem, cert: issued.json<{ certificate: string }>().certificate });
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => socket.write('ping\n'));
      socket.once('data', () => resolve());
      socket.once('close', () => reject(new Error('the edge closed the connection')));
    }), 10_000, 'the echo through the tls socket');
    return { socket, closed };
  };

  before(async () => {
    echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as net.AddressInfo).port;
    server = await startServer();
    await createPerson(server, ADMIN, ['admins']);
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: USER } })).status, 201);
    const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}`, allowed_email_domains: ['corp.example'] } });
    assert.equal(created.status, 201, created.text);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'live', '--socket', 'db']);
    const config = await writeConnectorConfig((await tempDir()).path, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${echoPort}` }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
    browser = await launchChromium();
    page = await (await dashboardContext(browser)).newPage();
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
    await new Promise<void>((resolve) => echo?.close(() => resolve()));
  });

  test('a connection appears without a reload; Kill, confirmed, closes it at the client within a second', async () => {
    await signInToDashboard(page, server, ADMIN, '/sessions');
    await page.getByRole('heading', { name: 'Live sessions' }).waitFor({ timeout: 10_000 });
    await page.getByRole('status', { name: 'Stream' }).filter({ hasText: 'live' }).waitFor({ timeout: 10_000 });
    await page.getByText('No live connections right now.').waitFor({ timeout: 5_000 });
    const loads: string[] = [];
    page.on('load', () => loads.push(page.url()));

    const client = await connect();
    const row = page.getByRole('row').filter({ hasText: USER }).filter({ hasText: 'db' });
    await row.waitFor({ timeout: 5_000 });
    await page.getByRole('region', { name: `Connections of ${USER}` }).waitFor();
    await screenshot(page, 'sessions');

    await row.getByRole('button', { name: /^Kill:/ }).click();
    const confirm = page.getByRole('group', { name: 'Confirm: Kill' });
    await confirm.getByText(`Kill the db connection of ${USER}`, { exact: false }).waitFor();
    const clicked = Date.now();
    await confirm.getByRole('button', { name: 'Confirm kill' }).click();
    const closedAt = await withTimeout(client.closed, KILL_BOUND_MS + KILL_SLACK_MS, 'the killed connection to close at the client');
    console.log(`# dashboard Kill click → client close: ${closedAt - clicked} ms`);
    await page.getByRole('status').filter({ hasText: `Killed the db connection of ${USER}.` }).waitFor({ timeout: 2_000 });
    await row.waitFor({ state: 'detached', timeout: 5_000 });
    assert.deepEqual(loads, [], 'the page never reloaded');
  });

  test('the overview counts the live connection and links to the pages behind each figure', async () => {
    const client = await connect();
    try {
      await page.getByRole('row').filter({ hasText: USER }).waitFor({ timeout: 5_000 });
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
      const live = page.getByRole('region', { name: 'Live connections' });
      await live.getByText('1', { exact: true }).waitFor({ timeout: 5_000 });
      await page.getByRole('region', { name: 'Sockets online' }).filter({ hasText: '1 / 1' }).waitFor();
      await page.getByRole('img', { name: /\d+ allowed and \d+ denied in 24 buckets of 5 minutes/ }).waitFor();
      assert.equal(await page.getByRole('region', { name: 'Denies in the last hour' }).getByRole('link').getAttribute('href'), '/audit?decision=deny');
      assert.equal(await live.getByRole('link').getAttribute('href'), '/sessions');
      await screenshot(page, 'overview');
    } finally {
      client.socket.destroy();
    }
  });
});
