// E2E: an admin in a real Chromium on a real server manages the inventory: a bad socket name is
// shown under the field and nothing is created; a socket made in the form exists in the API and
// its tags are edited; an ssh socket's page gives what to copy and deletes it; a join token made on the connectors page is shown once with the connector
// YAML, a real connector joins with the token copied from the page, and then the connector and
// the socket show online; a user is created and gets an invitation link; a sign-in provider is
// added (its secret never shown), disabled and deleted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { cleanupAll, startConnector, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir } from '../helpers/util.js';
import { createPerson, dashboardContext, launchChromium, needsChromium, screenshot, signInToDashboard } from '../helpers/dashboard.js';
import type { JoinTokenList, SocketList, SocketView, UserList } from '../../src/control/inventory-types.js';

const ADMIN = 'root@corp.example';

describe('the sockets, connectors and users pages', needsChromium, () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let browser: Browser;
  let page: Page;

  before(async () => {
    upstream = await startUpstream();
    server = await startServer();
    await createPerson(server, ADMIN, ['admins']);
    browser = await launchChromium();
    page = await (await dashboardContext(browser)).newPage();
    await signInToDashboard(page, server, ADMIN, '/sockets');
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
    await upstream?.close();
  });

  test('a bad socket name is shown on the field and nothing is created; a good one creates the socket, whose tags are then edited', async () => {
    await page.getByRole('heading', { name: 'Sockets', exact: true }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Create socket' }).click();
    const form = page.getByRole('form', { name: 'Create socket' });
    await form.getByLabel(/^Name/).fill('Bad_Name!');
    await form.getByLabel(/^Upstream target/).fill(upstream.url);
    await form.getByRole('button', { name: 'Create socket' }).click();
    await page.getByRole('alert').filter({ hasText: /name: must be a DNS label/ }).waitFor({ timeout: 5_000 });
    await form.locator('#error-name').filter({ hasText: 'must be a DNS label' }).waitFor({ timeout: 5_000 });
    assert.deepEqual((await api(server, '/api/v1/sockets')).json<SocketList>().sockets, [], 'nothing was created');

    await form.getByLabel(/^Name/).fill('grafana');
    await form.getByLabel(/^Tags/).fill('env=prod');
    await form.getByRole('button', { name: 'Create socket' }).click();
    await page.waitForURL((url) => url.pathname === '/sockets/grafana', { timeout: 5_000 });
    await page.getByRole('heading', { name: 'Socket grafana' }).waitFor({ timeout: 5_000 });
    const created = (await api(server, '/api/v1/sockets/grafana')).json<SocketView>();
    assert.deepEqual([created.type, created.upstream, created.tags], ['http', upstream.url, { env: 'prod' }]);
    assert.equal(await page.getByLabel('Open in a browser', { exact: true }).textContent(), created.url, 'the URL to copy is the socket\'s');

    await page.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit socket' });
    await edit.getByLabel(/^Tags/).fill('env=prod, team=ops');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('team=ops', { exact: true }).waitFor({ timeout: 5_000 });
    assert.deepEqual((await api(server, '/api/v1/sockets/grafana')).json<SocketView>().tags, { env: 'prod', team: 'ops' });

    await page.goto(`${server.url}/sockets?tag=${encodeURIComponent('team=ops')}`);
    const row = page.getByRole('row').filter({ hasText: 'grafana' });
    await row.filter({ hasText: 'offline' }).waitFor({ timeout: 5_000 });
    await page.goto(`${server.url}/sockets?q=no-such-thing`);
    await page.getByText('No socket matches the filter.').waitFor({ timeout: 5_000 });
  });

  test('an ssh socket\'s page gives the ssh command, the sshd_config lines and both CA keys to copy', async () => {
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'prod', type: 'ssh', upstream: 'tcp://127.0.0.1:22' } })).status, 201);
    const userCa = (await api(server, '/api/v1/ssh/ca', { token: null })).json<{ publicKey: string; sshdConfig: string[] }>();
    const hostCa = (await api(server, '/api/v1/ssh/host-ca', { token: null })).json<{ known_hosts: string }>();
    await page.goto(`${server.url}/sockets/prod`);
    await page.getByRole('heading', { name: 'Socket prod' }).waitFor({ timeout: 10_000 });
    await page.getByText('ssh <login>@prod.localhost', { exact: true }).waitFor({ timeout: 5_000 });
    assert.equal(await page.getByLabel('sshd_config lines', { exact: true }).textContent(), userCa.sshdConfig.join('\n'));
    assert.equal(await page.getByLabel('User CA public key', { exact: true }).textContent(), userCa.publicKey);
    assert.equal(await page.getByLabel('known_hosts line for ssh clients', { exact: true }).textContent(), hostCa.known_hosts);
    assert.equal(await page.getByRole('button', { name: 'Copy user CA public key' }).count(), 1);

    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await page.waitForURL((url) => url.pathname === '/sockets', { timeout: 5_000 });
    assert.equal((await api(server, '/api/v1/sockets/prod')).status, 404);
  });

  test('a join token is shown once with its YAML; a connector joins with it and the connector and the socket show online', async () => {
    await page.goto(`${server.url}/connectors`);
    await page.getByRole('heading', { name: 'Connectors', exact: true }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Create join token' }).click();
    const form = page.getByRole('form', { name: 'Create join token' });
    await form.getByLabel(/^Connector name/).fill('office');
    await form.getByLabel(/^Sockets it may serve/).fill('grafana');
    await form.getByRole('button', { name: 'Create token' }).click();
    const shown = page.getByRole('region', { name: 'New join token' });
    await shown.getByText('it will not be shown again').waitFor({ timeout: 5_000 });
    const token = (await shown.getByLabel('Join token', { exact: true }).textContent())!.trim();
    const yaml = (await shown.getByLabel('connector.yaml', { exact: true }).textContent())!;
    assert.match(token, /^pjt1\./);
    assert.ok(yaml.includes(token) && yaml.includes(upstream.url), yaml);
    assert.equal((await api(server, '/api/v1/connectors/tokens')).json<JoinTokenList>().tokens.length, 1);

    const dir = (await tempDir()).path;
    const config = join(dir, 'connector.yaml');
    await writeFile(config, yaml);
    const connector = await startConnector(['connector', 'start', '--config', config], server.env);

    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('button', { name: 'Refresh' }).click();
    const row = page.getByRole('row').filter({ hasText: connector.id });
    await row.filter({ hasText: 'online' }).waitFor({ timeout: 10_000 });
    await page.getByRole('row').filter({ hasText: 'office' }).filter({ hasText: 'used' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.getByText(token).count(), 0, 'the token is not shown again');
    await screenshot(page, 'connectors');

    await page.goto(`${server.url}/sockets`);
    await page.getByRole('row').filter({ hasText: 'grafana' }).filter({ hasText: 'online' }).waitFor({ timeout: 10_000 });
    await screenshot(page, 'sockets');
  });

  test('a user is created with groups, listed under their groups, and gets an invitation link', async () => {
    await page.goto(`${server.url}/users`);
    await page.getByRole('heading', { name: 'Users and groups' }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Create user' }).click();
    const form = page.getByRole('form', { name: 'Create user' });
    await form.getByLabel(/^Email/).fill('ana@corp.example');
    await form.getByLabel(/^Name/).fill('Ana');
    await form.getByLabel(/^Groups/).fill('staff, ops');
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'Ana', exact: true }) }).filter({ hasText: 'ana@corp.example' }).waitFor({ timeout: 5_000 });
    const ana = (await api(server, '/api/v1/users')).json<UserList>().users.find((u) => u.email === 'ana@corp.example');
    assert.deepEqual([ana?.name, ana?.groups], ['Ana', ['staff', 'ops']]);
    await page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'staff', exact: true }) }).filter({ hasText: 'ana@corp.example' }).waitFor({ timeout: 5_000 });

    await page.getByRole('button', { name: 'Invitation link for ana@corp.example' }).click();
    const invite = page.getByRole('region', { name: 'Invitation link' });
    await invite.getByText(/\/auth\/set-password\?token=/).waitFor({ timeout: 5_000 });
  });

  test('a GitHub sign-in provider is added with a write-only secret, then disabled and deleted', async () => {
    await page.goto(`${server.url}/identity-providers`);
    await page.getByRole('heading', { name: 'Sign-in providers' }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Add provider' }).click();
    const form = page.getByRole('form', { name: 'Add provider' });
    await form.getByLabel(/^Kind/).selectOption('github');
    await form.getByLabel(/^Name/).fill('github');
    await form.getByLabel(/^Client secret/).fill('s3cret-value');
    await form.getByLabel(/^Settings/).fill('{"client_id": "Iv1.abc", "groups_from_orgs": true}');
    await form.getByRole('button', { name: 'Add provider' }).click();
    await form.getByRole('alert').filter({ hasText: /orgs/ }).waitFor({ timeout: 5_000 });
    await form.getByLabel(/^Settings/).fill('{"client_id": "Iv1.abc", "groups_from_orgs": true, "orgs": ["corp"]}');
    await form.getByRole('button', { name: 'Add provider' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'github', exact: true }) });
    await row.filter({ hasText: 'enabled' }).filter({ hasText: 'set' }).waitFor({ timeout: 5_000 });
    const listed = await api(server, '/api/v1/identity-providers');
    assert.ok(!listed.text.includes('s3cret-value'), 'the secret never comes back');
    assert.deepEqual(listed.json<{ providers: { name: string; hasSecret: boolean; config: Record<string, unknown> }[] }>().providers.map((p) => [p.name, p.hasSecret, p.config.orgs]), [['github', true, ['corp']]]);

    await page.getByRole('button', { name: 'Edit github' }).click();
    const edit = page.getByRole('form', { name: 'Edit github' });
    await edit.getByLabel('Disabled', { exact: true }).check();
    await edit.getByRole('button', { name: 'Save' }).click();
    await row.filter({ hasText: 'disabled' }).waitFor({ timeout: 5_000 });
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.getByRole('button', { name: 'Yes, delete' }).click();
    await page.getByText('No providers: people sign in with local accounts.').waitFor({ timeout: 5_000 });
    assert.deepEqual((await api(server, '/api/v1/identity-providers')).json<{ providers: unknown[] }>().providers, []);
  });
});
