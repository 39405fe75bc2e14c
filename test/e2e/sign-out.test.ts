// E2E: signing out on a socket host through the real edge. `/_postern/logout` shows a
// confirmation, its form ends the session server-side (the old cookie is dead too, and so is the
// control host's sign-in), the next request goes back to sign-in, the audit trail records it, and
// the upstream never sees the path. A 403 page links to it, so a refused user can switch accounts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startConnector, startServer, waitForAudit, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import { SignInBrowser } from '../helpers/browser.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir } from '../helpers/util.js';

const PASSWORD = 'correct horse battery staple';
const COOKIE = '__Host-postern_session';

/** The confirmation page's form target (the path with its token). */
function formAction(page: HttpsResponse): string {
  const action = /<form method="post" action="([^"]+)"/.exec(page.text)?.[1];
  assert.ok(action, `no sign-out form in: ${page.text}`);
  return action.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
}

describe('sign-out on socket hosts', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let appUrl: string;

  before(async () => {
    upstream = await startUpstream();
    server = await startServer();
    appUrl = `https://app.localhost:${server.port}`;
    for (const email of ['alice@corp.example', 'bob@other.example']) {
      const created = await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD } });
      assert.equal(created.status, 201, created.text);
    }
    const socket = await server.cli(['socket', 'create', '--name', 'app', '--upstream', upstream.url, '--cloudauth', '--allowed-email-domains', 'corp.example']);
    assert.equal(socket.code, 0, socket.stderr);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'web', '--socket', 'app']);
    const config = await writeConnectorConfig((await tempDir()).path, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'app', upstream: upstream.url }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('signed in → /_postern/logout → confirm → signed out; the next request goes back to sign-in', async () => {
    const browser = new SignInBrowser(server, PASSWORD);
    assert.equal((await browser.signIn(`${appUrl}/reports`, 'alice@corp.example')).status, 200);
    const oldCookie = browser.cookies('app.localhost').get(COOKIE)!;
    assert.ok(oldCookie);

    const confirm = await browser.request(`${appUrl}/_postern/logout`);
    assert.equal(confirm.status, 200, confirm.text);
    assert.match(confirm.text, /Sign out of app\?/);
    assert.match(confirm.text, /alice@corp\.example/);
    assert.equal(confirm.headers['x-frame-options'], 'DENY');
    assert.match(String(confirm.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(confirm.headers['set-cookie'], undefined, 'showing the page changes nothing');
    assert.equal(browser.cookies('app.localhost').get(COOKIE), oldCookie);

    const done = await browser.request(`${appUrl}${formAction(confirm)}`, { method: 'POST' });
    assert.equal(done.status, 200, done.text);
    assert.match(done.text, /Signed out/);
    assert.match(String(done.headers['set-cookie']), new RegExp(`^${COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax`));
    assert.equal(browser.cookies('app.localhost').has(COOKIE), false, 'the host-only cookie is gone');

    const next = await browser.request(`${appUrl}/reports`);
    assert.equal(next.status, 302);
    assert.equal(new URL(next.headers.location!).pathname, '/auth/login');
    // Revoked server-side: the old cookie, replayed, is worth nothing.
    const replayed = await browser.request(`${appUrl}/reports`, { headers: { cookie: `${COOKIE}=${oldCookie}` } });
    assert.equal(replayed.status, 302, 'a copy of the old cookie goes back to sign-in too');
    // The control host's sign-in ended with it: the login page asks again.
    const login = await browser.request(next.headers.location!);
    assert.equal(login.status, 200);
    assert.match(login.text, /name="password"/);

    const ended = await waitForAudit(server, ['--type', 'session.end'], (e) => e.actor === 'alice@corp.example', 'the sign-out in the audit trail');
    assert.equal(ended.socket, 'app');
    assert.match(ended.reason, /signed out on app/);
    assert.ok(!upstream.seen.some((r) => /_postern/i.test(r.url)), `the upstream saw ${upstream.seen.map((r) => r.url).join(' ')}`);
  });

  test('the 403 page links to sign-out, and "use another account" works from it', async () => {
    const browser = new SignInBrowser(server, PASSWORD);
    const refused = await browser.signIn(`${appUrl}/`, 'bob@other.example');
    assert.equal(refused.status, 403, 'signed in, but not of an allowed domain');
    const page = await browser.request(`${appUrl}/`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 403, page.text);
    assert.match(page.text, /<a href="\/_postern\/logout">Sign out<\/a>/);
    assert.match(page.text, /<a href="\/_postern\/logout">Use another account<\/a>/);
    const plain = await browser.request(`${appUrl}/`);
    assert.match(plain.text, /Sign out or use another account: \/_postern\/logout/);

    const confirm = await browser.request(`${appUrl}/_postern/logout`);
    assert.match(confirm.text, /bob@other\.example/);
    assert.equal((await browser.request(`${appUrl}${formAction(confirm)}`, { method: 'POST' })).status, 200);
    const again = await browser.signIn(`${appUrl}/welcome`, 'alice@corp.example');
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json<{ headers: Record<string, string> }>().headers['x-auth-email'], 'alice@corp.example');
  });

  test('without a sign-in the page says so and sets nothing', async () => {
    const browser = new SignInBrowser(server, PASSWORD);
    const page = await browser.request(`${appUrl}/_postern/logout`);
    assert.equal(page.status, 200);
    assert.match(page.text, /Not signed in/);
    assert.equal(page.headers['set-cookie'], undefined);
  });
});
